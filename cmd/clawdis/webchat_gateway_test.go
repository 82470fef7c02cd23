package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// TestGatewayServesWebChat: the daemon starts the WebChat server on its port; the page is
// served and a browser-style WebSocket on /ws gets a hello-ok relayed from the gateway. On
// shutdown WebChat stops before the edge it relays to, so its relay never sees the
// gateway go away.
func TestGatewayServesWebChat(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	d := startDaemon(t, t.TempDir(), "", func(df *daemonFlags) {
		df.noWebchat = false
		df.webchatPort = port
		df.token = "gw-secret"
	})
	base := "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	resp, err := http.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "<html") {
		t.Fatalf("GET / = %d %.200s", resp.StatusCode, body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// The gateway token guards WebChat too (SPEC §10): a tab's hello without it is refused.
	hello := func(auth string) []byte {
		ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+"/ws",
			&websocket.DialOptions{HTTPHeader: http.Header{"Origin": {base}}})
		if err != nil {
			t.Fatal(err)
		}
		defer ws.CloseNow()
		frame := `{"type":"hello","minProtocol":1,"maxProtocol":1,"client":{"name":"browser","version":"1","platform":"web","mode":"webchat"}` + auth + `}`
		if err := ws.Write(ctx, websocket.MessageText, []byte(frame)); err != nil {
			t.Fatal(err)
		}
		_, b, err := ws.Read(ctx)
		if err != nil {
			t.Fatalf("hello over /ws: %v", err)
		}
		return b
	}
	if b := hello(""); !strings.Contains(string(b), `"reason":"unauthorized"`) {
		t.Fatalf("hello over /ws without the token: %.200s", b)
	}
	b := hello(`,"auth":{"token":"gw-secret"}`)
	if !strings.Contains(string(b), `"hello-ok"`) {
		t.Fatalf("hello over /ws with the token: %.200s", b)
	}
	if strings.Contains(string(b), "gw-secret") {
		t.Error("the gateway token reached the browser")
	}

	d.stop()
	logs := d.logs.String()
	wcStopped, edgeStopped := strings.Index(logs, `"msg":"webchat stopped"`), strings.Index(logs, `"msg":"edge stopped"`)
	if wcStopped < 0 || edgeStopped < 0 || wcStopped > edgeStopped {
		t.Errorf("want webchat stopped before the edge (at %d and %d):\n%s", wcStopped, edgeStopped, logs)
	}
	if strings.Contains(logs, "gateway connection lost") {
		t.Errorf("the relay lost the gateway during shutdown:\n%s", logs)
	}
}
