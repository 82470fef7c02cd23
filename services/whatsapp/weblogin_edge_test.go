package whatsapp

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/clawdis/clawdis/bus/subject"
	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/edge"
	"github.com/clawdis/clawdis/edge/client"
	"github.com/clawdis/clawdis/schemas"
)

// TestWebLoginThroughTheEdge links WhatsApp as a client does: WebSocket requests to the
// real edge, routed over the bus to this provider, which talks to the fake WhatsApp. (The
// edge is imported by this test only; the service itself never imports it.)
func TestWebLoginThroughTheEdge(t *testing.T) {
	h := startLogin(t, t.TempDir(), loginOptions{})
	url := startEdge(t, h)
	ctx, cancel := context.WithTimeout(context.Background(), 2*waitTimeout)
	defer cancel()
	gw, err := client.Dial(ctx, client.Options{URL: url, Client: schemas.ClientInfo{Mode: "webchat"}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = gw.Close() }()
	methods := gw.Hello().Features.Methods
	for _, m := range []string{schemas.MethodWebLoginStart, schemas.MethodWebLoginWait} {
		if !slices.Contains(methods, m) {
			t.Errorf("hello-ok does not offer %s: %v", m, methods)
		}
	}

	call := func(method string, params any) <-chan json.RawMessage {
		out := make(chan json.RawMessage, 1)
		go func() {
			payload, err := gw.Request(ctx, method, params)
			if err != nil {
				t.Errorf("%s: %v", method, err)
			}
			out <- payload
		}()
		return out
	}
	started := call(schemas.MethodWebLoginStart, nil)
	conn := h.wa.nextDial(t)
	conn.code("2@through,the,edge", time.Minute)
	payload := receive(t, started, "web.login.start answer")
	checkPayload(t, schemas.MethodWebLoginStart, payload)
	var start schemas.WebLoginStartResult
	if err := json.Unmarshal(payload, &start); err != nil || start.QR != "2@through,the,edge" {
		t.Fatalf("web.login.start = %s (%v)", payload, err)
	}
	checkQR(t, start.QRDataURL)

	waited := call(schemas.MethodWebLoginWait, map[string]any{"timeoutMs": 120000})
	conn.scan(t, "436641234567")
	payload = receive(t, waited, "web.login.wait answer")
	checkPayload(t, schemas.MethodWebLoginWait, payload)
	var wait schemas.WebLoginWaitResult
	if err := json.Unmarshal(payload, &wait); err != nil || !wait.Linked || wait.Phone != "+436641234567" ||
		wait.JID != "436641234567@s.whatsapp.net" {
		t.Fatalf("web.login.wait = %s (%v)", payload, err)
	}
	h.waitState("linked", func(st wire.ProviderState) bool { return st.Linked && st.Self == "+436641234567" })

	// Already linked now: a start without force is refused, naming the number.
	_, err = gw.Request(ctx, schemas.MethodWebLoginStart, map[string]any{})
	var re *client.ResponseError
	if !errors.As(err, &re) || re.Shape.Code != "INVALID_REQUEST" || !strings.HasPrefix(re.Shape.Message, "already linked as +436641234567") {
		t.Fatalf("second web.login.start = %v", err)
	}
}

// startEdge runs the gateway's edge on h's bus with the routes of a gateway that runs the
// whatsapp service, and returns its URL.
func startEdge(t *testing.T, h *loginHarness) string {
	t.Helper()
	set, err := schemas.Load()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := edge.Listen("127.0.0.1", 0)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := edge.New(edge.Config{Listener: ln, Schemas: set, Version: "test", TickInterval: time.Hour,
		Routes: edge.RoutesFor(edge.DefaultRoutes(), []string{subject.ServiceWhatsApp})},
		h.bus.Conn("edge"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("edge Run: %v", err)
		}
	})
	return "ws://" + ln.Addr().String()
}
