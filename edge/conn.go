package edge

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/edge/internal/outq"
	"github.com/clawdis/clawdis/edge/internal/watchdog"
	"github.com/clawdis/clawdis/schemas"
)

// Backend is what a protocol server plugs into the shared connection machinery: the
// gateway routes requests over the bus, the WebChat relay through its upstream client.
type Backend interface {
	// Admit decides on a hello that passed validation, the protocol check and the token
	// check; it may block briefly (the relay waits for its upstream). A non-nil refusal
	// is sent as hello-error and closes the connection.
	Admit(c *Conn, h *schemas.Hello) *Refusal
	// HelloOK encodes the hello-ok frame for c from the server's current state, in a new
	// slice: the connection owns it, and reuses its buffer once it is written. It is
	// called with the hub's lock held, and the connection starts receiving events right
	// after it, so the snapshot and the events never overlap or leave a gap.
	HelloOK(c *Conn) []byte
	// Joined and Left are told when c passed its hello-ok and when it closed (cli clients
	// included); they run on the connection's reader goroutine.
	Joined(c *Conn)
	Left(c *Conn)
	// Serve answers one request (r.Conn's) exactly once, twice for a two-stage method.
	// It runs on the connection's reader and must not block: it answers at once, or starts
	// what answers later and marks the call held (the gateway's bus requests), or goes on
	// on a worker with r.Go. The call's in-flight slot is freed when it ends (or early with
	// r.Release: an acknowledged run no longer counts). A panic in it is answered
	// UNAVAILABLE.
	Serve(r *Call)
}

// Refusal is a hello-error and the close code and reason that follow it.
type Refusal struct {
	HelloError schemas.HelloError
	Code       websocket.StatusCode
	Reason     string
}

// Request is one validated req frame; Params are the raw bytes (nil when absent or null).
type Request struct {
	ID, Method string
	Params     []byte
}

// PreAuthMaxPayload is the largest inbound frame until hello-ok (SPEC §5.2), whatever
// ConnConfig.MaxPayload says.
const PreAuthMaxPayload = 64 << 10

// ConnConfig are the limits and checks of every connection of one protocol server.
type ConnConfig struct {
	Schemas *schemas.Set
	Token   string // required hello auth.token; empty: none
	// Throttle, when set, counts failed token checks per client address and refuses the
	// hellos of a locked-out address without comparing their token.
	Throttle         *AuthThrottle
	MaxPayload       int64 // largest inbound frame after hello-ok (before it: PreAuthMaxPayload at most)
	MaxBufferedBytes int64 // outbound queue bound
	MaxInFlight      int
	HandshakeTimeout time.Duration
	WriteTimeout     time.Duration
	Verbose          bool // log every frame at debug level (never tokens)
	// MaxPayloadAfter, when set, gives the frame limit once the hello is admitted (the relay
	// takes it from its gateway's policy); default MaxPayload.
	MaxPayloadAfter func() int64
	// Metrics, when set, count frames in and out, skipped events and auth failures.
	Metrics *Metrics
}

// Conn is one client connection: a reader (the goroutine of Hub.Serve) that starts every
// request, and a writer draining the bounded queue. The writer is a worker of the writer
// pool while frames wait, or a request's worker whose res found no writer running (it
// writes one batch).
type Conn struct {
	hub      *Hub
	b        Backend
	cfg      *ConnConfig
	ws       *websocket.Conn
	id       string
	addr     string // the client's IP address, loopback included (the throttle's key)
	remoteIP string
	baseLog  *slog.Logger // the server's; Log adds the connection id
	queue    *outq.Queue
	writers  sync.WaitGroup    // the writer goroutine, while one runs
	wbuf     [][]byte          // the current writer's batch, reused; only the writer touches it
	wdog     watchdog.Watchdog // bounds each batch of writes
	inflight chan struct{}
	reqWG    sync.WaitGroup
	reqMu    sync.Mutex
	calls    map[*busCall]uint64 // bus requests under way, with their numbers; nil until the first
	ctx      context.Context     // ends when the reader ends
	cancel   context.CancelFunc
	limit    int64            // current inbound frame limit
	lr       io.LimitedReader // the reader's, reused for every frame

	hello      schemas.Hello
	registered atomic.Bool  // hello-ok queued; receives events
	lastSeen   atomic.Int64 // when the client last sent a frame or a pong (Unix ns)
	pinging    atomic.Bool  // a keepalive ping waits for its pong
	seq        int64        // last event seq; guarded by the hub's lock
	closeOnce  sync.Once
	closeDone  chan struct{} // closed when a close started by closeNow has finished
}

