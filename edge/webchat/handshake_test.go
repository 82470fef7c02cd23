package webchat

import (
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// closedURL is a gateway URL where nothing listens.
func closedURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "ws://" + addr
}

func TestHandshakeRefusals(t *testing.T) {
	dead := closedURL(t)
	r := startRelay(t, dead, func(c *Config) { c.HandshakeTimeout = 300 * time.Millisecond })
	for _, tt := range []struct {
		name       string
		frame      any // nil: send nothing
		wantReason string
		wantCode   websocket.StatusCode
		wantClose  string
	}{
		// The reason says which gateway is tried and why it fails (the page shows it).
		{"gateway not reachable", helloFrame(), "gateway unavailable: ", websocket.StatusTryAgainLater, "gateway unavailable"},
		{"not JSON", []byte("{nope"), "", websocket.StatusPolicyViolation, "malformed JSON"},
		{"a req first", map[string]any{"type": "req", "id": "1", "method": "health"}, "invalid hello: ", websocket.StatusPolicyViolation, "invalid hello"},
		{"protocol", map[string]any{"type": "hello", "minProtocol": 2, "maxProtocol": 3,
			"client": map[string]any{"name": "p", "version": "1", "platform": "web", "mode": "webchat"}},
			"protocol mismatch", websocket.StatusProtocolError, "protocol mismatch"},
		{"silence", nil, "", websocket.StatusPolicyViolation, "handshake timeout"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := r.dial()
			if tt.frame != nil {
				c.Send(tt.frame)
			}
			if tt.wantReason != "" {
				m := c.Next()
				reason, _ := m["reason"].(string)
				if m["type"] != "hello-error" || len(reason) < len(tt.wantReason) || reason[:len(tt.wantReason)] != tt.wantReason {
					t.Errorf("got %v, want hello-error %q", m, tt.wantReason)
				}
				if tt.wantReason == "gateway unavailable: " && !strings.Contains(reason, dead) {
					t.Errorf("reason %q does not name the gateway URL %s", reason, dead)
				}
			}
			if code, reason := c.Closed(); code != tt.wantCode || reason != tt.wantClose {
				t.Errorf("closed %d %q, want %d %q", code, reason, tt.wantCode, tt.wantClose)
			}
		})
	}
}

func TestInvalidFramesAfterHello(t *testing.T) {
	g := startGateway(t)
	r := startRelay(t, g.url(), nil)
	r.waitUp(true)
	a, _ := r.open()

	a.Send(map[string]any{"type": "req", "method": "health"})
	a.Req("u", "no.such.method", nil)
	res, _ := collect(a, func(res map[string][]map[string]any) bool { return len(res["invalid"]) == 1 && len(res["u"]) == 1 })
	if code, _ := errCode(res["invalid"][0]); code != "INVALID_REQUEST" {
		t.Errorf("req without id = %v", res["invalid"][0])
	}
	if code, _ := errCode(res["u"][0]); code != "INVALID_REQUEST" {
		t.Errorf("unknown method = %v", res["u"][0])
	}
	a.Send([]byte("not json"))
	if code, reason := a.Closed(); code != websocket.StatusPolicyViolation || reason != "malformed JSON" {
		t.Errorf("closed %d %q", code, reason)
	}
}

func TestNewChecksTheAddress(t *testing.T) {
	for _, tt := range []struct {
		addr    string
		wantErr error // nil: ok; errAny: any error
	}{
		{"", nil},
		{"127.0.0.1:0", nil},
		{"localhost:18788", nil},
		{"[::1]:0", nil},
		{"0.0.0.0:18788", ErrNotLoopback},
		{"192.0.2.1:18788", ErrNotLoopback},
		{"no-port", errAny},
	} {
		_, err := New(Config{Addr: tt.addr, Schemas: testSchemas(t)})
		switch {
		case tt.wantErr == nil && err != nil:
			t.Errorf("New(%q): %v", tt.addr, err)
		case tt.wantErr == errAny && err == nil, tt.wantErr == ErrNotLoopback && !errors.Is(err, ErrNotLoopback):
			t.Errorf("New(%q) = %v, want %v", tt.addr, err, tt.wantErr)
		}
	}
}

var errAny = errors.New("any error")

// TestTabNeedsGatewayToken: with a gateway token configured, a tab's hello must carry it
// (SPEC §10); without one nothing is asked.
func TestTabNeedsGatewayToken(t *testing.T) {
	g := startGateway(t)
	r := startRelay(t, g.url(), nil)
	r.waitUp(true)
	for _, tt := range []struct {
		name string
		auth any // nil: no auth at all
		want string
	}{
		{"no auth", nil, "hello-error"},
		{"no token", map[string]any{}, "hello-error"},
		{"wrong token", map[string]any{"token": testToken + "x"}, "hello-error"},
		{"the token", map[string]any{"token": testToken}, "hello-ok"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := helloFrame()
			delete(h, "auth")
			if tt.auth != nil {
				h["auth"] = tt.auth
			}
			c := r.dial()
			c.Send(h)
			m := c.Next()
			if m["type"] != tt.want {
				t.Fatalf("got %v, want %s", m, tt.want)
			}
			if tt.want == "hello-error" {
				if m["reason"] != "unauthorized" {
					t.Errorf("reason %v, want unauthorized", m["reason"])
				}
				if code, reason := c.Closed(); code != websocket.StatusPolicyViolation || reason != "unauthorized" {
					t.Errorf("closed %d %q, want 1008 unauthorized", code, reason)
				}
			}
		})
	}

	// No token configured: a hello without one is not refused for it.
	open := startRelay(t, closedURL(t), func(c *Config) { c.Token, c.HandshakeTimeout = "", 400*time.Millisecond })
	h := helloFrame()
	delete(h, "auth")
	c := open.dial()
	c.Send(h)
	if m := c.Next(); !strings.HasPrefix(m["reason"].(string), "gateway unavailable: ") {
		t.Fatalf("without a token configured: %v, want the upstream's refusal only", m)
	}
}
