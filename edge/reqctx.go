package edge

import (
	"context"
	"sync"
	"time"
)

// reqCtx is the context of one bus request of a connection: it ends at its deadline or
// when the connection's context ends. Unlike context.WithTimeout it costs one channel per
// request: the context and its timer are reused, and whoever ends the connection's context
// (its reader, or the hub when the drain budget is spent) then calls endRequests.
type reqCtx struct {
	parent   context.Context
	timer    *time.Timer // fires expire; reused
	deadline time.Time

	mu   sync.Mutex
	done chan struct{} // set under mu when the context is handed out
	err  error
}

var reqCtxPool sync.Pool // *reqCtx, stopped timer

func (x *reqCtx) Deadline() (time.Time, bool) { return x.deadline, true }

// Done is read by the request's goroutine, which handed the context out.
func (x *reqCtx) Done() <-chan struct{} { return x.done }

func (x *reqCtx) Err() error {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.err
}

func (x *reqCtx) Value(key any) any { return x.parent.Value(key) }

// end ends the context with err unless it has ended.
func (x *reqCtx) end(err error) {
	x.mu.Lock()
	if x.err == nil {
		x.err = err
		close(x.done)
	}
	x.mu.Unlock()
}

func (x *reqCtx) expire() { x.end(context.DeadlineExceeded) }

// requestContext returns the context of one request of c that ends after d or with c.ctx;
// release must be called when the request is done with it.
func (c *Conn) requestContext(d time.Duration) *reqCtx {
	x, _ := reqCtxPool.Get().(*reqCtx)
	if x == nil {
		x = &reqCtx{}
		x.timer = time.AfterFunc(time.Hour, x.expire)
		x.timer.Stop()
	}
	x.parent = c.ctx
	x.deadline = time.Now().Add(d)
	x.mu.Lock()
	x.done = make(chan struct{})
	x.err = nil
	x.mu.Unlock()

	c.reqMu.Lock()
	if c.reqs == nil {
		c.reqs = make(map[*reqCtx]struct{})
	}
	// Checked under reqMu: a context registered here is seen by an endRequests that
	// follows the end of c.ctx.
	if err := c.ctx.Err(); err != nil {
		x.end(err)
	} else {
		c.reqs[x] = struct{}{}
	}
	c.reqMu.Unlock()
	x.timer.Reset(d)
	return x
}

// release forgets x; it is reused unless its timer may still be firing.
func (c *Conn) release(x *reqCtx) {
	stopped := x.timer.Stop()
	c.reqMu.Lock()
	delete(c.reqs, x)
	c.reqMu.Unlock()
	if stopped {
		x.parent = nil
		reqCtxPool.Put(x)
	}
}

// endRequests ends the contexts of the requests under way; c.ctx has ended.
func (c *Conn) endRequests() {
	err := c.ctx.Err()
	c.reqMu.Lock()
	for x := range c.reqs {
		x.end(err)
	}
	c.reqMu.Unlock()
}
