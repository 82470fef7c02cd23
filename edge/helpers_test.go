package edge

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/clawdis/clawdis/bus/bustest"
	"github.com/clawdis/clawdis/bus/subject"
	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/edge/edgetest"
	"github.com/clawdis/clawdis/schemas"
)

var (
	schemaOnce sync.Once
	schemaSet  *schemas.Set
	schemaErr  error
)

func testSchemas(t testing.TB) *schemas.Set {
	t.Helper()
	schemaOnce.Do(func() { schemaSet, schemaErr = schemas.Load() })
	if schemaErr != nil {
		t.Fatalf("load schemas: %v", schemaErr)
	}
	return schemaSet
}

// gw is an edge under test on 127.0.0.1:0 over a real in-process bus.
type gw struct {
	t      testing.TB
	url    string
	addr   string
	bus    *bustest.Bus
	nc     *nats.Conn
	srv    *Server
	cancel context.CancelFunc
	done   chan error
}

// fakeServices registers minimal presence and health responders on the real bus. They are
// stand-ins for the services (which edge may not import); the full gateway with the real
// services is tested in cmd/clawdis.
type fakeServices struct {
	presence micro.Service
	health   micro.Service
	clients  chan wire.ClientPresence
}

func startFakeServices(t testing.TB, nc *nats.Conn) *fakeServices {
	t.Helper()
	fs := &fakeServices{clients: make(chan wire.ClientPresence, 64)}
	var err error
	fs.presence, err = micro.AddService(nc, micro.Config{Name: subject.ServicePresence, Version: "1.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	list := []schemas.PresenceEntry{{Host: "gw", Mode: "gateway", Reason: "self", Ts: 1}}
	add := func(svc micro.Service, name, subj string, fn wire.HandlerFunc) {
		if err := svc.AddEndpoint(name, wire.Handler(name, fn), micro.WithEndpointSubject(subj)); err != nil {
			t.Fatal(err)
		}
	}
	add(fs.presence, "list", subject.PresenceList, func(context.Context, []byte, nats.Header) (any, error) { return list, nil })
	add(fs.presence, "event", subject.PresenceEvent, func(_ context.Context, data []byte, _ nats.Header) (any, error) {
		var p schemas.SystemEventParams
		_ = json.Unmarshal(data, &p)
		if strings.TrimSpace(p.Text) == "" {
			return nil, wire.Invalid("text required")
		}
		return schemas.OKPayload{OK: true}, nil
	})
	add(fs.presence, "client", subject.PresenceClient, func(_ context.Context, data []byte, _ nats.Header) (any, error) {
		var cp wire.ClientPresence
		_ = json.Unmarshal(data, &cp)
		select {
		case fs.clients <- cp:
		default:
		}
		return schemas.OKPayload{OK: true}, nil
	})
	fs.health, err = micro.AddService(nc, micro.Config{Name: subject.ServiceHealth, Version: "1.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	add(fs.health, "get", subject.HealthGet, func(context.Context, []byte, nats.Header) (any, error) { return sampleHealth(true), nil })
	add(fs.health, "status", subject.HealthStatus, func(context.Context, []byte, nats.Header) (any, error) {
		return schemas.StatusSummary{ProviderSummary: []string{"WebChat: disabled"}, QueuedSystemEvents: []string{},
			Sessions: schemas.StatusSessions{Defaults: schemas.SessionDefaults{Backend: "none"}, Recent: []schemas.StatusSession{}}}, nil
	})
	t.Cleanup(func() { _ = fs.presence.Stop(); _ = fs.health.Stop() })
	return fs
}

func sampleHealth(ok bool) schemas.HealthSummary {
	return schemas.HealthSummary{
		OK: ok, Ts: 1, Web: schemas.WebHealth{State: schemas.WebUnlinked},
		Telegram: schemas.TelegramHealth{State: schemas.TelegramUnconfigured}, HeartbeatSeconds: 60,
		Sessions: schemas.SessionsHealth{Path: "/x", Recent: []schemas.SessionRecent{}},
		Services: []schemas.ServiceHealth{{Name: "health", OK: ok}},
	}
}

func startEdge(t testing.TB, mod func(*Config)) *gw {
	t.Helper()
	return startEdgeLog(t, nil, mod)
}

// startEdgeLog is startEdge with the edge's logger (nil: discard).
func startEdgeLog(t testing.TB, log *slog.Logger, mod func(*Config)) *gw {
	t.Helper()
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	b := bustest.New(t)
	nc := b.Conn("edge")
	ln, err := Listen("127.0.0.1", 0)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Listener: ln, Schemas: testSchemas(t), Version: "test", Host: "testhost",
		HandshakeTimeout: 5 * time.Second, TickInterval: time.Hour,
		Routes: RoutesFor(DefaultRoutes(), []string{subject.ServicePresence, subject.ServiceHealth})}
	if mod != nil {
		mod(&cfg)
	}
	srv, err := New(cfg, nc, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	g := &gw{t: t, addr: ln.Addr().String(), url: "ws://" + ln.Addr().String(), bus: b, nc: nc, srv: srv,
		cancel: cancel, done: make(chan error, 1)}
	go func() { g.done <- srv.Run(ctx) }()
	t.Cleanup(g.stop)
	return g
}

func (g *gw) stop() {
	g.cancel()
	select {
	case <-g.done:
	case <-time.After(30 * time.Second):
		g.t.Error("edge did not stop")
	}
}

// wsc is the shared raw protocol client: every frame the server sends is validated.
type wsc = edgetest.Client

func dialRaw(t testing.TB, url string, hdr http.Header) *wsc { return edgetest.Dial(t, url, hdr) }

func hello(mode string) map[string]any {
	return map[string]any{
		"type": "hello", "minProtocol": 1, "maxProtocol": 1,
		"client": map[string]any{"name": "test-" + mode, "version": "1.2.3", "platform": "linux", "mode": mode, "instanceId": "inst-" + mode},
	}
}

// connect dials and completes the handshake; it returns the client and the hello-ok.
func (g *gw) connect(mode string) (*wsc, map[string]any) {
	g.t.Helper()
	c := dialRaw(g.t, g.url, nil)
	c.Send(hello(mode))
	ok := c.Next()
	if ok["type"] != "hello-ok" {
		g.t.Fatalf("want hello-ok, got %v", ok)
	}
	return c, ok
}

func errCode(m map[string]any) (code, msg string, retryable bool) {
	e, _ := m["error"].(map[string]any)
	code, _ = e["code"].(string)
	msg, _ = e["message"].(string)
	retryable, _ = e["retryable"].(bool)
	return
}

func newPanicService(t testing.TB, nc *nats.Conn) micro.Service {
	t.Helper()
	svc, err := micro.AddService(nc, micro.Config{Name: "health", Version: "1.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	err = svc.AddEndpoint("get", wire.Handler("health.get", func(context.Context, []byte, nats.Header) (any, error) {
		panic("boom")
	}), micro.WithEndpointSubject(subject.HealthGet))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop() })
	return svc
}

// publishRunEvent publishes one run event of kind with v as JSON, as the agent service does.
func publishRunEvent(t testing.TB, nc *nats.Conn, subj, kind string, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		t.Error(err)
		return
	}
	if err := nc.PublishMsg(&nats.Msg{Subject: subj, Data: data, Header: nats.Header{wire.HeaderRunEvent: []string{kind}}}); err != nil {
		t.Error(err)
	}
}
