package outq

import "testing"

func TestOutQueueBound(t *testing.T) {
	q := New(10)
	if r := q.Push(make([]byte, 6), false); r != Pushed {
		t.Fatalf("first push: %v", r)
	}
	if r := q.Push(make([]byte, 5), true); r != Dropped {
		t.Errorf("droppable over the bound: %v, want dropped", r)
	}
	if r := q.Push(make([]byte, 5), false); r != Overflow {
		t.Errorf("non-droppable over the bound: %v, want overflow", r)
	}
	if r := q.Push(make([]byte, 4), false); r != Pushed {
		t.Errorf("exactly up to the bound: %v, want pushed", r)
	}
	frames, cr, done := q.Take(nil)
	if len(frames) != 2 || cr != nil || done {
		t.Fatalf("take: %d frames, %v, %v", len(frames), cr, done)
	}
	// Taken frames still count until written.
	if r := q.Push(make([]byte, 1), true); r != Dropped {
		t.Errorf("bytes in the writer's hands must still count: %v", r)
	}
	q.Written(6)
	q.Written(4)
	if r := q.Push(make([]byte, 10), false); r != Pushed {
		t.Errorf("after writing: %v", r)
	}
	q.CloseAfterFlush(1012, "service restart")
	if r := q.Push([]byte("x"), false); r != Closing {
		t.Errorf("after closeAfterFlush: %v, want closing", r)
	}
	frames, cr, _ = q.Take(nil)
	if len(frames) != 1 || cr == nil || cr.Code != 1012 {
		t.Errorf("frames queued before the close are written first: %d %v", len(frames), cr)
	}
	q.Shut()
	select {
	case <-q.Done():
	default:
		t.Error("shut did not close shutCh")
	}
	q.Shut() // idempotent
}