// ID is the connection's id (hello-ok server.connId).
func (c *Conn) ID() string { return c.id }

// RemoteIP is the client's address, empty for loopback clients.
func (c *Conn) RemoteIP() string { return c.remoteIP }

// Hello is the client's hello; valid once admitted.
func (c *Conn) Hello() *schemas.Hello { return &c.hello }

// Log is the connection's logger.
// Log is the connection's logger. It is made when something is logged: an idle connection
// keeps no logger of its own.
func (c *Conn) Log() *slog.Logger { return c.baseLog.With("conn", c.id) }

// clientAddr splits http.Request.RemoteAddr into the client's host and its remote IP, which
// is empty for loopback clients (they need no token and share one throttle entry).
func clientAddr(remoteAddr string) (addr, remoteIP string) {
	addr = remoteAddr
	if host, _, err := net.SplitHostPort(remoteAddr); err == nil {
		addr = host
	}
	if ip := net.ParseIP(addr); ip == nil || ip.IsLoopback() {
		return addr, ""
	}
	return addr, addr
}

// Serve runs one upgraded connection with backend b until it closes. remoteAddr is the
// client's address (http.Request.RemoteAddr); log gets the connection's lines.
func (h *Hub) Serve(ws *websocket.Conn, remoteAddr string, cfg *ConnConfig, b Backend, log *slog.Logger) {
	ws.SetReadLimit(-1) // the limit is enforced below, to close with our own reason
	addr, remoteIP := clientAddr(remoteAddr)
	c := &Conn{
		hub: h, b: b, cfg: cfg, ws: ws, id: h.newConnID(), addr: addr, remoteIP: remoteIP,
		inflight:  make(chan struct{}, cfg.MaxInFlight),
		closeDone: make(chan struct{}),
		limit:     min(cfg.MaxPayload, PreAuthMaxPayload),
	}
	c.lastSeen.Store(time.Now().UnixNano())
	c.queue = outq.New(cfg.MaxBufferedBytes, c.spawnWriter)
	c.wdog.Expire = func() {
		c.Log().Debug("write timed out; closing")
		_ = c.ws.CloseNow()
	}
	c.ctx, c.cancel = context.WithCancel(h.reqCtx)
	c.baseLog = log
	h.mu.Lock()
	h.all[c] = struct{}{}
	h.mu.Unlock()
	if f := h.connAdded.Load(); f != nil {
		(*f)()
	}
	defer func() {
		h.mu.Lock()
		delete(h.all, c)
		h.mu.Unlock()
	}()

	timer := time.AfterFunc(cfg.HandshakeTimeout, func() {
		if !c.registered.Load() {
			c.close(websocket.StatusPolicyViolation, "handshake timeout")
		}
	})

	c.readLoop()

	timer.Stop()
	c.cancel()
	c.endRequests()
	if c.registered.Load() {
		h.mu.Lock()
		delete(h.conns, c)
		h.mu.Unlock()
		b.Left(c)
	}
	c.reqWG.Wait()
	c.queue.Shut() // no writer starts after this
	c.writers.Wait()
	c.wdog.Disarm()
	// Let a close handshake that is under way finish; otherwise drop the socket.
	started := true
	c.closeOnce.Do(func() { started = false; close(c.closeDone) })
	if started {
		<-c.closeDone
	}
	_ = ws.CloseNow()
}

