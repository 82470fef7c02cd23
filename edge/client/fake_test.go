package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/clawdis/clawdis/schemas"
)

// waitLimit guards every wait in these tests so that a bug fails the test instead of
// hanging it; nothing waits for it on success.
const waitLimit = 10 * time.Second

var loadSchemas = sync.OnceValues(schemas.Load)

// fakeConfig scripts the fake gateway.
type fakeConfig struct {
	tickIntervalMs int64                                   // default 30000 (no tick is ever sent by the fake itself)
	maxPayload     int64                                   // default 512 KiB
	presence       []schemas.PresenceEntry                 // snapshot presence
	refuse         *schemas.HelloError                     // answer hello with this, then close
	closeCode      websocket.StatusCode                    // with closeReason: close after hello instead of answering
	closeReason    string                                  //
	onReq          func(fc *fakeConn, req schemas.Request) // default: echo
}

// fakeServer is a small gateway speaking the frames of schemas/types.go on 127.0.0.1. It
// can be stopped and restarted on the same address.
type fakeServer struct {
	t    *testing.T
	addr string
	url  string
	set  *schemas.Set

	handlers  sync.WaitGroup
	hellos    chan []byte    // every raw hello received
	connected chan *fakeConn // every connection after its hello-ok

	mu      sync.Mutex
	cfg     fakeConfig
	srv     *httptest.Server
	conns   map[*fakeConn]struct{}
	stopped bool
	nconn   int
}

// fakeConn is one accepted client connection.
type fakeConn struct {
	s     *fakeServer
	ws    *websocket.Conn
	id    string
	hello []byte
	reqs  chan schemas.Request // requests after onReq ran (the first 256)
	gone  chan struct{}        // closed when the server stopped reading; readErr is set then
	// readErr is the error that ended the server's read loop (carries the client's close code).
	readErr error
}

func newFakeServer(t *testing.T, cfg fakeConfig) *fakeServer {
	t.Helper()
	set, err := loadSchemas()
	if err != nil {
		t.Fatalf("load schemas: %v", err)
	}
	s := &fakeServer{
		t:         t,
		set:       set,
		cfg:       cfg,
		hellos:    make(chan []byte, 64),
		connected: make(chan *fakeConn, 64),
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	s.addr = ln.Addr().String()
	s.url = "ws://" + s.addr
	s.start(ln)
	t.Cleanup(func() { s.stop(0, "") })
	return s
}

func (s *fakeServer) start(ln net.Listener) {
	srv := httptest.NewUnstartedServer(s)
	_ = srv.Listener.Close()
	srv.Listener = ln
	s.mu.Lock()
	s.srv = srv
	s.conns = make(map[*fakeConn]struct{})
	s.stopped = false
	s.mu.Unlock()
	srv.Start()
}

// restart listens again on the same address.
func (s *fakeServer) restart() {
	s.t.Helper()
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		s.t.Fatalf("listen again on %s: %v", s.addr, err)
	}
	s.start(ln)
}

// stop stops listening and ends every connection: with a close frame when code is set,
// else by dropping it. It returns when every handler has returned.
func (s *fakeServer) stop(code websocket.StatusCode, reason string) {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return
	}
	s.stopped = true
	srv := s.srv
	conns := make([]*fakeConn, 0, len(s.conns))
	for fc := range s.conns {
		conns = append(conns, fc)
	}
	s.mu.Unlock()
	srv.Close()
	var wg sync.WaitGroup
	for _, fc := range conns {
		wg.Go(func() { fc.end(code, reason) })
	}
	wg.Wait()
	s.handlers.Wait()
}

func (s *fakeServer) connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nconn
}

