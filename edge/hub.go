package edge

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/clawdis/clawdis/schemas"
)

// Hub is the part of a protocol server that its connections share: the connections that
// finished their handshake (which receive events, each with its own seq), every open
// connection (for shutdown), the requests in flight, and the context of those requests. The
// gateway's Server and the WebChat relay each own one; both serve their WebSocket
// connections with Hub.Serve and a Backend.
type Hub struct {
	mu    sync.Mutex         // guards conns and all, and orders the fan-out
	conns map[*Conn]struct{} // past hello-ok: receive events
	all   map[*Conn]struct{} // every open connection
	wg    sync.WaitGroup     // connection handlers

	stopping  atomic.Bool
	drain     drainTracker
	reqCtx    context.Context // parent of every request; canceled when the drain budget ends
	reqCancel context.CancelFunc
	nextConn  atomic.Uint64
	connSalt  string
	slots     atomic.Int64 // connections reserved (Reserve) and not yet given back
	// connAdded, when set (tests), is called with each connection once it is open.
	connAdded atomic.Pointer[func()]
	bufs      sync.Pool // *bytes.Buffer for reading frames
}

// getBuf returns an empty read buffer.
func (h *Hub) getBuf() *bytes.Buffer {
	if b, ok := h.bufs.Get().(*bytes.Buffer); ok {
		return b
	}
	return new(bytes.Buffer)
}

// putBuf gives a read buffer back, unless a large frame grew it.
func (h *Hub) putBuf(b *bytes.Buffer) {
	if b.Cap() <= 64<<10 {
		b.Reset()
		h.bufs.Put(b)
	}
}

// NewHub returns an empty hub whose connection ids start with salt.
func NewHub(salt string) *Hub {
	h := &Hub{conns: map[*Conn]struct{}{}, all: map[*Conn]struct{}{}, connSalt: salt}
	h.reqCtx, h.reqCancel = context.WithCancel(context.Background())
	return h
}

// Lock takes the hub's lock: state that hello-ok snapshots and events carry is kept under
// it, so that a connection never misses or doubles an event around its hello-ok.
func (h *Hub) Lock() { h.mu.Lock() }

// Unlock releases the hub's lock.
func (h *Hub) Unlock() { h.mu.Unlock() }

// Stopping reports whether shutdown began.
func (h *Hub) Stopping() bool { return h.stopping.Load() }

// Count is the number of connections past hello-ok.
func (h *Hub) Count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.conns)
}

// Broadcast sends an event to every connection past hello-ok.
func (h *Hub) Broadcast(event string, payload []byte, sv *schemas.StateVersion, droppable bool) {
	h.mu.Lock()
	h.BroadcastLocked(event, payload, sv, droppable)
	h.mu.Unlock()
}

// BroadcastLocked encodes the event once and queues it on every connection past hello-ok
// with that connection's next seq; the hub's lock is held, so every connection sees events
// in the same order. A droppable event is skipped for a connection whose queue is full
// (its seq still counts); any other event closes such a connection as a slow consumer.
func (h *Hub) BroadcastLocked(event string, payload []byte, sv *schemas.StateVersion, droppable bool) {
	if len(h.conns) == 0 {
		return
	}
	prefix := make([]byte, 0, len(payload)+96)
	prefix = append(prefix, `{"type":"event","event":`...)
	prefix = schemas.AppendString(prefix, event)
	if len(payload) > 0 {
		prefix = append(prefix, `,"payload":`...)
		prefix = append(prefix, payload...)
	}
	if sv != nil {
		prefix = append(prefix, `,"stateVersion":{"presence":`...)
		prefix = strconv.AppendInt(prefix, sv.Presence, 10)
		prefix = append(prefix, `,"health":`...)
		prefix = strconv.AppendInt(prefix, sv.Health, 10)
		prefix = append(prefix, '}')
	}
	prefix = append(prefix, `,"seq":`...)
	for c := range h.conns {
		c.sendEvent(event, prefix, droppable)
	}
}

// SkipSeqLocked advances every connection's seq by n without sending anything, so that each
// sees a gap on its next event (the relay passes an upstream gap on this way).
func (h *Hub) SkipSeqLocked(n int64) {
	for c := range h.conns {
		c.seq += n
	}
}

