package edge

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/clawdis/clawdis/bus/wire"
)

// busCalls sends the gateway's bus requests and matches their replies without a goroutine
// waiting for each: a request is published with a reply subject under the edge's own inbox,
// one subscription receives every reply, and a map from the call's number finds the call it
// answers. A call ends exactly once, by whoever takes it out of the map: its reply, its
// timer at the deadline, or the end of its connection (Conn.endRequests).
type busCalls struct {
	nc     *nats.Conn
	prefix string // the edge's inbox and a dot; a call's reply subject adds its number
	sub    *nats.Subscription
	// done answers a call that nobody waits for (wait is nil); it runs on the reply
	// subscription's goroutine, the timer's, or the reader's, and must not block.
	done func(r *Call, reply *nats.Msg, we *wire.Error)

	mu    sync.Mutex
	next  uint64
	calls map[uint64]*busCall
	pool  sync.Pool // *busCall whose timer is stopped
}

// busCall is one bus request under way. Its timer and closure are made once and reused.
type busCall struct {
	bc    *busCalls
	id    uint64 // written under busCalls.mu
	subj  string
	r     *Call
	wait  chan<- callResult // a worker waiting for the reply; nil: done answers
	timer *time.Timer
}

// callResult is a call's reply or the error it ended with.
type callResult struct {
	reply *nats.Msg
	we    *wire.Error
}

// statusHeader and noResponders are the NATS protocol's status header and the status the
// server sends to a request's reply subject when nobody serves its subject.
const (
	statusHeader = "Status"
	noResponders = "503"
)

// followReplies subscribes to the edge's reply inbox; done answers the calls nobody waits
// for.
func followReplies(nc *nats.Conn, done func(*Call, *nats.Msg, *wire.Error)) (*busCalls, error) {
	bc := &busCalls{nc: nc, prefix: nc.NewInbox() + ".", done: done, calls: make(map[uint64]*busCall)}
	sub, err := nc.Subscribe(bc.prefix+"*", bc.onReply)
	if err != nil {
		return nil, fmt.Errorf("subscribe to replies: %w", err)
	}
	bc.sub = sub
	return bc, nil
}

// start sends body to subj for r, to be answered within d: by done, or on wait when it is
// not nil (a buffered channel the caller reads once).
func (bc *busCalls) start(r *Call, subj string, body []byte, d time.Duration, wait chan<- callResult) {
	x, _ := bc.pool.Get().(*busCall)
	if x == nil {
		x = &busCall{bc: bc}
		x.timer = time.AfterFunc(time.Hour, func() { bc.expire(x) })
		x.timer.Stop()
	}
	x.subj, x.r, x.wait = subj, r, wait
	bc.mu.Lock()
	bc.next++
	id := bc.next
	x.id = id
	bc.calls[id] = x
	bc.mu.Unlock()

	c := r.c
	c.reqMu.Lock()
	// Checked under reqMu: a call registered here is seen by an endRequests that follows
	// the end of c.ctx.
	ended := c.ctx.Err() != nil
	if !ended {
		if c.calls == nil {
			c.calls = make(map[*busCall]uint64)
		}
		c.calls[x] = id
	}
	c.reqMu.Unlock()
	if ended {
		bc.end(id, x, c.endError(subj))
		return
	}
	x.timer.Reset(d)
	var num [20]byte
	if err := bc.nc.PublishRequest(subj, bc.prefix+string(strconv.AppendUint(num[:0], id, 10)), body); err != nil {
		bc.end(id, x, wire.RequestError(subj, err))
	}
}

// request is start for a worker: it waits for the reply.
func (bc *busCalls) request(r *Call, subj string, body []byte, d time.Duration) (*nats.Msg, *wire.Error) {
	wait := make(chan callResult, 1)
	bc.start(r, subj, body, d, wait)
	res := <-wait
	return res.reply, res.we
}

// onReply ends the call a reply is for; a reply that comes after its call ended is dropped.
func (bc *busCalls) onReply(m *nats.Msg) {
	if len(m.Subject) <= len(bc.prefix) {
		return
	}
	id, err := strconv.ParseUint(m.Subject[len(bc.prefix):], 10, 64)
	if err != nil {
		return
	}
	bc.mu.Lock()
	x := bc.calls[id]
	delete(bc.calls, id)
	bc.mu.Unlock()
	if x == nil {
		return
	}
	var we *wire.Error
	if len(m.Data) == 0 && m.Header.Get(statusHeader) == noResponders {
		we = wire.RequestError(x.subj, nats.ErrNoResponders)
	} else {
		we = wire.ReplyError(m)
	}
	bc.finish(x, m, we)
}

// expire ends x at its deadline, unless it ended already.
func (bc *busCalls) expire(x *busCall) {
	bc.mu.Lock()
	id := x.id
	bc.mu.Unlock()
	bc.end(id, x, wire.RequestError(x.subj, context.DeadlineExceeded))
}

// end ends call id (x) with we, unless it ended already.
func (bc *busCalls) end(id uint64, x *busCall, we *wire.Error) {
	bc.mu.Lock()
	if bc.calls[id] != x {
		bc.mu.Unlock()
		return
	}
	delete(bc.calls, id)
	bc.mu.Unlock()
	bc.finish(x, nil, we)
}

// finish answers a call taken out of the map and recycles it unless its timer may still be
// firing.
func (bc *busCalls) finish(x *busCall, reply *nats.Msg, we *wire.Error) {
	stopped := x.timer.Stop()
	r, wait := x.r, x.wait
	c := r.c
	c.reqMu.Lock()
	delete(c.calls, x)
	c.reqMu.Unlock()
	if stopped {
		x.subj, x.r, x.wait = "", nil, nil
		bc.pool.Put(x)
	}
	if wait != nil {
		wait <- callResult{reply, we}
		return
	}
	bc.done(r, reply, we)
}

// endError is what a bus request of c ends with when c ends first: the client is gone, or
// the shutdown's drain budget is spent.
func (c *Conn) endError(subj string) *wire.Error {
	if c.hub.Stopping() {
		return wire.Unavailable(true, "gateway shutting down")
	}
	return wire.RequestError(subj, context.Canceled)
}

// endRequests ends the bus requests of c under way; c.ctx has ended.
func (c *Conn) endRequests() {
	type under struct {
		x    *busCall
		id   uint64
		subj string
	}
	c.reqMu.Lock()
	calls := make([]under, 0, len(c.calls))
	for x, id := range c.calls {
		calls = append(calls, under{x, id, x.subj}) // read while x is this call's
	}
	c.reqMu.Unlock()
	for _, u := range calls {
		u.x.bc.end(u.id, u.x, c.endError(u.subj))
	}
}