func (s *fakeServer) helloOK(connID string, cfg fakeConfig) schemas.HelloOK {
	presence := cfg.presence
	if presence == nil {
		presence = []schemas.PresenceEntry{}
	}
	tick := cfg.tickIntervalMs
	if tick == 0 {
		tick = 30000
	}
	maxPayload := cfg.maxPayload
	if maxPayload == 0 {
		maxPayload = 512 << 10
	}
	return schemas.HelloOK{
		Type:     schemas.TypeHelloOK,
		Protocol: schemas.ProtocolVersion,
		Server:   schemas.ServerInfo{Version: "fake-1", Host: "testhost", ConnID: connID},
		Features: schemas.Features{
			Methods: []string{schemas.MethodHealth, schemas.MethodAgent},
			Events:  []string{schemas.EventTick, schemas.EventShutdown},
		},
		Snapshot: schemas.Snapshot{
			Presence: presence,
			Health: schemas.HealthSummary{
				OK:       true,
				Web:      schemas.WebHealth{State: schemas.WebUnlinked},
				Telegram: schemas.TelegramHealth{State: schemas.TelegramUnconfigured},
				Sessions: schemas.SessionsHealth{Path: "/tmp/sessions", Recent: []schemas.SessionRecent{}},
				Services: []schemas.ServiceHealth{{Name: "presence", OK: true, LatencyMs: 1}},
			},
			StateVersion: schemas.StateVersion{Presence: 1, Health: 2},
			UptimeMs:     1234,
		},
		Policy: schemas.Policy{MaxPayload: maxPayload, MaxBufferedBytes: 1 << 20, TickIntervalMs: tick},
	}
}

func (s *fakeServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ws, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		_ = ws.CloseNow()
		return
	}
	s.nconn++
	fc := &fakeConn{s: s, ws: ws, id: fmt.Sprintf("conn-%d", s.nconn), reqs: make(chan schemas.Request, 256), gone: make(chan struct{})}
	s.conns[fc] = struct{}{}
	cfg := s.cfg
	s.handlers.Add(1)
	s.mu.Unlock()
	defer s.handlers.Done()
	fc.serve(cfg)
}

func (fc *fakeConn) serve(cfg fakeConfig) {
	s := fc.s
	ws := fc.ws
	ws.SetReadLimit(1 << 20)
	ctx := context.Background()
	var err error
	defer func() {
		fc.readErr = err
		close(fc.gone)
	}()
	var hello []byte
	if _, hello, err = ws.Read(ctx); err != nil {
		return
	}
	fc.hello = hello
	select {
	case s.hellos <- hello:
	default:
	}
	if v, derr := schemas.Decode(hello); derr != nil {
		s.t.Errorf("client hello: %v", derr)
	} else if verr := s.set.Hello(v); verr != nil {
		s.t.Errorf("client hello fails the schema: %v", verr)
	}
	switch {
	case cfg.refuse != nil:
		_ = fc.send(cfg.refuse)
		code := websocket.StatusPolicyViolation
		if cfg.refuse.ExpectedProtocol != 0 {
			code = websocket.StatusProtocolError
		}
		_ = ws.Close(code, cfg.refuse.Reason)
		return
	case cfg.closeCode != 0:
		_ = ws.Close(cfg.closeCode, cfg.closeReason)
		return
	}
	if err = fc.send(s.helloOK(fc.id, cfg)); err != nil {
		return
	}
	select {
	case s.connected <- fc:
	default:
		s.t.Errorf("too many connections for the fake's buffer")
	}
	onReq := cfg.onReq
	if onReq == nil {
		onReq = echo
	}
	for {
		var data []byte
		if _, data, err = ws.Read(ctx); err != nil {
			return
		}
		if v, derr := schemas.Decode(data); derr != nil {
			s.t.Errorf("client frame: %v", derr)
			continue
		} else if verr := s.set.Request(v); verr != nil {
			s.t.Errorf("client request fails the schema: %v (%s)", verr, data)
			continue
		}
		var req schemas.Request
		if err := json.Unmarshal(data, &req); err != nil {
			s.t.Errorf("decode request: %v", err)
			continue
		}
		onReq(fc, req)
		select {
		case fc.reqs <- req:
		default:
		}
	}
}

// echo answers every request with {method, params?, id}.
func echo(fc *fakeConn, req schemas.Request) {
	payload := map[string]any{"method": req.Method, "id": req.ID}
	if req.Params != nil {
		payload["params"] = req.Params
	}
	_ = fc.respond(req.ID, payload)
}

