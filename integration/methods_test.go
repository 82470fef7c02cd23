//go:build integration

package integration

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/clawdis/clawdis/edge/client"
	"github.com/clawdis/clawdis/schemas"
	"github.com/clawdis/clawdis/services/telegram/telegramtest"
)

// TestHelloAndEveryMethod drives each method of the protocol once through the split stack.
func TestHelloAndEveryMethod(t *testing.T) {
	s := needStack(t)
	c := s.dial(t, client.Options{Client: schemas.ClientInfo{Name: "it-methods", Mode: "cli"}})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	hello := c.Hello()
	if hello.Protocol != 1 {
		t.Errorf("protocol %d", hello.Protocol)
	}
	for _, m := range []string{schemas.MethodHealth, schemas.MethodStatus, schemas.MethodSystemPresence, schemas.MethodSystemEvent,
		schemas.MethodSend, schemas.MethodAgent, schemas.MethodChatHistory, schemas.MethodChatSend} {
		if !slices.Contains(hello.Features.Methods, m) {
			t.Errorf("hello-ok does not offer %s: %v", m, hello.Features.Methods)
		}
	}
	if !hello.Snapshot.Health.OK {
		t.Errorf("snapshot health not ok: %s", serviceStates(hello.Snapshot.Health))
	}

	t.Run("health", func(t *testing.T) {
		h, err := s.healthOnce(ctx, c)
		if err != nil || !h.OK || len(h.Services) != 7 {
			t.Fatalf("health = %+v, %v", h, err)
		}
		if h.Telegram.Probe == nil || h.Telegram.Probe.Bot == nil || h.Telegram.Probe.Bot.Username == "" {
			t.Errorf("telegram probe missing: %+v", h.Telegram)
		}
	})
	t.Run("status", func(t *testing.T) {
		raw, err := c.Request(ctx, schemas.MethodStatus, nil)
		var st schemas.StatusSummary
		if err != nil || json.Unmarshal(raw, &st) != nil || st.Sessions.Path != "/state/sessions/sessions.json" || st.Sessions.Defaults.Backend != "command" {
			t.Fatalf("status = %s, %v", raw, err)
		}
	})
	t.Run("system-event and system-presence", func(t *testing.T) {
		text := "Node: it-desk (10.9.8.7) · app 9.9 · mode node · reason beacon"
		if _, err := c.Request(ctx, schemas.MethodSystemEvent, map[string]any{"text": text, "instanceId": "it-desk"}); err != nil {
			t.Fatal(err)
		}
		raw, err := c.Request(ctx, schemas.MethodSystemPresence, nil)
		var list []schemas.PresenceEntry
		if err != nil || json.Unmarshal(raw, &list) != nil {
			t.Fatalf("system-presence = %s, %v", raw, err)
		}
		if !slices.ContainsFunc(list, func(e schemas.PresenceEntry) bool { return e.InstanceID == "it-desk" && e.Host == "it-desk" }) {
			t.Errorf("the beacon is not listed: %s", raw)
		}
		if !slices.ContainsFunc(list, func(e schemas.PresenceEntry) bool { return e.Mode == "gateway" }) {
			t.Errorf("no gateway entry: %s", raw)
		}
	})
	t.Run("send through telegram", func(t *testing.T) {
		const chat = 7001
		raw, err := c.Request(ctx, schemas.MethodSend, schemas.SendParams{To: strconv.Itoa(chat), Message: "ping from the stack",
			Provider: "telegram", IdempotencyKey: "it-send-1"})
		var res schemas.SendResult
		if err != nil || json.Unmarshal(raw, &res) != nil || res.Provider != "telegram" || res.MessageID == "" {
			t.Fatalf("send = %s, %v", raw, err)
		}
		s.waitSent(t, ctx, chat, func(m telegramtest.Sent) bool { return m.Text == "ping from the stack" })
	})
	t.Run("agent", func(t *testing.T) {
		acked := false
		raw, err := c.RequestFinal(ctx, schemas.MethodAgent, map[string]any{"message": "what is up", "sessionKey": "it-agent",
			"idempotencyKey": "it-agent-1"}, func(json.RawMessage) { acked = true })
		var res schemas.AgentResult
		if err != nil || json.Unmarshal(raw, &res) != nil || res.Status != "ok" || !strings.Contains(res.Text, "echo: what is up") {
			t.Fatalf("agent final = %s, %v", raw, err)
		}
		if !acked {
			t.Error("no acknowledgement before the final")
		}
	})
	t.Run("chat.history", func(t *testing.T) {
		raw, err := c.Request(ctx, schemas.MethodChatHistory, map[string]any{"sessionKey": "it-agent"})
		var h schemas.ChatHistoryResult
		if err != nil || json.Unmarshal(raw, &h) != nil || len(h.Messages) < 2 {
			t.Fatalf("chat.history = %s, %v", raw, err)
		}
		if last := h.Messages[len(h.Messages)-1]; last.Role != "assistant" || !strings.Contains(last.Content[0].Text, "echo: what is up") {
			t.Errorf("last message = %+v", last)
		}
	})
	t.Run("bad params are answered", func(t *testing.T) {
		_, err := c.Request(ctx, schemas.MethodSend, map[string]any{"to": "1"})
		if re := responseError(t, err); re.Shape.Code != "INVALID_REQUEST" {
			t.Errorf("send without message: %+v", re.Shape)
		}
	})
}

