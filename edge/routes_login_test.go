package edge

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/clawdis/clawdis/bus/subject"
	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/schemas"
)

func TestWebLoginWaitDeadline(t *testing.T) {
	for _, tt := range []struct {
		params string
		want   time.Duration
	}{
		{``, 70 * time.Second},
		{`{}`, 70 * time.Second},
		{`{"timeoutMs":1000}`, 11 * time.Second},
		{`{"timeoutMs":180000}`, 190 * time.Second},
	} {
		if got := webLoginWaitDeadline([]byte(tt.params)); got != tt.want {
			t.Errorf("webLoginWaitDeadline(%s) = %s, want %s", tt.params, got, tt.want)
		}
	}
	for _, r := range DefaultRoutes() {
		switch r.Method {
		case schemas.MethodWebLoginStart:
			if d := r.deadline(nil); d < 30*time.Second || d > 40*time.Second {
				t.Errorf("web.login.start deadline %s, want a little over 30s", d)
			}
		case schemas.MethodWebLoginWait:
			if d := r.deadline([]byte(`{"timeoutMs":180000}`)); d <= 180*time.Second {
				t.Errorf("web.login.wait of 180s gets a deadline of %s", d)
			}
		}
	}
}

// TestRouteDeadlineFor: a route's DeadlineFor, not its Deadline, bounds the request (a
// Deadline of 1 ns would fail every request at once).
func TestRouteDeadlineFor(t *testing.T) {
	route := Route{Method: schemas.MethodWebLoginWait, Subject: subject.WebLoginWait, Service: subject.ServiceWhatsApp,
		Deadline: time.Nanosecond, DeadlineFor: func([]byte) time.Duration { return 10 * time.Second }}
	g := startEdge(t, func(c *Config) { c.Routes = append(c.Routes, route) })
	startFakeServices(t, g.nc)
	svc, err := micro.AddService(g.nc, micro.Config{Name: subject.ServiceWhatsApp, Version: "1.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop() })
	wait := func(context.Context, []byte, nats.Header) (any, error) {
		return schemas.WebLoginWaitResult{Linked: true, JID: "436641234567@s.whatsapp.net", Phone: "+436641234567"}, nil
	}
	if err := svc.AddEndpoint("login-wait", wire.Handler("login-wait", wait), micro.WithEndpointSubject(subject.WebLoginWait)); err != nil {
		t.Fatal(err)
	}
	c, _ := g.connect("cli")
	c.Send(map[string]any{"type": "req", "id": "w", "method": "web.login.wait", "params": map[string]any{"timeoutMs": 5000}})
	if res := c.NextRes("w"); res["ok"] != true {
		t.Fatalf("web.login.wait: %v", res)
	}
}

// TestMethodOfAbsentServiceSaysWhy: a method of the protocol whose service this gateway
// does not run is answered with the reason, not as an unknown method.
func TestMethodOfAbsentServiceSaysWhy(t *testing.T) {
	g := startEdge(t, nil) // presence and health only
	startFakeServices(t, g.nc)
	c, hok := g.connect("cli")
	for _, m := range hok["features"].(map[string]any)["methods"].([]any) {
		if m == schemas.MethodWebLoginStart {
			t.Error("web.login.start advertised without the whatsapp service")
		}
	}
	for method, want := range map[string]string{
		"web.login.start": "web.login.start is not available: WhatsApp is not enabled on this gateway",
		"send":            "send is not available: this gateway runs no messaging provider",
		"agent":           "agent is not available: this gateway does not run the agent service",
	} {
		c.Send(map[string]any{"type": "req", "id": method, "method": method})
		res := c.NextRes(method)
		code, msg, _ := errCode(res)
		if res["ok"] != false || code != wire.CodeUnavailable || msg != want {
			t.Errorf("%s: %v, want UNAVAILABLE %q", method, res, want)
		}
	}
}