// ping sends a keepalive ping and waits up to timeout for its pong; the pong counts as the
// client being there.
func (c *Conn) ping(timeout time.Duration) {
	defer c.pinging.Store(false)
	ctx, cancel := context.WithTimeout(c.ctx, timeout)
	defer cancel()
	if c.ws.Ping(ctx) == nil {
		c.lastSeen.Store(time.Now().UnixNano())
	}
}

// close closes the connection after what is already queued (hello-error, responses).
func (c *Conn) close(code websocket.StatusCode, reason string) {
	c.queue.CloseAfterFlush(int(code), reason)
}

// closeNow closes at once, dropping what is queued (slow consumers).
func (c *Conn) closeNow(code websocket.StatusCode, reason string) {
	c.closeOnce.Do(func() {
		c.queue.Shut()
		go func() {
			defer close(c.closeDone)
			_ = c.ws.Close(code, reason)
		}()
	})
}

// spawnWriter starts a writer on a worker of the writer pool; the queue calls it (under
// its lock) when frames wait and no writer runs.
func (c *Conn) spawnWriter() {
	c.writers.Add(1)
	writeWorkers.run(c)
}

// write is a writer pool's job: write what is queued, then let the next frame start a
// writer again.
func (c *Conn) write() {
	defer c.writers.Done()
	c.writeLoop(false)
}

// writeLoop writes what is queued until the queue is empty (then it returns; the next frame
// starts a new writer), shut, or asks for the close. An inline writer (a request's worker
// that claimed the queue with its res) writes one batch and hands the rest to a writer, so
// that it never carries other requests' frames or the close handshake.
func (c *Conn) writeLoop(inline bool) {
	for {
		frames, cr, done, stop := c.queue.Take(c.wbuf)
		if done || stop {
			return
		}
		// One deadline for what was taken at once: under load that is many frames.
		c.wdog.Arm(c.cfg.WriteTimeout * time.Duration(max(1, min(len(frames), 8))))
		for _, f := range frames {
			c.cfg.Metrics.FrameOut() // before the write: a client that has read it sees it counted
			err := c.ws.Write(context.Background(), websocket.MessageText, f)
			if err != nil {
				c.wdog.Disarm()
				c.Log().Debug("write failed", "err", err)
				c.queue.Shut()
				_ = c.ws.CloseNow()
				return
			}
			c.queue.Written(len(f))
			if c.cfg.Verbose {
				c.Log().Debug("frame out", "bytes", len(f), "frame", truncate(f))
			}
			frameBufs.put(f)
		}
		c.wdog.Disarm()
		clear(frames)
		c.wbuf = frames[:0]
		if inline {
			c.queue.Handoff()
			return
		}
		if cr != nil {
			c.closeOnce.Do(func() {
				defer close(c.closeDone)
				_ = c.ws.Close(websocket.StatusCode(cr.Code), cr.Reason)
			})
			return
		}
	}
}

// readLoop reads frames until the connection ends. A frame is read into a buffer from the
// hub's pool and the buffer goes back once the frame is handled (whatever outlives it is
// copied), so an idle connection holds no read buffer.
func (c *Conn) readLoop() {
	for {
		_, r, err := c.ws.Reader(context.Background())
		if err != nil {
			return
		}
		c.lastSeen.Store(time.Now().UnixNano())
		c.cfg.Metrics.FrameIn()
		buf := c.hub.getBuf()
		ok := c.readFrame(r, buf)
		c.hub.putBuf(buf)
		if !ok {
			return
		}
	}
}

