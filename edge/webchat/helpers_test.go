package webchat

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/clawdis/clawdis/bus/bustest"
	"github.com/clawdis/clawdis/bus/subject"
	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/edge"
	"github.com/clawdis/clawdis/edge/client"
	"github.com/clawdis/clawdis/edge/edgetest"
	"github.com/clawdis/clawdis/schemas"
)

// waitLimit bounds every wait so that a bug fails the test instead of hanging it.
const waitLimit = 15 * time.Second

const testToken = "s3cret-gateway-token"

var loadSchemas = sync.OnceValues(schemas.Load)

func testSchemas(t testing.TB) *schemas.Set {
	t.Helper()
	set, err := loadSchemas()
	if err != nil {
		t.Fatalf("load schemas: %v", err)
	}
	return set
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// gateway is a real edge on a bustest bus with small fake responders standing in for the
// services; it can be stopped and started again on the same port.
type gateway struct {
	t      *testing.T
	nc     *nats.Conn
	svcs   map[string]micro.Service // the fake services by name
	port   int
	cancel context.CancelFunc
	done   chan error
}

func startGateway(t *testing.T) *gateway {
	t.Helper()
	b := bustest.New(t)
	g := &gateway{t: t, nc: b.Conn("edge")}
	g.svcs = startFakeServices(t, b.Conn("services"))
	g.start()
	t.Cleanup(g.stop)
	return g
}

func (g *gateway) url() string { return "ws://127.0.0.1:" + strconv.Itoa(g.port) }

// start runs the edge on g.port (a free port the first time).
func (g *gateway) start() {
	g.t.Helper()
	ln, err := edge.Listen("127.0.0.1", g.port)
	if err != nil {
		g.t.Fatal(err)
	}
	g.port = ln.Addr().(*net.TCPAddr).Port
	srv, err := edge.New(edge.Config{
		Listener: ln, Schemas: testSchemas(g.t), Version: "test-gw", Host: "gwhost", Token: testToken,
		TickInterval: time.Hour,
		Routes: edge.RoutesFor(edge.DefaultRoutes(),
			[]string{subject.ServicePresence, subject.ServiceHealth, subject.ServiceAgent}),
	}, g.nc, discard())
	if err != nil {
		g.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	g.cancel, g.done = cancel, make(chan error, 1)
	go func() { g.done <- srv.Run(ctx) }()
}

func (g *gateway) stop() {
	if g.done == nil {
		return
	}
	g.cancel()
	select {
	case err := <-g.done:
		if err != nil {
			g.t.Errorf("edge: %v", err)
		}
	case <-time.After(waitLimit):
		g.t.Error("edge did not stop")
	}
	g.done = nil
}

// startFakeServices registers presence, health and agent responders on the bus and
// returns their micro services by name.
func startFakeServices(t *testing.T, nc *nats.Conn) map[string]micro.Service {
	t.Helper()
	svcs := map[string]micro.Service{}
	svc := func(name string) micro.Service {
		s, err := micro.AddService(nc, micro.Config{Name: name, Version: "1.0.0"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Stop() })
		svcs[name] = s
		return s
	}
	add := func(s micro.Service, name, subj string, fn wire.HandlerFunc) {
		if err := s.AddEndpoint(name, wire.Handler(name, fn), micro.WithEndpointSubject(subj)); err != nil {
			t.Fatal(err)
		}
	}
	presence := svc(subject.ServicePresence)
	list := []schemas.PresenceEntry{{Host: "gw", Mode: "gateway", Reason: "self", Ts: 1}}
	add(presence, "list", subject.PresenceList, func(context.Context, []byte, nats.Header) (any, error) { return list, nil })
	add(presence, "client", subject.PresenceClient, func(context.Context, []byte, nats.Header) (any, error) {
		return schemas.OKPayload{OK: true}, nil
	})
	health := svc(subject.ServiceHealth)
	add(health, "get", subject.HealthGet, func(context.Context, []byte, nats.Header) (any, error) {
		return schemas.HealthSummary{OK: true, Ts: 1, Web: schemas.WebHealth{State: schemas.WebDisabled},
			Telegram: schemas.TelegramHealth{State: schemas.TelegramUnconfigured}, HeartbeatSeconds: 60,
			Sessions: schemas.SessionsHealth{Path: "/x", Recent: []schemas.SessionRecent{}},
			Services: []schemas.ServiceHealth{{Name: "health", OK: true}}}, nil
	})
	add(health, "status", subject.HealthStatus, func(context.Context, []byte, nats.Header) (any, error) {
		return schemas.StatusSummary{ProviderSummary: []string{"WebChat: enabled"}, QueuedSystemEvents: []string{},
			Sessions: schemas.StatusSessions{Defaults: schemas.SessionDefaults{Backend: "none"}, Recent: []schemas.StatusSession{}}}, nil
	})
	// agent: runs are accepted and finish at once (the final event is published before the
	// ack; the edge watches the run before it asks); a key starting with "late" times out.
	agent := svc(subject.ServiceAgent)
	add(agent, "run", subject.AgentRun, func(_ context.Context, data []byte, _ nats.Header) (any, error) {
		var p schemas.AgentParams
		_ = json.Unmarshal(data, &p)
		fin := wire.RunFinal{}
		if strings.HasPrefix(p.IdempotencyKey, "late") {
			fin.Payload, _ = json.Marshal(schemas.AgentResult{RunID: p.IdempotencyKey, Status: schemas.RunTimeout})
			fin.Error = &wire.Error{Code: wire.CodeAgentTimeout, Message: "agent timed out"}
		} else {
			fin.OK = true
			fin.Payload, _ = json.Marshal(schemas.AgentResult{RunID: p.IdempotencyKey, Status: schemas.RunOK, Summary: "done", Text: "reply to " + p.IdempotencyKey})
		}
		body, _ := json.Marshal(fin)
		msg := &nats.Msg{Subject: subject.AgentRunEvents(p.IdempotencyKey), Data: body,
			Header: nats.Header{wire.HeaderRunEvent: []string{wire.RunEventFinal}}}
		if err := nc.PublishMsg(msg); err != nil {
			return nil, err
		}
		return schemas.AgentResult{RunID: p.IdempotencyKey, Status: schemas.RunAccepted}, nil
	})
	return svcs
}

// relay is a webchat server under test.
type relay struct {
	t      *testing.T
	srv    *Server
	addr   string
	ups    chan bool // every upstream state change
	cancel context.CancelFunc
	done   chan error
}

func startRelay(t *testing.T, gatewayURL string, mod func(*Config)) *relay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return startRelayOn(t, ln, gatewayURL, mod)
}

// startRelayOn runs the server on ln (closed by the server, or here when New fails).
func startRelayOn(t *testing.T, ln net.Listener, gatewayURL string, mod func(*Config)) *relay {
	t.Helper()
	cfg := Config{Listener: ln, GatewayURL: gatewayURL, Token: testToken, Version: "test-wc", Log: discard(),
		Schemas: testSchemas(t), Backoff: client.Backoff{Initial: 20 * time.Millisecond, Max: 200 * time.Millisecond}}
	if mod != nil {
		mod(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	r := &relay{t: t, srv: srv, addr: ln.Addr().String(), ups: make(chan bool, 64), done: make(chan error, 1)}
	srv.upHook = func(up bool) { r.ups <- up }
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- srv.Run(ctx) }()
	t.Cleanup(r.stop)
	return r
}

// waitUp waits for the upstream connection to reach state up.
func (r *relay) waitUp(up bool) {
	r.t.Helper()
	for {
		select {
		case got := <-r.ups:
			if got == up {
				return
			}
		case <-time.After(waitLimit):
			r.t.Fatalf("upstream never became up=%v", up)
		}
	}
}

func (r *relay) stop() {
	if r.done == nil {
		return
	}
	r.cancel()
	select {
	case err := <-r.done:
		if err != nil {
			r.t.Errorf("webchat Run: %v", err)
		}
	case <-time.After(waitLimit):
		r.t.Error("webchat did not stop")
	}
	r.done = nil
}

// tabConn is a browser tab speaking raw frames to the relay: every frame it reads is
// validated against the schemas and checked for the gateway token.
type tabConn = edgetest.Client

func (r *relay) dial() *tabConn {
	r.t.Helper()
	return browserTab(r.t, edgetest.Dial(r.t, "ws://"+r.addr+"/ws", nil))
}

// browserTab adds the relay's check to a tab's client: the gateway token never reaches it.
func browserTab(t testing.TB, c *tabConn) *tabConn {
	c.Check = func(b []byte) {
		if strings.Contains(string(b), testToken) {
			t.Errorf("the gateway token reached the browser: %s", b)
		}
	}
	return c
}

// open dials and completes the handshake; it returns the hello-ok.
func (r *relay) open() (*tabConn, map[string]any) {
	r.t.Helper()
	c := r.dial()
	c.Send(helloFrame())
	ok := c.Next()
	if ok["type"] != "hello-ok" {
		r.t.Fatalf("want hello-ok, got %v", ok)
	}
	return c, ok
}

func helloFrame() map[string]any {
	return map[string]any{"type": "hello", "minProtocol": 1, "maxProtocol": 1,
		"client": map[string]any{"name": "page", "version": "1", "platform": "web", "mode": "webchat"},
		"auth":   map[string]any{"token": testToken}}
}

func errCode(m map[string]any) (code string, retryable bool) {
	e, _ := m["error"].(map[string]any)
	code, _ = e["code"].(string)
	retryable, _ = e["retryable"].(bool)
	return code, retryable
}
