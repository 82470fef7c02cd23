package edge

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"time"

	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/schemas"
)

// Call is one request of a connection being answered. It holds a slot of the connection's
// in-flight limit until it ends or is released, and counts in the connection's and the
// shutdown's requests until it ends.
type Call struct {
	Request
	c     *Conn
	start time.Time // when the backend took it (the gateway's metrics clock)

	held     bool // Serve handed the call on (Go, or a reply that comes later); the reader's
	worker   bool // runs on a worker, whose answers may write to the socket themselves
	fn       func(ctx context.Context)
	released atomic.Bool
	// refs counts the reader (until Serve returned) and the call's owner (until it ended);
	// the last to let go recycles the call, unless it went on a worker (Go), whose function
	// may have handed the call to callbacks that outlive it.
	refs atomic.Int32
}

var calls = sync.Pool{New: func() any { return new(Call) }}

// newCall returns a call of c for req, counted for the reader and its owner.
func newCall(c *Conn, req Request) *Call {
	r := calls.Get().(*Call)
	r.Request, r.c = req, c
	r.refs.Store(2)
	return r
}

// unref lets go of r; the last one recycles it.
func (r *Call) unref() {
	if r.refs.Add(-1) == 0 && r.fn == nil {
		*r = Call{}
		calls.Put(r)
	}
}

// Conn is the connection the call came on.
func (r *Call) Conn() *Conn { return r.c }

// Go goes on with the call on a worker: fn gets the connection's context (it ends when the
// connection closes or the shutdown's drain budget is spent), and the call ends when fn
// returns. A panic in fn is answered UNAVAILABLE. Serve calls Go at most once.
func (r *Call) Go(fn func(ctx context.Context)) {
	r.held, r.fn = true, fn
	requestWorkers.run(r)
}

// hold marks the call as answered later by what Serve started; that ends it.
func (r *Call) hold() { r.held = true }

// Release frees the call's in-flight slot before it ends; later calls do nothing.
func (r *Call) Release() {
	if r.released.CompareAndSwap(false, true) {
		<-r.c.inflight
	}
}

// end ends the call: exactly once, after its last res is queued. Nothing may use r after.
func (r *Call) end() {
	r.Release()
	c := r.c
	r.unref()
	c.hub.drain.done()
	c.reqWG.Done()
}

// run is a request worker's job: the function Go was given.
func (r *Call) run() {
	defer r.end()
	defer func() {
		if p := recover(); p != nil {
			r.c.Log().Error("panic handling request", "method", r.Method, "panic", p)
			r.SendError(wire.Unavailable(false, "internal error handling %s", schemas.Clip(r.Method, maxEchoMethod)))
		}
	}()
	r.worker = true
	r.fn(r.c.ctx)
}

// SendOK answers the call with ok:true and payload, which must be JSON (empty: null).
func (r *Call) SendOK(payload []byte) { r.res(okFrame(r.ID, payload)) }

// SendError answers the call with a protocol error.
func (r *Call) SendError(e *wire.Error) { r.SendFailure(ErrorShape(e), nil) }

// SendFailure answers the call with ok:false, the error and an optional payload.
func (r *Call) SendFailure(e *schemas.ErrorShape, payload json.RawMessage) {
	r.res(failureFrame(r.ID, e, payload))
}

// res queues frame; on a worker with no writer running, the worker writes it at once. The
// reader and the bus's reply handler never write: they serve every connection's next
// frame or reply.
func (r *Call) res(frame []byte) {
	if r.worker {
		r.c.pushRes(frame, r.ID)
		return
	}
	r.c.push(frame, r.ID)
}

// The worker pools: a worker keeps its grown stack for the next job. A request's worker
// grows its stack to a few KiB while it waits on the bus and writes its answer; a new
// goroutine per request paid for that growth every time (runtime.newstack was 9 % of the
// gateway's CPU in a profile under load).
var (
	requestWorkers = newWorkerPool(64, (*Call).run)
	writeWorkers   = newWorkerPool(64, (*Conn).write)
)
