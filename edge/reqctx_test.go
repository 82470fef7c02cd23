package edge

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestRequestContext(t *testing.T) {
	c := &Conn{}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	defer c.cancel()

	// At its deadline (a short one: waited for, not timed).
	x := c.requestContext(time.Millisecond)
	if dl, ok := x.Deadline(); !ok || dl.IsZero() {
		t.Fatalf("Deadline() = %v, %v", dl, ok)
	}
	<-x.Done()
	if err := x.Err(); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Err() after the deadline = %v", err)
	}
	c.release(x)

	// Released before its deadline: reused, and it starts afresh.
	for range 3 {
		x = c.requestContext(time.Hour)
		if x.Err() != nil {
			t.Fatalf("fresh context already ended: %v", x.Err())
		}
		select {
		case <-x.Done():
			t.Fatal("fresh context done")
		default:
		}
		c.release(x)
	}
	if len(c.reqs) != 0 {
		t.Fatalf("%d contexts still registered after release", len(c.reqs))
	}

	// With the connection's context.
	type key struct{}
	c.ctx = context.WithValue(c.ctx, key{}, "v")
	x = c.requestContext(time.Hour)
	y := c.requestContext(time.Hour)
	if x.Value(key{}) != "v" {
		t.Errorf("Value does not reach the connection's context")
	}
	c.cancel()
	c.endRequests()
	for _, r := range []*reqCtx{x, y} {
		<-r.Done()
		if err := r.Err(); !errors.Is(err, context.Canceled) {
			t.Errorf("Err() after the connection ended = %v", err)
		}
		c.release(r)
	}
	// A request that starts after the connection ended is over at once.
	x = c.requestContext(time.Hour)
	<-x.Done()
	if !errors.Is(x.Err(), context.Canceled) {
		t.Errorf("Err() of a late request = %v", x.Err())
	}
	c.release(x)
}
