package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/clawdis/clawdis/edge/internal/watchdog"
	"github.com/clawdis/clawdis/schemas"
)

// Read limits. Until hello-ok tells the policy, a snapshot of up to 1 MiB is accepted;
// afterwards the limit is max(policy.maxPayload·2, 1 MiB).
const (
	handshakeReadLimit = 1 << 20
	minReadLimit       = 1 << 20
)

// session is one WebSocket connection after a successful handshake.
type session struct {
	conn    *websocket.Conn
	hello   schemas.HelloOK  // without its snapshot (fullHello adds it)
	raw     []byte           // the hello-ok as received
	pending map[uint64]*call // guarded by Client.mu; nil once the session dropped
	ticks   chan struct{}    // capacity 1; the reader saw a tick
	lastSeq int64            // reader goroutine only
	rbuf    bytes.Buffer     // reader goroutine only: each frame is read into it

	// Writes take wmu and run under the session's write watchdog (one timer, armed around
	// each write, instead of a context with its own timer per write).
	wmu  sync.Mutex
	wdog watchdog.Watchdog // Expire closes conn
}

// write sends one text frame within writeTimeout.
func (s *session) write(frame []byte) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.wdog.Arm(writeTimeout)
	err := s.conn.Write(context.Background(), websocket.MessageText, frame)
	s.wdog.Disarm()
	return err
}

// connect dials the gateway and completes the handshake within DialTimeout.
func (c *Client) connect(ctx context.Context) (*session, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.DialTimeout)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, c.opts.URL, &websocket.DialOptions{HTTPHeader: c.opts.HTTPHeader})
	if err != nil {
		return nil, unreachable(c.opts.URL, err)
	}
	conn.SetReadLimit(handshakeReadLimit)
	hello, raw, err := c.handshake(ctx, conn)
	if err != nil {
		_ = conn.CloseNow()
		return nil, err
	}
	conn.SetReadLimit(max(hello.Policy.MaxPayload*2, minReadLimit))
	s := &session{
		conn:    conn,
		hello:   hello,
		raw:     raw,
		pending: make(map[uint64]*call),
		ticks:   make(chan struct{}, 1),
	}
	s.wdog.Expire = func() { _ = conn.CloseNow() }
	return s, nil
}

func (c *Client) helloFrame() schemas.Hello {
	h := schemas.Hello{
		Type:        schemas.TypeHello,
		MinProtocol: schemas.ProtocolVersion,
		MaxProtocol: schemas.ProtocolVersion,
		Client:      c.opts.Client,
		Caps:        c.opts.Caps,
	}
	if c.opts.Token != "" {
		h.Auth = &schemas.HelloAuth{Token: c.opts.Token}
	}
	return h
}

// handshake sends hello and reads the gateway's answer: the hello-ok without its snapshot,
// and the hello-ok as received.
func (c *Client) handshake(ctx context.Context, conn *websocket.Conn) (hello schemas.HelloOK, raw []byte, err error) {
	frame, err := json.Marshal(c.helloFrame())
	if err != nil {
		return schemas.HelloOK{}, nil, fmt.Errorf("encode hello: %w", err)
	}
	if err := conn.Write(ctx, websocket.MessageText, frame); err != nil {
		return schemas.HelloOK{}, nil, c.handshakeErr("send hello", err)
	}
	_, data, err := conn.Read(ctx)
	if err != nil {
		return schemas.HelloOK{}, nil, c.handshakeErr("read hello answer", err)
	}
	if c.opts.FrameHook != nil {
		c.opts.FrameHook(data)
	}
	if bytes.HasPrefix(data, []byte(`{"type":"hello-ok",`)) {
		// The gateway's hello-ok: decoded once, without a first pass for its type.
		hello, err = c.helloOK(conn, data)
		return hello, data, err
	}
	var head struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return schemas.HelloOK{}, nil, c.handshakeErr("decode hello answer", err)
	}
	switch head.Type {
	case schemas.TypeHelloOK:
		hello, err = c.helloOK(conn, data)
		return hello, data, err
	case schemas.TypeHelloError:
		var he schemas.HelloError
		if err := json.Unmarshal(data, &he); err != nil {
			return schemas.HelloOK{}, nil, c.handshakeErr("decode hello-error", err)
		}
		return schemas.HelloOK{}, nil, &HelloError{Reason: he.Reason, ExpectedProtocol: he.ExpectedProtocol, MinClient: he.MinClient}
	default:
		return schemas.HelloOK{}, nil, fmt.Errorf("gateway handshake at %s: unexpected %q frame before hello-ok", c.opts.URL, head.Type)
	}
}

