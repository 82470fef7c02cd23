package webchat

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"github.com/clawdis/clawdis/edge/internal/outq"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/edge/client"
	"github.com/clawdis/clawdis/schemas"
)

// tab is one browser WebSocket: a reader (the handler goroutine), a writer goroutine
// draining the bounded queue, and one goroutine per relayed request.
type tab struct {
	s        *Server
	ws       *websocket.Conn
	id       string
	log      *slog.Logger
	queue    *outq.Queue
	inflight chan struct{}
	reqWG    sync.WaitGroup
	ctx      context.Context // canceled when the tab's reader ends
	cancel   context.CancelFunc

	registered bool  // hello-ok queued; receives events. Guarded by s.mu.
	seq        int64 // last event seq. Guarded by s.mu.
	maxPayload int64 // set once by the handshake

	closeOnce sync.Once
	closeDone chan struct{} // closed when a close started by closeNow or the writer finished
}

// serveTab runs one tab until its connection ends. The caller did tabWG.Add.
func (s *Server) serveTab(ws *websocket.Conn) {
	defer s.tabWG.Done()
	ws.SetReadLimit(-1) // the limit is enforced below, to close with our own reason
	t := &tab{
		s:          s,
		ws:         ws,
		id:         s.newTabID(),
		queue:      outq.New(s.cfg.MaxBufferedBytes),
		inflight:   make(chan struct{}, s.cfg.MaxInFlight),
		closeDone:  make(chan struct{}),
		maxPayload: DefaultMaxPayload,
	}
	t.ctx, t.cancel = context.WithCancel(s.reqCtx)
	t.log = s.log.With("tab", t.id)
	s.mu.Lock()
	s.tabs[t] = struct{}{}
	s.mu.Unlock()

	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		t.writeLoop()
	}()
	timer := time.AfterFunc(s.cfg.HandshakeTimeout, func() {
		s.mu.Lock()
		done := t.registered
		s.mu.Unlock()
		if !done {
			t.close(websocket.StatusPolicyViolation, "handshake timeout")
		}
	})

	t.readLoop()

	timer.Stop()
	s.mu.Lock()
	delete(s.tabs, t)
	s.mu.Unlock()
	t.cancel()
	t.reqWG.Wait()
	t.queue.Shut()
	<-writerDone
	started := true
	t.closeOnce.Do(func() { started = false; close(t.closeDone) })
	if started {
		<-t.closeDone
	}
	_ = ws.CloseNow()
	t.log.Debug("tab closed")
}

// close closes the tab after what is already queued.
func (t *tab) close(code websocket.StatusCode, reason string) {
	t.queue.CloseAfterFlush(int(code), reason)
}

// closeNow closes at once, dropping what is queued (slow tabs).
func (t *tab) closeNow(code websocket.StatusCode, reason string) {
	t.closeOnce.Do(func() {
		t.queue.Shut()
		go func() {
			defer close(t.closeDone)
			_ = t.ws.Close(code, reason)
		}()
	})
}

func (t *tab) writeLoop() {
	var buf [][]byte
	for range t.queue.Wake() {
		frames, cr, done := t.queue.Take(buf)
		for _, f := range frames {
			if done {
				break
			}
			ctx, cancel := context.WithTimeout(context.Background(), t.s.cfg.WriteTimeout)
			err := t.ws.Write(ctx, websocket.MessageText, f)
			cancel()
			if err != nil {
				t.log.Debug("write failed", "err", err)
				t.queue.Shut()
				_ = t.ws.CloseNow()
				return
			}
			t.queue.Written(len(f))
		}
		buf = frames
		if done {
			return
		}
		if cr != nil {
			t.closeOnce.Do(func() {
				defer close(t.closeDone)
				_ = t.ws.Close(websocket.StatusCode(cr.Code), cr.Reason)
			})
			return
		}
	}
}