// send writes one frame after checking it against the server frame schema.
func (fc *fakeConn) send(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		fc.s.t.Errorf("encode frame: %v", err)
		return err
	}
	if verr := fc.s.set.ServerFrame(b); verr != nil {
		fc.s.t.Errorf("fake server frame fails the schema: %v", verr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	return fc.ws.Write(ctx, websocket.MessageText, b)
}

func (fc *fakeConn) respond(id string, payload any) error {
	return fc.send(schemas.Response{Type: schemas.TypeRes, ID: id, OK: true, Payload: mustJSON(payload)})
}

func (fc *fakeConn) fail(id string, shape schemas.ErrorShape, payload any) error {
	res := schemas.Response{Type: schemas.TypeRes, ID: id, OK: false, Error: &shape}
	if payload != nil {
		res.Payload = mustJSON(payload)
	}
	return fc.send(res)
}

// event sends an event of a known name with a valid payload; seq 0 means no seq.
func (fc *fakeConn) event(name string, seq int64) error {
	ev := schemas.Event{Type: schemas.TypeEvent, Event: name}
	if seq > 0 {
		ev.Seq = &seq
	}
	sv := &schemas.StateVersion{Presence: 1, Health: 1}
	switch name {
	case schemas.EventTick:
		ev.Payload = mustJSON(schemas.TickPayload{Ts: 1})
	case schemas.EventPresence:
		ev.Payload, ev.StateVersion = mustJSON(schemas.PresencePayload{Presence: []schemas.PresenceEntry{}}), sv
	case schemas.EventHealth:
		ev.Payload, ev.StateVersion = mustJSON(fc.s.helloOK("", fakeConfig{}).Snapshot.Health), sv
	case schemas.EventAgent:
		ev.Payload = mustJSON(schemas.AgentEventPayload{RunID: "run-1", Seq: 1, Stream: "assistant", Ts: 1, Data: mustJSON(map[string]string{"text": "hi"})})
	case schemas.EventShutdown:
		ev.Payload = mustJSON(schemas.ShutdownPayload{Reason: "gateway stopping"})
	default:
		ev.Payload = mustJSON(map[string]int64{"n": seq})
	}
	return fc.send(ev)
}

// end closes the connection with code, or drops it when code is 0, and waits for the
// server's read loop to stop.
func (fc *fakeConn) end(code websocket.StatusCode, reason string) {
	if code == 0 {
		_ = fc.ws.CloseNow()
	} else {
		_ = fc.ws.Close(code, reason)
	}
	<-fc.gone
}

func mustJSON(v any) json.RawMessage {
	if v == nil {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// recv waits for one value from ch.
func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitLimit):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// closed waits until ch is closed.
func closed(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(waitLimit):
		t.Fatalf("timed out waiting for %s", what)
	}
}

// recorder collects the client's callbacks, in order, as readable lines.
type recorder struct {
	lines    chan string
	events   chan schemas.Event
	connects chan schemas.HelloOK
	drops    chan error
	frames   chan []byte
}

func newRecorder() *recorder {
	return &recorder{
		lines:    make(chan string, 1024),
		events:   make(chan schemas.Event, 1024),
		connects: make(chan schemas.HelloOK, 16),
		drops:    make(chan error, 16),
		frames:   make(chan []byte, 1024),
	}
}

func (r *recorder) options(o Options) Options {
	o.OnEvent = func(ev schemas.Event) {
		seq := int64(0)
		if ev.Seq != nil {
			seq = *ev.Seq
		}
		r.lines <- fmt.Sprintf("event %s %d", ev.Event, seq)
		r.events <- ev
	}
	o.OnGap = func(expected, got int64) { r.lines <- fmt.Sprintf("gap %d %d", expected, got) }
	o.OnConnect = func(h schemas.HelloOK) {
		r.lines <- "connect " + h.Server.ConnID
		r.connects <- h
	}
	o.OnDisconnect = func(err error) {
		r.lines <- "disconnect"
		r.drops <- err
	}
	o.FrameHook = func(raw []byte) {
		select {
		case r.frames <- raw:
		default:
		}
	}
	return o
}

// take returns the next n recorded lines.
func (r *recorder) take(t *testing.T, n int) []string {
	t.Helper()
	out := make([]string, 0, n)
	for range n {
		out = append(out, recv(t, r.lines, fmt.Sprintf("callback %d of %d (have %q)", len(out)+1, n, out)))
	}
	return out
}

// dial connects a client to s and closes it at cleanup.
func dial(t *testing.T, s *fakeServer, o Options) *Client {
	t.Helper()
	o.URL = s.url
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	c, err := Dial(ctx, o)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}
