package edge

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"github.com/clawdis/clawdis/edge/internal/outq"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/nats-io/nats.go"

	"github.com/clawdis/clawdis/bus/subject"
	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/schemas"
)

// conn is one client connection: a reader (this goroutine), a writer goroutine draining the
// bounded queue, and one goroutine per request in flight.
type conn struct {
	s        *Server
	ws       *websocket.Conn
	id       string
	remoteIP string // empty for loopback clients
	log      *slog.Logger
	queue    *outq.Queue
	inflight chan struct{}
	reqWG    sync.WaitGroup

	hello      schemas.Hello
	registered atomic.Bool // hello-ok sent; receives events
	seq        int64       // last event seq; guarded by s.mu (events are sent under it)
	closeOnce  sync.Once
	closeDone  chan struct{} // closed when a close started by closeNow has finished
}

func (s *Server) serveConn(ws *websocket.Conn, r *http.Request) {
	ws.SetReadLimit(-1) // we enforce maxPayload ourselves to close with our own reason
	c := &conn{
		s:         s,
		ws:        ws,
		id:        s.newConnID(),
		remoteIP:  remoteIP(r),
		queue:     outq.New(s.cfg.MaxBufferedBytes),
		inflight:  make(chan struct{}, s.cfg.MaxInFlight),
		closeDone: make(chan struct{}),
	}
	c.log = s.log.With("conn", c.id)
	s.mu.Lock()
	s.all[c] = struct{}{}
	s.mu.Unlock()
	if f := s.connAdded.Load(); f != nil {
		(*f)()
	}
	defer func() {
		s.mu.Lock()
		delete(s.all, c)
		s.mu.Unlock()
	}()
	c.log.Debug("connection opened", "remote", r.RemoteAddr)

	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		c.writeLoop()
	}()
	timer := time.AfterFunc(s.cfg.HandshakeTimeout, func() {
		if !c.registered.Load() {
			c.close(websocket.StatusPolicyViolation, "handshake timeout")
		}
	})

	c.readLoop()

	timer.Stop()
	if c.registered.Load() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		c.announce(wire.ClientDisconnect)
	}
	c.reqWG.Wait()
	c.queue.Shut()
	<-writerDone
	// Let a close handshake that is under way finish; otherwise drop the socket.
	started := true
	c.closeOnce.Do(func() { started = false; close(c.closeDone) })
	if started {
		<-c.closeDone
	}
	_ = ws.CloseNow()
	c.log.Debug("connection closed")
}

// close closes the connection after what is already queued (hello-error, responses).
func (c *conn) close(code websocket.StatusCode, reason string) {
	c.queue.CloseAfterFlush(int(code), reason)
}

// closeNow closes at once, dropping what is queued (slow consumers).
func (c *conn) closeNow(code websocket.StatusCode, reason string) {
	c.closeOnce.Do(func() {
		c.queue.Shut()
		go func() {
			defer close(c.closeDone)
			_ = c.ws.Close(code, reason)
		}()
	})
}