// readFrame reads and handles one frame; false means the connection closes.
func (c *Conn) readFrame(r io.Reader, buf *bytes.Buffer) bool {
	limit := c.limit
	c.lr = io.LimitedReader{R: r, N: limit + 1}
	n, err := buf.ReadFrom(&c.lr)
	c.lr.R = nil
	if err != nil {
		return false
	}
	if n > limit {
		c.Log().Warn("frame too large; closing", "limit", limit)
		c.closeNow(websocket.StatusMessageTooBig, "frame too large")
		return false
	}
	if c.cfg.Verbose {
		c.Log().Debug("frame in", "bytes", n, "frame", redactedPreview(buf.Bytes()))
	}
	ok := true
	if !c.registered.Load() {
		// On a goroutine of its own: validating a hello grows a stack that the reader,
		// which then waits idle for the connection's whole life, need not keep.
		done := make(chan bool, 1)
		go func() { done <- c.handshake(buf.Bytes()) }()
		ok = <-done
	} else {
		ok = c.handleFrame(buf.Bytes())
	}
	if !ok {
		// keep reading so the close handshake completes; nothing else is processed
		c.drain()
	}
	return ok
}

// drain reads until the connection ends, discarding data, so a close handshake can finish.
func (c *Conn) drain() {
	for {
		if _, _, err := c.ws.Read(context.Background()); err != nil {
			return
		}
	}
}

// handshake checks the first frame; false means the connection closes.
func (c *Conn) handshake(data []byte) bool {
	// Cheap, linear checks first: nothing below may cost more on a hostile frame.
	if !json.Valid(data) {
		c.close(websocket.StatusPolicyViolation, "malformed JSON")
		return false
	}
	if hasLongNumber(data) {
		return c.refuse(&Refusal{schemas.HelloError{Reason: "invalid hello: " + longNumberDetail}, websocket.StatusPolicyViolation, "invalid hello"})
	}
	if t := c.cfg.Throttle; t != nil && c.cfg.Token != "" {
		if left, locked := t.Locked(c.addr); locked {
			secs := int64((left + time.Second - 1) / time.Second)
			return c.refuse(&Refusal{schemas.HelloError{Reason: "too many failed auth attempts; retry in " + strconv.FormatInt(secs, 10) + " s"},
				websocket.StatusPolicyViolation, "too many failed auth attempts"})
		}
	}
	h, common := parseHello(data) // one pass for the usual hello; the schema for any other
	if !common {
		v, err := schemas.Decode(data)
		if err != nil {
			c.close(websocket.StatusPolicyViolation, "malformed JSON")
			return false
		}
		if err := c.cfg.Schemas.Hello(v); err != nil {
			return c.refuse(&Refusal{schemas.HelloError{Reason: "invalid hello: " + err.Error()}, websocket.StatusPolicyViolation, "invalid hello"})
		}
		if err := json.Unmarshal(data, &h); err != nil {
			return c.refuse(&Refusal{schemas.HelloError{Reason: "invalid hello"}, websocket.StatusPolicyViolation, "invalid hello"})
		}
	}
	if h.MinProtocol > schemas.ProtocolVersion || h.MaxProtocol < schemas.ProtocolVersion {
		return c.refuse(&Refusal{schemas.HelloError{Reason: "protocol mismatch", ExpectedProtocol: schemas.ProtocolVersion},
			websocket.StatusProtocolError, "protocol mismatch"})
	}
	if want := c.cfg.Token; want != "" {
		got := ""
		if h.Auth != nil {
			got = h.Auth.Token
		}
		if subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
			// One line per failure would let a client fill the log: the lockout is what is logged.
			c.Log().Debug("refused client with wrong or missing token", "client", schemas.Clip(h.Client.Name, 64))
			c.cfg.Metrics.AuthFailure()
			if t := c.cfg.Throttle; t != nil {
				if started, n := t.Fail(c.addr); started {
					c.cfg.Metrics.AuthLockout()
					c.Log().Warn("too many failed auth attempts; locking the address out", "address", c.addr,
						"failures", n, "lockout", t.cfg.Lockout)
				}
			}
			return c.refuse(&Refusal{schemas.HelloError{Reason: "unauthorized"}, websocket.StatusPolicyViolation, "unauthorized"})
		}
	}
	c.hello = h
	if c.hub.stopping.Load() {
		return c.refuse(&Refusal{schemas.HelloError{Reason: "gateway stopping"}, websocket.StatusServiceRestart, "service restart"})
	}
	if r := c.b.Admit(c, &c.hello); r != nil {
		return c.refuse(r)
	}
	c.limit = c.cfg.MaxPayload
	if c.cfg.MaxPayloadAfter != nil {
		c.limit = c.cfg.MaxPayloadAfter()
	}
	hub := c.hub
	hub.mu.Lock()
	res := c.queue.Push(c.b.HelloOK(c), false)
	if res == outq.Pushed {
		hub.conns[c] = struct{}{}
		c.registered.Store(true)
	}
	hub.mu.Unlock()
	if res != outq.Pushed {
		c.closeNow(websocket.StatusPolicyViolation, "slow consumer")
		return false
	}
	c.b.Joined(c)
	return true
}