// TestChatSendStreams sends a chat message and reads the reply streaming in as chat events.
func TestChatSendStreams(t *testing.T) {
	s := needStack(t)
	events := make(chan schemas.Event, 256)
	c := s.dial(t, client.Options{Client: schemas.ClientInfo{Name: "it-chat", Mode: "webchat"},
		OnEvent: func(ev schemas.Event) {
			if ev.Event == schemas.EventChat {
				events <- ev
			}
		}})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const msg = "stream these five words please"
	raw, err := c.Request(ctx, schemas.MethodChatSend, map[string]any{"sessionKey": "it-chat", "message": msg, "idempotencyKey": "it-chat-1"})
	var started schemas.ChatSendResult
	if err != nil || json.Unmarshal(raw, &started) != nil || started.RunID != "it-chat-1" {
		t.Fatalf("chat.send = %s, %v", raw, err)
	}
	deltas := 0
	for {
		select {
		case ev := <-events:
			var p schemas.ChatEventPayload
			if err := json.Unmarshal(ev.Payload, &p); err != nil || p.RunID != "it-chat-1" {
				continue
			}
			switch p.State {
			case schemas.ChatStateDelta:
				deltas++
			case schemas.ChatStateError:
				t.Fatalf("chat error: %s", p.ErrorMessage)
			case schemas.ChatStateFinal:
				if p.Message == nil || p.Message.Content[0].Text != "echo: "+msg {
					t.Fatalf("final = %+v", p.Message)
				}
				if deltas == 0 {
					t.Error("the reply arrived without a single delta")
				}
				t.Logf("%d deltas before the final", deltas)
				return
			}
		case <-ctx.Done():
			t.Fatalf("no final chat event (%d deltas)", deltas)
		}
	}
}

// TestTelegramDMAnsweredByAgent: a direct message to the bot, injected into the fake Bot API,
// travels telegram → autoreply → agent (the scripted command) → telegram.
func TestTelegramDMAnsweredByAgent(t *testing.T) {
	s := needStack(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const chat = 7002
	s.fakeInject(t, chat, "hello bot from the stack")
	got := s.waitSent(t, ctx, chat, func(m telegramtest.Sent) bool {
		return m.Method == "sendMessage" && strings.Contains(m.Text, "echo: ") && strings.Contains(m.Text, "hello bot from the stack")
	})
	t.Logf("reply: %q", got.Text)
}

// TestPresenceAcrossClients: a node connecting to the edge is broadcast to another client and
// listed for both.
func TestPresenceAcrossClients(t *testing.T) {
	s := needStack(t)
	seen := make(chan []schemas.PresenceEntry, 64)
	watcher := s.dial(t, client.Options{
		Client: schemas.ClientInfo{Name: "it-watch", Mode: "node", InstanceID: "it-watch"},
		OnEvent: func(ev schemas.Event) {
			if ev.Event != schemas.EventPresence {
				return
			}
			var p schemas.PresencePayload
			if json.Unmarshal(ev.Payload, &p) == nil {
				seen <- p.Presence
			}
		}})
	s.dial(t, client.Options{Client: schemas.ClientInfo{Name: "it-node", Mode: "node", InstanceID: "it-node"}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for found := false; !found; {
		select {
		case list := <-seen:
			found = slices.ContainsFunc(list, func(e schemas.PresenceEntry) bool { return e.InstanceID == "it-node" })
		case <-ctx.Done():
			t.Fatal("the watcher never saw it-node in a presence event")
		}
	}
	raw, err := watcher.Request(ctx, schemas.MethodSystemPresence, nil)
	if err != nil {
		t.Fatal(err)
	}
	var list []schemas.PresenceEntry
	if err := json.Unmarshal(raw, &list); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"it-watch", "it-node"} {
		if !slices.ContainsFunc(list, func(e schemas.PresenceEntry) bool { return e.InstanceID == id }) {
			t.Errorf("%s not listed: %s", id, raw)
		}
	}
}

// TestWebChatContainer: the WebChat container serves its page on the published port and
// relays a browser-style WebSocket to the gateway.
func TestWebChatContainer(t *testing.T) {
	s := needStack(t)
	base := "127.0.0.1:" + strconv.Itoa(s.webchatPort)
	resp, err := http.Get("http://" + base + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("page: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// WebChat is behind the gateway token: a browser presents it like any client.
	c, err := client.Dial(ctx, client.Options{URL: "ws://" + base + "/ws", HTTPHeader: http.Header{"Origin": {"http://" + base}},
		Token: s.gatewayToken, Client: schemas.ClientInfo{Name: "it-browser", Mode: "webchat"}})
	if err != nil {
		t.Fatalf("webchat socket: %v", err)
	}
	defer c.Close()
	if _, err := c.Request(ctx, schemas.MethodHealth, nil); err != nil {
		t.Fatalf("health through the relay: %v", err)
	}
}