func (c *conn) writeLoop() {
	var buf [][]byte
	for range c.queue.Wake() {
		frames, cr, done := c.queue.Take(buf)
		for _, f := range frames {
			if done {
				break
			}
			ctx, cancel := context.WithTimeout(context.Background(), c.s.cfg.WriteTimeout)
			err := c.ws.Write(ctx, websocket.MessageText, f)
			cancel()
			if err != nil {
				c.log.Debug("write failed", "err", err)
				c.queue.Shut()
				_ = c.ws.CloseNow()
				return
			}
			c.queue.Written(len(f))
			if c.s.cfg.Verbose {
				c.log.Debug("frame out", "bytes", len(f), "frame", truncate(f))
			}
		}
		buf = frames
		if done {
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

func (c *conn) readLoop() {
	var buf bytes.Buffer
	max := c.s.cfg.MaxPayload
	for {
		_, r, err := c.ws.Reader(context.Background())
		if err != nil {
			return
		}
		buf.Reset()
		n, err := buf.ReadFrom(io.LimitReader(r, max+1))
		if err != nil {
			return
		}
		if n > max {
			c.log.Warn("frame too large; closing", "limit", max)
			c.closeNow(websocket.StatusMessageTooBig, "frame too large")
			return
		}
		if c.s.cfg.Verbose {
			c.log.Debug("frame in", "bytes", n, "frame", redactedPreview(buf.Bytes()))
		}
		if !c.registered.Load() {
			if !c.handshake(buf.Bytes()) {
				// keep reading so the close handshake completes; nothing else is processed
				c.drain()
				return
			}
			continue
		}
		if !c.handleFrame(buf.Bytes()) {
			c.drain()
			return
		}
	}
}

// drain reads until the connection ends, discarding data, so a close handshake can finish.
func (c *conn) drain() {
	for {
		if _, _, err := c.ws.Read(context.Background()); err != nil {
			return
		}
	}
}

// handshake processes the first frame. It returns false when the connection is closing.
func (c *conn) handshake(data []byte) bool {
	v, err := schemas.Decode(data)
	if err != nil {
		c.close(websocket.StatusPolicyViolation, "malformed JSON")
		return false
	}
	if err := c.s.cfg.Schemas.Hello(v); err != nil {
		c.helloError(schemas.HelloError{Reason: "invalid hello: " + err.Error()}, websocket.StatusPolicyViolation, "invalid hello")
		return false
	}
	var h schemas.Hello
	if err := json.Unmarshal(data, &h); err != nil {
		c.helloError(schemas.HelloError{Reason: "invalid hello: " + err.Error()}, websocket.StatusPolicyViolation, "invalid hello")
		return false
	}
	if h.MinProtocol > schemas.ProtocolVersion || h.MaxProtocol < schemas.ProtocolVersion {
		c.helloError(schemas.HelloError{Reason: "protocol mismatch", ExpectedProtocol: schemas.ProtocolVersion},
			websocket.StatusProtocolError, "protocol mismatch")
		return false
	}
	if want := c.s.cfg.Token; want != "" {
		got := ""
		if h.Auth != nil {
			got = h.Auth.Token
		}
		if subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
			c.log.Warn("refused client with wrong or missing token", "client", h.Client.Name)
			c.helloError(schemas.HelloError{Reason: "unauthorized"}, websocket.StatusPolicyViolation, "unauthorized")
			return false
		}
	}
	c.hello = h
	if c.s.stopping.Load() {
		c.helloError(schemas.HelloError{Reason: "gateway stopping"}, websocket.StatusServiceRestart, "service restart")
		return false
	}
	c.s.ensureState()

	s := c.s
	s.mu.Lock()
	presence, health := s.snapshotLocked()
	ok := schemas.HelloOK{
		Type:     schemas.TypeHelloOK,
		Protocol: schemas.ProtocolVersion,
		Server:   schemas.ServerInfo{Version: s.cfg.Version, Commit: s.cfg.Commit, Host: s.cfg.Host, ConnID: c.id},
		Features: schemas.Features{Methods: s.Methods(), Events: append([]string(nil), s.cfg.Events...)},
		Snapshot: schemas.Snapshot{
			Presence:     presence,
			StateVersion: s.stateVersion,
			UptimeMs:     s.cfg.Now().Sub(s.started).Milliseconds(),
		},
		Policy: schemas.Policy{
			MaxPayload:       s.cfg.MaxPayload,
			MaxBufferedBytes: s.cfg.MaxBufferedBytes,
			TickIntervalMs:   s.cfg.TickInterval.Milliseconds(),
		},
	}
	if err := json.Unmarshal(health, &ok.Snapshot.Health); err != nil {
		ok.Snapshot.Health = s.fallbackHealth()
	}
	frame := mustJSON(ok)
	res := c.queue.Push(frame, false)
	if res == outq.Pushed {
		s.conns[c] = struct{}{}
		c.registered.Store(true)
	}
	s.mu.Unlock()
	if res != outq.Pushed {
		c.closeNow(websocket.StatusPolicyViolation, "slow consumer")
		return false
	}
	c.log.Info("client connected", "client", h.Client.Name, "mode", h.Client.Mode, "version", h.Client.Version)
	c.announce(wire.ClientConnect)
	return true
}

func (c *conn) helloError(he schemas.HelloError, code websocket.StatusCode, reason string) {
	he.Type = schemas.TypeHelloError
	c.queue.Push(mustJSON(he), false)
	c.close(code, reason)
}

// announce tells the presence service about a non-cli client connecting or leaving.
func (c *conn) announce(event string) {
	if c.hello.Client.Mode == "cli" {
		return
	}
	key := c.hello.Client.InstanceID
	if key == "" {
		key = c.id
	}
	cp := wire.ClientPresence{
		Key: key, Event: event, InstanceID: c.hello.Client.InstanceID,
		Host: c.hello.Client.Name, IP: c.remoteIP, Version: c.hello.Client.Version, Mode: c.hello.Client.Mode,
	}
	ctx, cancel := context.WithTimeout(c.s.reqCtx, 5*time.Second)
	defer cancel()
	if err := wire.RequestJSON(ctx, c.s.nc, subject.PresenceClient, cp, nil); err != nil {
		c.log.Warn("presence update failed", "event", event, "err", err)
	}
}

// sendEvent queues an event for this connection. s.mu is held. prefix is the encoded event up
// to and including `"seq":`.
func (c *conn) sendEvent(event string, prefix []byte, droppable bool) {
	c.seq++
	frame := make([]byte, 0, len(prefix)+24)
	frame = append(frame, prefix...)
	frame = strconv.AppendInt(frame, c.seq, 10)
	frame = append(frame, '}')
	switch c.queue.Push(frame, droppable) {
	case outq.Dropped:
		c.log.Debug("slow consumer: event skipped", "event", event, "seq", c.seq)
	case outq.Overflow:
		c.log.Warn("slow consumer: closing", "event", event)
		c.closeNow(websocket.StatusPolicyViolation, "slow consumer")
	}
}

// sendRes queues a response; a full queue closes the connection as a slow consumer.
func (c *conn) sendRes(res schemas.Response) {
	if c.queue.Push(mustJSON(res), false) == outq.Overflow {
		c.log.Warn("slow consumer: closing", "res", res.ID)
		c.closeNow(websocket.StatusPolicyViolation, "slow consumer")
	}
}

func (c *conn) sendError(id string, e *wire.Error) {
	c.sendRes(schemas.Response{Type: schemas.TypeRes, ID: id, OK: false, Error: errorShape(e)})
}

type reqEnvelope struct {
	ID     any             `json:"id"`
	Method string          `json:"method"`
	Params json.RawMessage `json:"params"`
}

// handleFrame processes one frame after the handshake; false means the connection closes.
func (c *conn) handleFrame(data []byte) bool {
	v, err := schemas.Decode(data)
	if err != nil {
		c.close(websocket.StatusPolicyViolation, "malformed JSON")
		return false
	}
	var env reqEnvelope
	_ = json.Unmarshal(data, &env) // valid JSON; fields of the wrong type stay zero
	id, _ := env.ID.(string)
	if err := c.s.cfg.Schemas.Request(v); err != nil {
		if id == "" {
			id = "invalid"
		}
		c.sendError(id, wire.Invalid("invalid request frame: %s", err.Error()))
		return true
	}
	route, ok := c.s.routes[env.Method]
	if !ok {
		c.sendError(id, wire.Invalid("unknown method: %s", env.Method))
		return true
	}
	var params any
	if m, ok := v.(map[string]any); ok {
		params = m["params"]
	}
	if err := c.s.cfg.Schemas.Params(route.Method, params); err != nil {
		c.sendError(id, wire.Invalid("invalid %s params: %s", route.Method, err.Error()))
		return true
	}
	if !c.s.drain.start() {
		c.sendError(id, wire.Unavailable(true, "gateway shutting down"))
		return true
	}
	select {
	case c.inflight <- struct{}{}:
	default:
		c.s.drain.done()
		e := wire.Unavailable(true, "too many requests in flight")
		e.RetryAfterMs = 100
		c.sendError(id, e)
		return true
	}
	body := []byte(env.Params)
	if len(body) == 0 || string(body) == "null" {
		body = nil
	}
	c.reqWG.Add(1)
	go func() {
		defer c.reqWG.Done()
		defer c.s.drain.done()
		var once sync.Once
		release := func() { once.Do(func() { <-c.inflight }) }
		defer release()
		c.call(id, route, body, release)
	}()
	return true
}

// call forwards one request to the bus and answers it exactly once (twice for a two-stage
// method: the ack, then the final). release frees the request's in-flight slot; it is
// called once the request is acknowledged (a two-stage run no longer counts, SPEC §5.3).
func (c *conn) call(id string, route Route, params []byte, release func()) {
	defer func() {
		if p := recover(); p != nil {
			c.log.Error("panic handling request", "method", route.Method, "panic", p)
			c.sendError(id, wire.Unavailable(false, "internal error handling %s", route.Method))
		}
	}()
	subj, body := route.Subject, params
	var err error
	if route.SubjectFor != nil {
		if subj, err = route.SubjectFor(params); err != nil {
			c.sendError(id, wire.Invalid("invalid %s params: %s", route.Method, err.Error()))
			return
		}
	}
	if route.Rewrite != nil {
		if body, err = route.Rewrite(params, c.s.cfg.MaxPayload); err != nil {
			c.sendError(id, wire.Invalid("invalid %s params: %s", route.Method, err.Error()))
			return
		}
	}
	var waiter *wire.RunWaiter
	if route.TwoStage {
		var p struct {
			IdempotencyKey string `json:"idempotencyKey"`
		}
		if json.Unmarshal(params, &p) != nil || p.IdempotencyKey == "" {
			c.sendError(id, wire.Invalid("invalid %s params: idempotencyKey required", route.Method))
			return
		}
		waiter = c.s.runs.Watch(p.IdempotencyKey)
		defer waiter.Stop()
	}
	reply, we := c.request(route, subj, body, route.Deadline)
	if we != nil {
		c.sendError(id, we)
		return
	}
	if waiter != nil && reply.Header.Get(wire.HeaderRunFinal) != "" {
		c.sendFinal(id, route, reply.Data)
		return
	}
	payload := reply.Data
	if len(payload) == 0 {
		payload = []byte("null")
	}
	c.sendRes(schemas.Response{Type: schemas.TypeRes, ID: id, OK: true, Payload: payload})
	if waiter == nil {
		return
	}
	release()
	fin, err := waiter.Wait(c.s.reqCtx)
	if err != nil {
		c.sendError(id, wire.Unavailable(true, "gateway shutting down"))
		return
	}
	c.sendRunFinal(id, route, fin)
}

// request sends one bus request and maps every failure to a wire error.
func (c *conn) request(route Route, subj string, body []byte, deadline time.Duration) (*nats.Msg, *wire.Error) {
	ctx, cancel := context.WithTimeout(c.s.reqCtx, deadline)
	defer cancel()
	reply, err := wire.RequestMsg(ctx, c.s.nc, &nats.Msg{Subject: subj, Data: body})
	if err != nil {
		var we *wire.Error
		if !errors.As(err, &we) {
			we = wire.Unavailable(true, "%s failed: %s", route.Method, err.Error())
		}
		if c.s.stopping.Load() && errors.Is(ctx.Err(), context.Canceled) {
			we = wire.Unavailable(true, "gateway shutting down")
		}
		return nil, we
	}
	return reply, nil
}

// sendFinal answers with a run's final as the service encoded it.
func (c *conn) sendFinal(id string, route Route, data []byte) {
	var fin wire.RunFinal
	if err := json.Unmarshal(data, &fin); err != nil {
		c.sendError(id, wire.Unavailable(false, "%s: malformed final from the service: %s", route.Method, err.Error()))
		return
	}
	c.sendRunFinal(id, route, fin)
}

// sendRunFinal sends the final res of a two-stage run.
func (c *conn) sendRunFinal(id string, route Route, fin wire.RunFinal) {
	res := schemas.Response{Type: schemas.TypeRes, ID: id, OK: fin.OK, Payload: fin.Payload}
	if fin.OK && len(res.Payload) == 0 {
		res.Payload = []byte("null")
	}
	if !fin.OK {
		if fin.Error == nil {
			fin.Error = wire.Unavailable(false, "%s run failed", route.Method)
		}
		res.Error = errorShape(fin.Error)
	}
	c.sendRes(res)
}

func errorShape(e *wire.Error) *schemas.ErrorShape {
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

func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return ""
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsLoopback() {
		return ""
	}
	return host
}