// refuse sends a hello-error and closes; it returns false.
func (c *Conn) refuse(r *Refusal) bool {
	he := r.HelloError
	he.Type = schemas.TypeHelloError
	c.queue.Push(mustJSON(he), false)
	c.close(r.Code, r.Reason)
	return false
}

// sendEvent queues an event for this connection; the hub's lock is held. prefix is the
// encoded event up to and including `"seq":`.
func (c *Conn) sendEvent(event string, prefix []byte, droppable bool) {
	c.seq++
	frame := frameBufs.get(len(prefix) + 24)
	frame = append(frame, prefix...)
	frame = strconv.AppendInt(frame, c.seq, 10)
	frame = append(frame, '}')
	switch c.queue.Push(frame, droppable) {
	case outq.Dropped:
		c.cfg.Metrics.EventSkipped()
		c.Log().Debug("slow consumer: event skipped", "event", event, "seq", c.seq)
	case outq.Overflow:
		c.Log().Warn("slow consumer: closing", "event", event)
		c.closeNow(websocket.StatusPolicyViolation, "slow consumer")
	}
}

// push queues a frame; a full queue closes the connection as a slow consumer. It never
// writes: the reader goroutine uses it.
func (c *Conn) push(frame []byte, id string) {
	if c.queue.Push(frame, false) == outq.Overflow {
		c.slowRes(id)
	}
}

// pushRes queues a request's res from the worker that serves it; when no writer runs, that
// worker writes it (and whatever else is queued) at once instead of handing it to a writer.
func (c *Conn) pushRes(frame []byte, id string) {
	switch r, claimed := c.queue.PushClaim(frame); {
	case claimed:
		c.writeLoop(true)
	case r == outq.Overflow:
		c.slowRes(id)
	}
}

func (c *Conn) slowRes(id string) {
	c.Log().Warn("slow consumer: closing", "res", id)
	c.closeNow(websocket.StatusPolicyViolation, "slow consumer")
}

// queueError answers request id with a protocol error from the reader goroutine: the
// frame is queued for the writer, never written here.
func (c *Conn) queueError(id string, e *wire.Error) {
	c.push(failureFrame(id, ErrorShape(e), nil), id)
}

// okFrame is the res frame answering request id with ok:true and payload, which must be
// JSON (empty: null). It is built by appending the payload bytes; nothing is re-encoded.
func okFrame(id string, payload []byte) []byte {
	if len(payload) == 0 {
		payload = nullJSON
	}
	frame := frameBufs.get(len(payload) + len(id) + 48)
	frame = append(frame, `{"type":"res","id":`...)
	frame = schemas.AppendString(frame, id)
	frame = append(frame, `,"ok":true,"payload":`...)
	frame = append(frame, payload...)
	return append(frame, '}')
}

func failureFrame(id string, e *schemas.ErrorShape, payload json.RawMessage) []byte {
	return mustJSON(schemas.Response{Type: schemas.TypeRes, ID: id, OK: false, Payload: payload, Error: e})
}

var nullJSON = []byte("null")

