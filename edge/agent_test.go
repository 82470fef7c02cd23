package edge

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/clawdis/clawdis/bus/subject"
	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/schemas"
)

var allServices = []string{subject.ServicePresence, subject.ServiceHealth, subject.ServiceSessions,
	subject.ServiceAgent, subject.ServiceWhatsApp, subject.ServiceTelegram}

// fakeAgent acknowledges runs at once and answers the first wait with "not done yet" and
// the second with the final, publishing one agent event in between.
type fakeAgent struct {
	svc   micro.Service
	waits atomic.Int32
}

func startFakeAgent(t *testing.T, nc *nats.Conn) *fakeAgent {
	t.Helper()
	fa := &fakeAgent{}
	var err error
	fa.svc, err = micro.AddService(nc, micro.Config{Name: subject.ServiceAgent, Version: "1.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	add := func(name, subj string, fn wire.HandlerFunc) {
		if err := fa.svc.AddEndpoint(name, wire.Handler(name, fn), micro.WithEndpointSubject(subj)); err != nil {
			t.Fatal(err)
		}
	}
	add("run", subject.AgentRun, func(_ context.Context, data []byte, _ nats.Header) (any, error) {
		var p schemas.AgentParams
		_ = json.Unmarshal(data, &p)
		return schemas.AgentResult{RunID: p.IdempotencyKey, Status: schemas.RunAccepted}, nil
	})
	add("wait", subject.AgentWait, func(_ context.Context, data []byte, _ nats.Header) (any, error) {
		var w wire.AgentWait
		_ = json.Unmarshal(data, &w)
		if fa.waits.Add(1) == 1 {
			ev := schemas.AgentEventPayload{RunID: w.RunID, Seq: 1, Stream: "assistant", Ts: 1, Data: json.RawMessage(`{"text":"hel"}`)}
			b, _ := json.Marshal(ev)
			if err := nc.Publish(subject.AgentEvent, b); err != nil {
				return nil, err
			}
			return wire.AgentFinal{Done: false}, nil
		}
		payload, _ := json.Marshal(schemas.AgentResult{RunID: w.RunID, Status: schemas.RunOK, Summary: "done", Text: "hello"})
		return wire.AgentFinal{Done: true, OK: true, Payload: payload}, nil
	})
	t.Cleanup(func() { _ = fa.svc.Stop() })
	return fa
}

func TestAgentTwoStage(t *testing.T) {
	g := startEdge(t, func(c *Config) { c.Routes = RoutesFor(DefaultRoutes(), allServices) })
	startFakeServices(t, g.nc)
	startFakeAgent(t, g.nc)
	c, ok := g.connect("cli")
	features := ok["features"].(map[string]any)
	var events []string
	for _, e := range features["events"].([]any) {
		events = append(events, e.(string))
	}
	for _, want := range []string{"agent", "chat"} {
		if !slices.Contains(events, want) {
			t.Errorf("features.events %v lacks %q", events, want)
		}
	}

	c.send(map[string]any{"type": "req", "id": "a1", "method": "agent",
		"params": map[string]any{"message": "hi", "idempotencyKey": "run-1"}})
	ack := c.nextRes("a1")
	if ack["ok"] != true || ack["payload"].(map[string]any)["status"] != "accepted" {
		t.Fatalf("ack = %v", ack)
	}
	ev := c.nextEvent("agent")
	if p := ev["payload"].(map[string]any); p["runId"] != "run-1" || p["stream"] != "assistant" {
		t.Errorf("agent event = %v", ev)
	}
	final := c.nextRes("a1")
	p := final["payload"].(map[string]any)
	if final["ok"] != true || p["status"] != "ok" || p["text"] != "hello" || p["runId"] != "run-1" {
		t.Fatalf("final = %v", final)
	}
}

func TestAgentServiceLostMidRun(t *testing.T) {
	g := startEdge(t, func(c *Config) {
		c.Routes = RoutesFor(DefaultRoutes(), allServices)
		c.RunLostAfter = 200 * time.Millisecond
	})
	startFakeServices(t, g.nc)
	svc, err := micro.AddService(g.nc, micro.Config{Name: subject.ServiceAgent, Version: "1.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	stopped := make(chan struct{})
	err = svc.AddEndpoint("run", wire.Handler("run", func(context.Context, []byte, nats.Header) (any, error) {
		return schemas.AgentResult{RunID: "r", Status: schemas.RunAccepted}, nil
	}), micro.WithEndpointSubject(subject.AgentRun))
	if err != nil {
		t.Fatal(err)
	}
	// The wait endpoint stops the whole service before answering: the edge then finds no
	// responder on its next poll, like a crashed agent container. A poll that arrives while
	// the stop is under way is answered the same way.
	var stopOnce sync.Once
	err = svc.AddEndpoint("wait", wire.Handler("wait", func(context.Context, []byte, nats.Header) (any, error) {
		stopOnce.Do(func() { go func() { _ = svc.Stop(); close(stopped) }() })
		return wire.AgentFinal{Done: false}, nil
	}), micro.WithEndpointSubject(subject.AgentWait))
	if err != nil {
		t.Fatal(err)
	}
	c, _ := g.connect("cli")
	c.send(map[string]any{"type": "req", "id": "a1", "method": "agent",
		"params": map[string]any{"message": "hi", "idempotencyKey": "r"}})
	if ack := c.nextRes("a1"); ack["ok"] != true {
		t.Fatalf("ack = %v", ack)
	}
	final := c.nextRes("a1")
	code, msg, retryable := errCode(final)
	if final["ok"] != false || code != wire.CodeUnavailable || !retryable {
		t.Fatalf("final = %v", final)
	}
	if want := "agent run r: the service stopped answering"; len(msg) < len(want) || msg[:len(want)] != want {
		t.Errorf("message %q, want prefix %q", msg, want)
	}
	<-stopped
}

func TestChatEventsBroadcast(t *testing.T) {
	g := startEdge(t, func(c *Config) { c.Routes = RoutesFor(DefaultRoutes(), allServices) })
	startFakeServices(t, g.nc)
	a, _ := g.connect("webchat")
	b, _ := g.connect("cli")
	msg := &schemas.ChatMessage{Role: "assistant", Content: []schemas.ChatContent{{Type: "text", Text: "hi"}}, Timestamp: 1}
	for _, st := range []string{schemas.ChatStateDelta, schemas.ChatStateFinal} {
		body, _ := json.Marshal(schemas.ChatEventPayload{RunID: "r", SessionKey: "main", Seq: 1, State: st, Message: msg})
		if err := g.nc.Publish(subject.ChatEvent, body); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []*wsc{a, b} {
		for _, st := range []string{"delta", "final"} {
			ev := c.nextEvent("chat")
			if p := ev["payload"].(map[string]any); p["state"] != st || p["runId"] != "r" {
				t.Errorf("chat event = %v, want state %s", ev, st)
			}
		}
	}
}

func TestRoutedParams(t *testing.T) {
	g := startEdge(t, func(c *Config) {
		c.Routes = RoutesFor(DefaultRoutes(), allServices)
		c.MaxPayload = 64 << 10
	})
	startFakeServices(t, g.nc)
	got := make(chan string, 4)
	respond := func(subj string, reply func(data []byte) any) {
		sub, err := g.nc.Subscribe(subj, func(m *nats.Msg) {
			got <- subj + " " + string(m.Data)
			b, _ := json.Marshal(reply(m.Data))
			_ = m.Respond(b)
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = sub.Unsubscribe() })
	}
	waSend, _ := subject.ProviderSend("whatsapp")
	tgSend, _ := subject.ProviderSend("telegram")
	for _, subj := range []string{waSend, tgSend} {
		respond(subj, func([]byte) any {
			return schemas.SendResult{RunID: "k", MessageID: "m1", Provider: "x"}
		})
	}
	respond(subject.SessionsHistory, func([]byte) any {
		return schemas.ChatHistoryResult{SessionKey: "main", Messages: []schemas.ChatMessage{}, ThinkingLevel: "off"}
	})
	if err := g.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	c, _ := g.connect("cli")
	for _, tt := range []struct {
		id     string
		method string
		params map[string]any
		want   string
	}{
		{"s1", "send", map[string]any{"to": "+1555", "message": "m", "idempotencyKey": "k"}, waSend + " "},
		{"s2", "send", map[string]any{"to": "42", "message": "m", "provider": "telegram", "idempotencyKey": "k"}, tgSend + " "},
		{"h1", "chat.history", map[string]any{"sessionKey": "main", "limit": 5},
			subject.SessionsHistory + ` {"sessionKey":"main","limit":5,"maxBytes":64512}`},
	} {
		c.send(map[string]any{"type": "req", "id": tt.id, "method": tt.method, "params": tt.params})
		if res := c.nextRes(tt.id); res["ok"] != true {
			t.Errorf("%s: %v", tt.id, res)
		}
		if g := <-got; len(g) < len(tt.want) || g[:len(tt.want)] != tt.want {
			t.Errorf("%s reached the bus as %q, want prefix %q", tt.id, g, tt.want)
		}
	}
}
