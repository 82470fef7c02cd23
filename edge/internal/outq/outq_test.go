package outq

import "testing"

func TestOutQueueBound(t *testing.T) {
	spawned := 0
	q := New(10, func() { spawned++ })
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
	if spawned != 1 {
		t.Fatalf("writers started: %d, want 1 while one runs", spawned)
	}
	frames, cr, done, stop := q.Take(nil)
	if len(frames) != 2 || cr != nil || done || stop {
		t.Fatalf("take: %d frames, %v, %v, %v", len(frames), cr, done, stop)
	}
	// Taken frames still count until written.
	if r := q.Push(make([]byte, 1), true); r != Dropped {
		t.Errorf("bytes in the writer's hands must still count: %v", r)
	}
	q.Written(6)
	q.Written(4)
	if _, _, _, stop := q.Take(nil); !stop {
		t.Fatal("an empty queue must stop the writer")
	}
	if r := q.Push(make([]byte, 10), false); r != Pushed {
		t.Errorf("after writing: %v", r)
	}
	if spawned != 2 {
		t.Fatalf("writers started: %d, want a new one after the first stopped", spawned)
	}
	q.CloseAfterFlush(1012, "service restart")
	if r := q.Push([]byte("x"), false); r != Closing {
		t.Errorf("after closeAfterFlush: %v, want closing", r)
	}
	frames, cr, _, _ = q.Take(nil)
	if len(frames) != 1 || cr == nil || cr.Code != 1012 {
		t.Errorf("frames queued before the close are written first: %d %v", len(frames), cr)
	}
	q.Shut()
	if _, _, done, _ := q.Take(nil); !done {
		t.Error("a shut queue must report done")
	}
	q.Shut() // idempotent
	if r := q.Push([]byte("x"), false); r != Closing || spawned != 2 {
		t.Errorf("push after shut: %v, writers %d", r, spawned)
	}
}