// handleFrame processes one frame after the handshake; false means the connection closes.
// A frame is decoded once (params stay raw bytes); only a frame outside the common shape
// takes the schema path, which also words the error.
func (c *Conn) handleFrame(data []byte) bool {
	req, st := parseRequest(data)
	switch st {
	case frameMalformed:
		c.close(websocket.StatusPolicyViolation, "malformed JSON")
		return false
	case frameLongNumber:
		c.queueError(frameID(data), wire.Invalid("invalid request frame: %s", longNumberDetail))
		return true
	case frameOther:
		var ok bool
		if req, ok = c.slowRequest(data); !ok {
			return true
		}
	}
	if !c.hub.drain.start() {
		c.queueError(req.ID, wire.Unavailable(true, "gateway shutting down"))
		return true
	}
	select {
	case c.inflight <- struct{}{}:
	default:
		c.hub.drain.done()
		e := wire.Unavailable(true, "too many requests in flight")
		e.RetryAfterMs = 100
		c.queueError(req.ID, e)
		return true
	}
	c.reqWG.Add(1)
	c.serve(newCall(c, req))
	return true
}

// serve hands r to the backend on the reader; a call the backend neither answered
// elsewhere nor handed on ends when Serve returns.
func (c *Conn) serve(r *Call) {
	defer func() {
		if p := recover(); p != nil {
			c.Log().Error("panic handling request", "method", r.Method, "panic", p)
			if !r.held {
				r.SendError(wire.Unavailable(false, "internal error handling %s", schemas.Clip(r.Method, maxEchoMethod)))
			}
		}
		if !r.held {
			r.end()
		}
		r.unref() // the reader's: r may be recycled from here on
	}()
	c.b.Serve(r)
}

// slowRequest validates a frame that is valid JSON but not in the common shape against the
// request schema; an invalid one is answered INVALID_REQUEST here (false).
func (c *Conn) slowRequest(data []byte) (Request, bool) {
	v, err := schemas.Decode(data)
	if err != nil {
		c.queueError("invalid", wire.Invalid("invalid request frame: not JSON"))
		return Request{}, false
	}
	var env struct {
		ID     any             `json:"id"`
		Method any             `json:"method"`
		Params json.RawMessage `json:"params"`
	}
	_ = json.Unmarshal(data, &env) // valid JSON; fields of the wrong type stay zero
	id, _ := env.ID.(string)
	if err := c.cfg.Schemas.Request(v); err != nil {
		if id == "" {
			id = "invalid"
		}
		c.queueError(id, wire.Invalid("invalid request frame: %s", err.Error()))
		return Request{}, false
	}
	method, _ := env.Method.(string)
	params := []byte(env.Params) // a copy: Unmarshal does not keep data
	if len(params) == 0 || string(params) == "null" {
		params = nil
	}
	return Request{ID: id, Method: method, Params: params}, true
}

// longNumberDetail words the rejection of a frame with a number literal over MaxNumberLen.
var longNumberDetail = "number literal longer than " + strconv.Itoa(MaxNumberLen) + " characters"

// frameID is the id of a frame that is valid JSON when it is a non-empty string, else
// "invalid". It decodes no number: only the id's raw bytes are looked at.
func frameID(data []byte) string {
	var env struct {
		ID json.RawMessage `json:"id"`
	}
	var id string
	if json.Unmarshal(data, &env) != nil || len(env.ID) == 0 || env.ID[0] != '"' || json.Unmarshal(env.ID, &id) != nil || id == "" {
		return "invalid"
	}
	return id
}

// ErrorShape turns a bus error into the res frame's error.
func ErrorShape(e *wire.Error) *schemas.ErrorShape {
	es := &schemas.ErrorShape{Code: e.Code, Message: e.Message, Details: e.Details}
	if e.Retryable || e.Code == wire.CodeUnavailable {
		r := e.Retryable
		es.Retryable = &r
	}
	if e.RetryAfterMs > 0 {
		ms := e.RetryAfterMs
		es.RetryAfterMs = &ms
	}
	return es
}
