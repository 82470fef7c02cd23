package edge

import "testing"

func TestOutQueueBound(t *testing.T) {
	q := newOutQueue(10)
	if r := q.push(make([]byte, 6), false); r != pushed {
		t.Fatalf("first push: %v", r)
	}
	if r := q.push(make([]byte, 5), true); r != dropped {
		t.Errorf("droppable over the bound: %v, want dropped", r)
	}
	if r := q.push(make([]byte, 5), false); r != overflow {
		t.Errorf("non-droppable over the bound: %v, want overflow", r)
	}
	if r := q.push(make([]byte, 4), false); r != pushed {
		t.Errorf("exactly up to the bound: %v, want pushed", r)
	}
	frames, cr, done := q.take(nil)
	if len(frames) != 2 || cr != nil || done {
		t.Fatalf("take: %d frames, %v, %v", len(frames), cr, done)
	}
	// Taken frames still count until written.
	if r := q.push(make([]byte, 1), true); r != dropped {
		t.Errorf("bytes in the writer's hands must still count: %v", r)
	}
	q.written(6)
	q.written(4)
	if r := q.push(make([]byte, 10), false); r != pushed {
		t.Errorf("after writing: %v", r)
	}
	q.closeAfterFlush(1012, "service restart")
	if r := q.push([]byte("x"), false); r != closing {
		t.Errorf("after closeAfterFlush: %v, want closing", r)
	}
	frames, cr, _ = q.take(nil)
	if len(frames) != 1 || cr == nil || cr.code != 1012 {
		t.Errorf("frames queued before the close are written first: %d %v", len(frames), cr)
	}
	q.shut()
	select {
	case <-q.shutCh:
	default:
		t.Error("shut did not close shutCh")
	}
	q.shut() // idempotent
}