// Shutdown stops taking requests and connections, gives the requests in flight budget to
// finish (then cancels them), closes every connection 1012 "service restart" after what is
// queued, and waits up to closeWait for them to go before dropping the rest. log, when
// set, is told when the budget ran out.
func (h *Hub) Shutdown(budget, closeWait time.Duration, log func(msg string, args ...any)) {
	h.Stop()
	drained := h.drain.stop()
	timer := time.NewTimer(budget)
	select {
	case <-drained:
	case <-timer.C:
		if log != nil {
			log("shutdown: in-flight requests did not finish in time; failing them", "budget", budget)
		}
		h.reqCancel()
		for _, c := range h.snapshot() {
			c.endRequests() // workers' contexts end with reqCtx, the bus requests here
		}
		<-drained
	}
	timer.Stop()
	for _, c := range h.snapshot() {
		c.queue.CloseAfterFlush(int(websocket.StatusServiceRestart), "service restart")
	}
	waited := make(chan struct{})
	go func() { h.wg.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(closeWait):
		for _, c := range h.snapshot() {
			_ = c.ws.CloseNow()
		}
		<-waited
	}
	h.reqCancel()
}

// Reserve takes one of max connection slots before a WebSocket upgrade (gateway.maxConnections):
// false when all are taken, and then the request gets 503. The slot goes back when the
// connection that Go serves ends, or with Unreserve when the upgrade failed.
func (h *Hub) Reserve(max int) bool {
	for {
		n := h.slots.Load()
		if n >= int64(max) {
			return false
		}
		if h.slots.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// Unreserve gives back a slot that Reserve took for an upgrade that did not happen.
func (h *Hub) Unreserve() { h.slots.Add(-1) }

// Go serves an upgraded connection on a goroutine of its own (see Serve), in a slot taken
// with Reserve, which it gives back; false once shutdown began, and then the caller closes ws.
func (h *Hub) Go(ws *websocket.Conn, remoteAddr string, cfg *ConnConfig, b Backend, log *slog.Logger) bool {
	h.mu.Lock()
	if h.stopping.Load() {
		h.mu.Unlock()
		h.Unreserve()
		return false
	}
	h.wg.Add(1) // under mu, so that Shutdown's Wait never races an Add
	h.mu.Unlock()
	go func() {
		defer h.wg.Done()
		defer h.Unreserve()
		h.Serve(ws, remoteAddr, cfg, b, log)
	}()
	return true
}

// Stop marks the hub stopping: no new connection or request is taken.
func (h *Hub) Stop() {
	h.mu.Lock()
	h.stopping.Store(true)
	h.mu.Unlock()
}

// snapshot lists every open connection, handshake done or not.
func (h *Hub) snapshot() []*Conn {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]*Conn, 0, len(h.all))
	for c := range h.all {
		out = append(out, c)
	}
	return out
}

// IdleTimeout is SPEC §5.3's idle timeout for a ping interval: the longer of two intervals
// and 60 s.
func IdleTimeout(interval time.Duration) time.Duration { return max(2*interval, time.Minute) }

// Keepalive pings every connection past hello-ok each interval and closes one that sent
// nothing (no frame, no pong) for idle with 1001 "idle timeout"; then it calls each (when
// set: the gateway sends its tick event there). It returns when ctx ends. The pings need no
// reader of their own: each connection's reader always reads, and it is what sees the pongs.
func (h *Hub) Keepalive(ctx context.Context, interval, idle time.Duration, each func()) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		h.mu.Lock()
		for c := range h.conns {
			if now.Sub(time.Unix(0, c.lastSeen.Load())) >= idle {
				c.closeNow(websocket.StatusGoingAway, "idle timeout")
				continue
			}
			if c.pinging.CompareAndSwap(false, true) {
				go c.ping(interval)
			}
		}
		h.mu.Unlock()
		if each != nil {
			each()
		}
	}
}

func (h *Hub) newConnID() string {
	return h.connSalt + "-" + strconv.FormatUint(h.nextConn.Add(1), 10)
}

// drainTracker counts requests in flight across all connections so shutdown can wait for
// them; once stopped it refuses new ones.
type drainTracker struct {
	mu      sync.Mutex
	n       int
	stopped bool
	idle    chan struct{}
}

// start registers a request; false once shutdown began.
func (d *drainTracker) start() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopped {
		return false
	}
	d.n++
	return true
}

func (d *drainTracker) done() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.n--
	if d.n == 0 && d.idle != nil {
		close(d.idle)
		d.idle = nil
	}
}

// stop refuses new requests and returns a channel closed when none is in flight.
func (d *drainTracker) stop() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stopped = true
	ch := make(chan struct{})
	if d.n == 0 {
		close(ch)
	} else {
		d.idle = ch
	}
	return ch
}

// mustJSON encodes v, which cannot fail for the protocol's own types.
func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("edge: encode %T: %v", v, err))
	}
	return b
}