// helloOK decodes and checks a hello-ok: all but its snapshot, which stays raw until Hello
// or OnConnect asks for it (decoding the snapshot was most of the client's CPU in a connect).
func (c *Client) helloOK(conn *websocket.Conn, data []byte) (schemas.HelloOK, error) {
	var head struct {
		Type     string             `json:"type"`
		Protocol int                `json:"protocol"`
		Server   schemas.ServerInfo `json:"server"`
		Features schemas.Features   `json:"features"`
		Policy   schemas.Policy     `json:"policy"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return schemas.HelloOK{}, c.handshakeErr("decode hello-ok", err)
	}
	ok := schemas.HelloOK{Type: head.Type, Protocol: head.Protocol, Server: head.Server, Features: head.Features, Policy: head.Policy}
	if ok.Type != schemas.TypeHelloOK {
		return schemas.HelloOK{}, fmt.Errorf("gateway handshake at %s: unexpected %q frame before hello-ok", c.opts.URL, ok.Type)
	}
	if ok.Protocol != schemas.ProtocolVersion {
		_ = conn.Close(websocket.StatusProtocolError, "protocol mismatch")
		return schemas.HelloOK{}, fmt.Errorf("gateway handshake at %s: gateway chose protocol %d, client speaks %d",
			c.opts.URL, ok.Protocol, schemas.ProtocolVersion)
	}
	return ok, nil
}

// fullHello is the hello-ok with its snapshot decoded from raw (left empty when the
// snapshot does not decode).
func fullHello(head schemas.HelloOK, raw []byte) schemas.HelloOK {
	var snap struct {
		Snapshot schemas.Snapshot `json:"snapshot"`
	}
	if json.Unmarshal(raw, &snap) == nil {
		head.Snapshot = snap.Snapshot
	}
	return head
}

func (c *Client) handshakeErr(op string, err error) error {
	if ce := asCloseError(err); ce != nil {
		return ce
	}
	return fmt.Errorf("gateway handshake at %s: %s: %w", c.opts.URL, op, err)
}

// install makes s the current connection.
func (c *Client) install(s *session) {
	c.mu.Lock()
	c.cur = s
	c.hello, c.helloRaw, c.helloFull = s.hello, s.raw, false
	c.mu.Unlock()
	if c.log.Enabled(context.Background(), slog.LevelInfo) {
		c.log.Info("connected", "url", c.opts.URL, "conn_id", s.hello.Server.ConnID,
			"server_version", s.hello.Server.Version, "tick_interval_ms", s.hello.Policy.TickIntervalMs)
	}
	if f := c.opts.OnConnect; f != nil {
		c.disp.push(func() { f(fullHello(s.hello, s.raw)) })
	}
}

// supervise serves connections one after another until the client is finally closed.
func (c *Client) supervise(s *session) {
	defer c.wg.Done()
	for {
		cause := c.serve(s)
		c.drop(s, cause)
		if c.ctx.Err() != nil {
			c.finish(ErrClosed)
			return
		}
		if !c.opts.Reconnect {
			c.finish(cause)
			return
		}
		if s = c.reconnect(); s == nil {
			c.finish(ErrClosed)
			return
		}
		c.install(s)
	}
}

// serve reads s until it drops, the tick watchdog fires or the client is closed, and
// returns the cause. It returns only after its reader goroutine has stopped.
func (c *Client) serve(s *session) error {
	readErr := make(chan error, 1)
	go func() { readErr <- c.readLoop(s) }()

	window := 2 * time.Duration(s.hello.Policy.TickIntervalMs) * time.Millisecond
	var timer *time.Timer
	var expired <-chan time.Time
	if window > 0 {
		timer = time.NewTimer(window)
		defer timer.Stop()
		expired = timer.C
	}
	for {
		select {
		case err := <-readErr:
			if ce := asCloseError(err); ce != nil {
				return ce
			}
			return fmt.Errorf("read: %w", err)
		case <-s.ticks:
			if timer != nil {
				timer.Reset(window)
			}
		case <-expired:
			c.log.Warn("no tick from the gateway, closing the connection", "window", window)
			c.closeConn(s, CloseCodeTickTimeout, "tick timeout")
			<-readErr
			return ErrTickTimeout
		case <-c.ctx.Done():
			c.closeConn(s, websocket.StatusNormalClosure, "client closed")
			<-readErr
			return ErrClosed
		}
	}
}

func (c *Client) closeConn(s *session, code websocket.StatusCode, reason string) {
	if err := s.conn.Close(code, reason); err != nil {
		c.log.Debug("close handshake incomplete", "code", int(code), "err", err)
	}
}

func (c *Client) readLoop(s *session) error {
	for {
		// Never a cancellable context here: cancelling it would tear the connection down.
		_, r, err := s.conn.Reader(context.Background())
		if err != nil {
			return err
		}
		s.rbuf.Reset()
		if _, err := s.rbuf.ReadFrom(r); err != nil {
			return err
		}
		// One exact copy per frame: payloads handed out alias it.
		data := bytes.Clone(s.rbuf.Bytes())
		if s.rbuf.Cap() > 64<<10 {
			s.rbuf = bytes.Buffer{} // do not keep a large frame's buffer
		}
		c.handleFrame(s, data)
	}
}

// inFrame is the union of the frames a client receives after the handshake, so each frame
// is decoded once.
type inFrame struct {
	Type         string                `json:"type"`
	ID           string                `json:"id"`
	OK           bool                  `json:"ok"`
	Payload      json.RawMessage       `json:"payload"`
	Error        *schemas.ErrorShape   `json:"error"`
	Event        string                `json:"event"`
	Seq          *int64                `json:"seq"`
	StateVersion *schemas.StateVersion `json:"stateVersion"`
}

func (c *Client) handleFrame(s *session, data []byte) {
	if c.opts.FrameHook != nil {
		c.opts.FrameHook(data)
	}
	if id, payload, ok := okRes(data); ok {
		c.resolve(s, id, schemas.Response{Type: schemas.TypeRes, OK: true, Payload: payload})
		return
	}
	var f inFrame
	if err := json.Unmarshal(data, &f); err != nil {
		c.log.Warn("malformed frame from the gateway", "bytes", len(data), "err", err)
		return
	}
	switch f.Type {
	case schemas.TypeRes:
		c.resolve(s, []byte(f.ID), schemas.Response{Type: f.Type, ID: f.ID, OK: f.OK, Payload: f.Payload, Error: f.Error})
	case schemas.TypeEvent:
		c.event(s, schemas.Event{Type: f.Type, Event: f.Event, Payload: f.Payload, Seq: f.Seq, StateVersion: f.StateVersion})
	default:
		c.log.Warn("unexpected frame from the gateway", "type", f.Type)
	}
}

// isAck reports whether the payload of a two-stage method's first res is the
// acknowledgement ({status:"accepted"}) rather than the final: a repeat of a finished run is
// answered with its remembered final alone (SPEC §6.5).
func isAck(payload json.RawMessage) bool {
	var p struct {
		Status string `json:"status"`
	}
	return json.Unmarshal(payload, &p) == nil && p.Status == schemas.RunAccepted
}

// okRes recognises the common res frame, as the gateway builds it: exactly
// {"type":"res","id":"<id>","ok":true,"payload":<one JSON value>} with an id without
// escapes. It returns the id's bytes and the payload (aliasing data). Anything else is
// left to the decoder.
func okRes(data []byte) (id, payload []byte, ok bool) {
	const prefix, mid = `{"type":"res","id":"`, `","ok":true,"payload":`
	rest, found := bytes.CutPrefix(data, []byte(prefix))
	if !found {
		return nil, nil, false
	}
	end := bytes.IndexByte(rest, '"')
	if end < 0 || bytes.IndexByte(rest[:end], '\\') >= 0 {
		return nil, nil, false
	}
	id = rest[:end]
	rest, found = bytes.CutPrefix(rest[end:], []byte(mid))
	if !found || len(rest) < 2 || rest[len(rest)-1] != '}' {
		return nil, nil, false
	}
	payload = rest[:len(rest)-1]
	if !json.Valid(payload) { // also rules out a second key after the payload
		return nil, nil, false
	}
	return id, payload, true
}

// callID parses the decimal id of one of our requests (no sign, no leading zero).
func callID(b []byte) (uint64, bool) {
	if len(b) == 0 || b[0] == '0' && len(b) > 1 {
		return 0, false
	}
	n, err := strconv.ParseUint(string(b), 10, 64) // digits only: no sign, no underscores in base 10
	return n, err == nil
}

// resolve hands a res to its pending call. A two-stage call stays pending after an ok ack.
func (c *Client) resolve(s *session, rawID []byte, res schemas.Response) {
	id, valid := callID(rawID)
	c.mu.Lock()
	var cl *call
	if valid {
		cl = s.pending[id]
	}
	if cl != nil {
		if cl.twoStage && res.OK && !cl.acked && isAck(res.Payload) {
			cl.acked = true
		} else {
			delete(s.pending, id)
		}
		// At most two responses reach a call: the ack and the final.
		cl.res[cl.n] = res
		cl.n++
	}
	c.mu.Unlock()
	if cl == nil {
		c.log.Debug("response for no pending request", "id", string(rawID))
		return
	}
	wakeCall(cl)
}

func (c *Client) event(s *session, ev schemas.Event) {
	if ev.Seq != nil {
		seq := *ev.Seq
		if seq > s.lastSeq+1 {
			expected := s.lastSeq + 1
			c.log.Info("event seq gap", "expected", expected, "got", seq)
			if f := c.opts.OnGap; f != nil {
				c.disp.push(func() { f(expected, seq) })
			}
		}
		if seq > s.lastSeq {
			s.lastSeq = seq
		}
	}
	if ev.Event == schemas.EventTick {
		select {
		case s.ticks <- struct{}{}:
		default:
		}
	}
	if f := c.opts.OnEvent; f != nil {
		c.disp.push(func() { f(ev) })
	}
}

// drop ends s: it is no longer current and its pending calls fail with ErrDisconnected.
func (c *Client) drop(s *session, cause error) {
	c.mu.Lock()
	if c.cur == s {
		c.cur = nil
	}
	pending := s.pending
	s.pending = nil
	if len(pending) > 0 {
		// Under the same lock that took them: a call forgotten later is not touched.
		err := fmt.Errorf("%w: %w", ErrDisconnected, cause)
		for _, cl := range pending {
			cl.err = err
		}
	}
	c.mu.Unlock()
	for _, cl := range pending {
		wakeCall(cl)
	}
	if c.log.Enabled(context.Background(), slog.LevelInfo) {
		c.log.Info("disconnected", "conn_id", s.hello.Server.ConnID, "pending_failed", len(pending), "cause", cause)
	}
	if f := c.opts.OnDisconnect; f != nil {
		c.disp.push(func() { f(cause) })
	}
}

// reconnect dials with backoff until it succeeds or the client is closed (then nil).
func (c *Client) reconnect() *session {
	for attempt := 0; ; attempt++ {
		d := c.opts.Backoff.Delay(attempt, nil)
		c.log.Debug("reconnecting", "attempt", attempt+1, "delay", d)
		t := time.NewTimer(d)
		select {
		case <-c.ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		s, err := c.connect(c.ctx)
		if err == nil {
			return s
		}
		if c.ctx.Err() != nil {
			return nil
		}
		c.log.Warn("reconnect failed", "attempt", attempt+1, "err", err)
	}
}

// finish marks the client finally closed and lets the callback goroutine end.
func (c *Client) finish(cause error) {
	c.mu.Lock()
	c.finished = true
	c.finalErr = cause
	c.mu.Unlock()
	c.disp.stop()
}