func (t *tab) readLoop() {
	var buf bytes.Buffer
	for {
		_, r, err := t.ws.Reader(context.Background())
		if err != nil {
			return
		}
		buf.Reset()
		limit := t.maxPayload
		n, err := buf.ReadFrom(io.LimitReader(r, limit+1))
		if err != nil {
			return
		}
		if n > limit {
			t.log.Warn("frame too large; closing", "limit", limit)
			t.closeNow(websocket.StatusMessageTooBig, "frame too large")
			return
		}
		t.s.mu.Lock()
		registered := t.registered
		t.s.mu.Unlock()
		ok := true
		if !registered {
			ok = t.handshake(buf.Bytes())
		} else {
			ok = t.handleFrame(buf.Bytes())
		}
		if !ok {
			t.drain()
			return
		}
	}
}

// drain reads until the connection ends so that a close handshake can finish.
func (t *tab) drain() {
	for {
		if _, _, err := t.ws.Read(context.Background()); err != nil {
			return
		}
	}
}

// handshake answers the tab's hello from the upstream hello-ok. It returns false when the
// tab is closing. Any auth in the hello is ignored: the relay holds the gateway token.
// firstConnectWait bounds how long a hello waits for the first upstream connection (and at
// most half the handshake timeout, so the tab gets its hello-error before that closes it).
const firstConnectWait = 5 * time.Second

func (t *tab) handshake(data []byte) bool {
	v, err := schemas.Decode(data)
	if err != nil {
		t.close(websocket.StatusPolicyViolation, "malformed JSON")
		return false
	}
	if err := t.s.set.Hello(v); err != nil {
		t.helloError(schemas.HelloError{Reason: "invalid hello: " + err.Error()}, websocket.StatusPolicyViolation, "invalid hello")
		return false
	}
	var h schemas.Hello
	if err := json.Unmarshal(data, &h); err != nil {
		t.helloError(schemas.HelloError{Reason: "invalid hello: " + err.Error()}, websocket.StatusPolicyViolation, "invalid hello")
		return false
	}
	if h.MinProtocol > schemas.ProtocolVersion || h.MaxProtocol < schemas.ProtocolVersion {
		t.helloError(schemas.HelloError{Reason: "protocol mismatch", ExpectedProtocol: schemas.ProtocolVersion},
			websocket.StatusProtocolError, "protocol mismatch")
		return false
	}
	s := t.s
	// Right after start the upstream connection may still be on its way: a tab that says
	// hello then waits for it briefly rather than being turned away.
	select {
	case <-s.firstUp:
	case <-time.After(min(firstConnectWait, s.cfg.HandshakeTimeout/2)):
	}
	s.mu.Lock()
	if !s.up || s.stopping {
		s.mu.Unlock()
		t.helloError(schemas.HelloError{Reason: "gateway unavailable"}, websocket.StatusTryAgainLater, "gateway unavailable")
		return false
	}
	ok := s.helloOKLocked(t.id)
	t.maxPayload = ok.Policy.MaxPayload
	frame, err := json.Marshal(ok)
	res := outq.Closing
	if err == nil {
		res = t.queue.Push(frame, false)
	}
	t.registered = res == outq.Pushed
	s.mu.Unlock()
	if res != outq.Pushed {
		t.closeNow(websocket.StatusPolicyViolation, "slow consumer")
		return false
	}
	t.log.Debug("tab connected", "client", h.Client.Name, "mode", h.Client.Mode)
	return true
}

func (t *tab) helloError(he schemas.HelloError, code websocket.StatusCode, reason string) {
	he.Type = schemas.TypeHelloError
	if b, err := json.Marshal(he); err == nil {
		t.queue.Push(b, false)
	}
	t.close(code, reason)
}

// sendEvent queues an event; s.mu is held. prefix is the encoded event up to `"seq":`.
func (t *tab) sendEvent(event string, prefix []byte, droppable bool) {
	t.seq++
	frame := make([]byte, 0, len(prefix)+24)
	frame = append(frame, prefix...)
	frame = strconv.AppendInt(frame, t.seq, 10)
	frame = append(frame, '}')
	switch t.queue.Push(frame, droppable) {
	case outq.Dropped:
		t.log.Debug("slow tab: event skipped", "event", event, "seq", t.seq)
	case outq.Overflow:
		t.log.Warn("slow tab: closing", "event", event)
		t.closeNow(websocket.StatusPolicyViolation, "slow consumer")
	}
}

