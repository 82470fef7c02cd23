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

func TestPushClaim(t *testing.T) {
	spawned := 0
	q := New(10, func() { spawned++ })
	r, claimed := q.PushClaim(make([]byte, 4))
	if r != Pushed || !claimed || spawned != 0 {
		t.Fatalf("idle queue: %v claimed=%v spawned=%d, want pushed, claimed, no writer started", r, claimed, spawned)
	}
	// While the claimant writes, other frames are only queued.
	if r, claimed := q.PushClaim(make([]byte, 4)); r != Pushed || claimed {
		t.Fatalf("while claimed: %v claimed=%v", r, claimed)
	}
	if r := q.Push(make([]byte, 1), false); r != Pushed || spawned != 0 {
		t.Fatalf("push while claimed: %v, writers started %d", r, spawned)
	}
	if r, _ := q.PushClaim(make([]byte, 2)); r != Overflow {
		t.Fatalf("over the bound: %v, want overflow", r)
	}
	frames, _, _, _ := q.Take(nil)
	if len(frames) != 3 {
		t.Fatalf("take: %d frames", len(frames))
	}
	q.Written(9)
	q.Handoff()
	if spawned != 0 {
		t.Fatalf("handoff of an empty queue started a writer")
	}
	if _, claimed := q.PushClaim(make([]byte, 1)); !claimed {
		t.Fatal("after the handoff the queue must be claimable again")
	}
	q.Take(nil)
	q.Push(make([]byte, 1), false) // queued meanwhile: the handoff starts a writer for it
	q.Handoff()
	if spawned != 1 {
		t.Fatalf("handoff with frames waiting: writers started %d, want 1", spawned)
	}
	if _, claimed := q.PushClaim(make([]byte, 1)); claimed {
		t.Fatal("a started writer runs: nothing to claim")
	}
	q.CloseAfterFlush(1000, "bye")
	if r, claimed := q.PushClaim(make([]byte, 1)); r != Closing || claimed {
		t.Fatalf("after CloseAfterFlush: %v claimed=%v", r, claimed)
	}
}
