package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/clawdis/clawdis/edge/client"
	"github.com/clawdis/clawdis/schemas"
)

// TestFloodedPresenceKeepsClientsConnecting is the control-plane lockout of the hardening
// issue, tried through the real gateway: anyone connected floods presence and the
// system-event queue with entries at every field limit. A 500 KB text is refused naming
// the field; after the flood, a new client still gets a hello-ok no larger than maxPayload,
// and status and system-presence answer within it too.
func TestFloodedPresenceKeepsClientsConnecting(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	t.Setenv("CLAWDIS_GATEWAY_TOKEN", "")
	const maxPayload = 512 << 10 // the default
	d := startDaemon(t, t.TempDir(), "", nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := client.Dial(ctx, client.Options{URL: d.url, Client: schemas.ClientInfo{Name: "flood", Version: "1", Platform: "linux", Mode: "cli"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	_, err = c.Request(ctx, schemas.MethodSystemEvent, map[string]any{"text": strings.Repeat("x", 500<<10)})
	var re *client.ResponseError
	if !errors.As(err, &re) || re.Shape.Code != "INVALID_REQUEST" || !strings.Contains(re.Shape.Message, "text") || len(re.Shape.Message) > 300 {
		t.Fatalf("500 KB text: %v", err)
	}
	tags := make([]string, 16)
	for i := range tags {
		tags[i] = strings.Repeat(string(rune('a'+i)), 64)
	}
	field := func(i int, c byte) string { return fmt.Sprintf("%03d", i) + strings.Repeat(string(c), 253) }
	for i := range 250 { // more entries than presence keeps (200), each at every limit: 1.3 MB
		p := map[string]any{"text": fmt.Sprintf("%03d ", i) + strings.Repeat("t", 4092), "instanceId": field(i, 'i'),
			"host": field(i, 'h'), "ip": field(i, 'p'), "mode": field(i, 'm'), "version": field(i, 'v'),
			"reason": field(i, 'r'), "lastInputSeconds": 1000000000, "tags": tags}
		if _, err := c.Request(ctx, schemas.MethodSystemEvent, p); err != nil {
			t.Fatalf("system-event %d at the limits: %v", i, err)
		}
	}

	ws, _, err := websocket.Dial(ctx, d.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	ws.SetReadLimit(-1) // measure what the gateway sends, whatever its size
	hello, _ := json.Marshal(map[string]any{"type": "hello", "minProtocol": 1, "maxProtocol": 1,
		"client": map[string]any{"name": "late", "version": "1", "platform": "linux", "mode": "ui"}})
	if err := ws.Write(ctx, websocket.MessageText, hello); err != nil {
		t.Fatal(err)
	}
	_, frame, err := ws.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ok struct {
		Type     string `json:"type"`
		Snapshot struct {
			Presence []json.RawMessage `json:"presence"`
		} `json:"snapshot"`
	}
	if err := json.Unmarshal(frame, &ok); err != nil || ok.Type != "hello-ok" {
		t.Fatalf("late client got %.200s (%v)", frame, err)
	}
	if len(frame) > maxPayload {
		t.Fatalf("hello-ok is %d bytes, over maxPayload %d", len(frame), maxPayload)
	}
	if len(ok.Snapshot.Presence) < 2 {
		t.Errorf("hello-ok presence trimmed to %d entries; the newest should stay", len(ok.Snapshot.Presence))
	}
	late, err := client.Dial(ctx, client.Options{URL: d.url, Client: schemas.ClientInfo{Name: "cli", Version: "1", Platform: "linux", Mode: "cli"}})
	if err != nil {
		t.Fatalf("the Go client (CLI, WebChat relay) cannot connect after the flood: %v", err)
	}
	late.Close()
	for _, m := range []string{schemas.MethodStatus, schemas.MethodSystemPresence, schemas.MethodHealth} {
		raw, err := c.Request(ctx, m, nil)
		if err != nil {
			t.Fatalf("%s after the flood: %v", m, err)
		}
		if len(raw) > maxPayload {
			t.Errorf("%s payload is %d bytes, over maxPayload %d", m, len(raw), maxPayload)
		}
	}
	t.Logf("after 250 system-events at every limit: hello-ok %d bytes with %d presence entries (maxPayload %d)",
		len(frame), len(ok.Snapshot.Presence), maxPayload)
}