// sendRes queues a response; a full queue closes the tab as a slow consumer.
func (t *tab) sendRes(res schemas.Response) {
	res.Type = schemas.TypeRes
	b, err := json.Marshal(res)
	if err != nil {
		t.log.Error("encode response", "id", res.ID, "err", err)
		return
	}
	if t.queue.Push(b, false) == outq.Overflow {
		t.log.Warn("slow tab: closing", "res", res.ID)
		t.closeNow(websocket.StatusPolicyViolation, "slow consumer")
	}
}

func (t *tab) sendError(id, code, msg string, retryable bool) {
	e := &schemas.ErrorShape{Code: code, Message: msg}
	if retryable || code == wire.CodeUnavailable {
		e.Retryable = &retryable
	}
	t.sendRes(schemas.Response{ID: id, OK: false, Error: e})
}

type reqEnvelope struct {
	ID     any             `json:"id"`
	Method string          `json:"method"`
	Params json.RawMessage `json:"params"`
}

// handleFrame checks one frame after the handshake and relays it; false means the tab closes.
func (t *tab) handleFrame(data []byte) bool {
	v, err := schemas.Decode(data)
	if err != nil {
		t.close(websocket.StatusPolicyViolation, "malformed JSON")
		return false
	}
	var env reqEnvelope
	_ = json.Unmarshal(data, &env) // valid JSON; fields of the wrong type stay zero
	id, _ := env.ID.(string)
	if err := t.s.set.Request(v); err != nil {
		if id == "" {
			id = "invalid"
		}
		t.sendError(id, wire.CodeInvalidRequest, "invalid request frame: "+err.Error(), false)
		return true
	}
	select {
	case t.inflight <- struct{}{}:
	default:
		e := &schemas.ErrorShape{Code: wire.CodeUnavailable, Message: "too many requests in flight"}
		yes, after := true, int64(100)
		e.Retryable, e.RetryAfterMs = &yes, &after
		t.sendRes(schemas.Response{ID: id, OK: false, Error: e})
		return true
	}
	params := env.Params
	if len(params) == 0 || string(params) == "null" {
		params = nil
	}
	t.reqWG.Add(1)
	go func() {
		defer t.reqWG.Done()
		defer func() { <-t.inflight }()
		t.relay(id, env.Method, params)
	}()
	return true
}

// relay sends one request upstream under the client's own id and answers the tab under the
// tab's id: once, or twice for the two-stage agent method (the ack, then the final).
func (t *tab) relay(id, method string, params json.RawMessage) {
	cl := t.s.cl.Load()
	if cl == nil {
		t.sendError(id, wire.CodeUnavailable, "gateway not connected", true)
		return
	}
	var payload json.RawMessage
	var err error
	if method == schemas.MethodAgent {
		payload, err = cl.RequestFinal(t.ctx, method, params, func(ack json.RawMessage) {
			t.sendRes(schemas.Response{ID: id, OK: true, Payload: orNull(ack)})
		})
	} else {
		payload, err = cl.Request(t.ctx, method, params)
	}
	if err == nil {
		t.sendRes(schemas.Response{ID: id, OK: true, Payload: orNull(payload)})
		return
	}
	var re *client.ResponseError
	switch {
	case errors.As(err, &re):
		shape := re.Shape
		t.sendRes(schemas.Response{ID: id, OK: false, Payload: re.Payload, Error: &shape})
	case t.ctx.Err() != nil:
		// The tab is gone, or the server is stopping: nobody to answer.
	case errors.Is(err, client.ErrDisconnected), errors.Is(err, client.ErrClosed):
		t.sendError(id, wire.CodeUnavailable, "gateway not connected", true)
	default:
		t.log.Warn("relay failed", "method", method, "err", err)
		t.sendError(id, wire.CodeUnavailable, method+" failed in the webchat relay", false)
	}
}

func orNull(p json.RawMessage) json.RawMessage {
	if len(p) == 0 {
		return json.RawMessage("null")
	}
	return p
}
