package edge

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
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

// fakeAgent acknowledges runs at once; when the test sends on go, it publishes one agent
// event and the final on the run's subject.
type fakeAgent struct {
	svc micro.Service
	go_ chan struct{}
}

func startFakeAgent(t *testing.T, nc *nats.Conn) *fakeAgent {
	t.Helper()
	fa := &fakeAgent{go_: make(chan struct{}, 1)}
	var err error
	fa.svc, err = micro.AddService(nc, micro.Config{Name: subject.ServiceAgent, Version: "1.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	err = fa.svc.AddEndpoint("run", wire.Handler("run", func(_ context.Context, data []byte, _ nats.Header) (any, error) {
		var p schemas.AgentParams
		_ = json.Unmarshal(data, &p)
		wg.Go(func() {
			<-fa.go_
			publishRunEvent(t, nc, subject.AgentRunEvents(p.IdempotencyKey), wire.RunEventAgent,
				schemas.AgentEventPayload{RunID: p.IdempotencyKey, Seq: 1, Stream: "assistant", Ts: 1, Data: json.RawMessage(`{"text":"hel"}`)})
			payload, _ := json.Marshal(schemas.AgentResult{RunID: p.IdempotencyKey, Status: schemas.RunOK, Summary: "done", Text: "hello"})
			publishRunEvent(t, nc, subject.AgentRunEvents(p.IdempotencyKey), wire.RunEventFinal, wire.RunFinal{OK: true, Payload: payload})
		})
		return schemas.AgentResult{RunID: p.IdempotencyKey, Status: schemas.RunAccepted}, nil
	}), micro.WithEndpointSubject(subject.AgentRun))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fa.svc.Stop() })
	return fa
}

func TestAgentTwoStage(t *testing.T) {
	g := startEdge(t, func(c *Config) { c.Routes = RoutesFor(DefaultRoutes(), allServices) })
	startFakeServices(t, g.nc)
	fa := startFakeAgent(t, g.nc)
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

	c.Send(map[string]any{"type": "req", "id": "a1", "method": "agent",
		"params": map[string]any{"message": "hi", "idempotencyKey": "run-1"}})
	ack := c.NextRes("a1")
	if ack["ok"] != true || ack["payload"].(map[string]any)["status"] != "accepted" {
		t.Fatalf("ack = %v", ack)
	}
	fa.go_ <- struct{}{}
	ev := c.NextEvent("agent")
	if p := ev["payload"].(map[string]any); p["runId"] != "run-1" || p["stream"] != "assistant" {
		t.Errorf("agent event = %v", ev)
	}
	final := c.NextRes("a1")
	p := final["payload"].(map[string]any)
	if final["ok"] != true || p["status"] != "ok" || p["text"] != "hello" || p["runId"] != "run-1" {
		t.Fatalf("final = %v", final)
	}
}

// TestAgentServiceLostMidRun: when a run's events stop, the edge asks the agent service
// about it; a service that no longer knows the run, or none at all, ends it UNAVAILABLE.
func TestAgentServiceLostMidRun(t *testing.T) {
	for _, tt := range []struct {
		name      string
		status    bool // a (restarted) service answers agent.status: unknown
		want      string
		retryable bool
	}{
		{"service gone", false, "run r: the agent service stopped answering", true},
		{"service restarted", true, "unknown run r (the agent service may have restarted)", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := startEdge(t, func(c *Config) {
				c.Routes = RoutesFor(DefaultRoutes(), allServices)
				c.RunHeartbeat = 10 * time.Millisecond
			})
			startFakeServices(t, g.nc)
			svc, err := micro.AddService(g.nc, micro.Config{Name: subject.ServiceAgent, Version: "1.0.0"})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = svc.Stop() })
			err = svc.AddEndpoint("run", wire.Handler("run", func(context.Context, []byte, nats.Header) (any, error) {
				return schemas.AgentResult{RunID: "r", Status: schemas.RunAccepted}, nil
			}), micro.WithEndpointSubject(subject.AgentRun))
			if err != nil {
				t.Fatal(err)
			}
			if tt.status {
				err = svc.AddEndpoint("status", wire.Handler("status", func(context.Context, []byte, nats.Header) (any, error) {
					return wire.RunStatus{State: wire.RunUnknown}, nil
				}), micro.WithEndpointSubject(subject.AgentStatus))
				if err != nil {
					t.Fatal(err)
				}
			}
			c, _ := g.connect("cli")
			c.Send(map[string]any{"type": "req", "id": "a1", "method": "agent",
				"params": map[string]any{"message": "hi", "idempotencyKey": "r"}})
			if ack := c.NextRes("a1"); ack["ok"] != true {
				t.Fatalf("ack = %v", ack)
			}
			final := c.NextRes("a1")
			code, msg, retryable := errCode(final)
			if final["ok"] != false || code != wire.CodeUnavailable || retryable != tt.retryable || !strings.HasPrefix(msg, tt.want) {
				t.Fatalf("final = %v, want UNAVAILABLE retryable:%v %q…", final, tt.retryable, tt.want)
			}
		})
	}
}

// TestAgentRepeatFinishedRun: a repeated agent request whose run already finished gets
// exactly one res, the remembered final, and no ack (SPEC §6.5).
func TestAgentRepeatFinishedRun(t *testing.T) {
	g := startEdge(t, func(c *Config) { c.Routes = RoutesFor(DefaultRoutes(), allServices) })
	startFakeServices(t, g.nc)
	svc, err := micro.AddService(g.nc, micro.Config{Name: subject.ServiceAgent, Version: "1.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop() })
	payload, _ := json.Marshal(schemas.AgentResult{RunID: "done", Status: schemas.RunOK, Summary: "completed", Text: "old"})
	final, _ := json.Marshal(wire.RunFinal{OK: true, Payload: payload})
	err = svc.AddEndpoint("run", wire.Handler("run", func(context.Context, []byte, nats.Header) (any, error) {
		return wire.Reply{Data: final, Header: nats.Header{wire.HeaderRunFinal: []string{"1"}}}, nil
	}), micro.WithEndpointSubject(subject.AgentRun))
	if err != nil {
		t.Fatal(err)
	}
	c, _ := g.connect("cli")
	c.Send(map[string]any{"type": "req", "id": "a1", "method": "agent",
		"params": map[string]any{"message": "hi", "idempotencyKey": "done"}})
	res := c.NextRes("a1")
	if p, _ := res["payload"].(map[string]any); res["ok"] != true || p["status"] != "ok" || p["text"] != "old" {
		t.Fatalf("res = %v, want the remembered final", res)
	}
	c.Send(`{"type":"req","id":"after","method":"health"}`)
	if res := c.Next(); res["id"] != "after" {
		t.Fatalf("after the final came %v, want the health res (no second res for a1)", res)
	}
}

func TestChatEventsBroadcast(t *testing.T) {
	g := startEdge(t, func(c *Config) { c.Routes = RoutesFor(DefaultRoutes(), allServices) })
	startFakeServices(t, g.nc)
	a, _ := g.connect("webchat")
	b, _ := g.connect("cli")
	msg := &schemas.ChatMessage{Role: "assistant", Content: []schemas.ChatContent{{Type: "text", Text: "hi"}}, Timestamp: 1}
	for _, st := range []string{schemas.ChatStateDelta, schemas.ChatStateFinal} {
		kind := wire.RunEventChat
		if st == schemas.ChatStateDelta {
			kind = wire.RunEventChatDelta
		}
		publishRunEvent(t, g.nc, subject.ChatRunEvents("r"), kind,
			schemas.ChatEventPayload{RunID: "r", SessionKey: "main", Seq: 1, State: st, Message: msg})
	}
	for _, c := range []*wsc{a, b} {
		for _, st := range []string{"delta", "final"} {
			ev := c.NextEvent("chat")
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
		c.Send(map[string]any{"type": "req", "id": tt.id, "method": tt.method, "params": tt.params})
		if res := c.NextRes(tt.id); res["ok"] != true {
			t.Errorf("%s: %v", tt.id, res)
		}
		if g := <-got; len(g) < len(tt.want) || g[:len(tt.want)] != tt.want {
			t.Errorf("%s reached the bus as %q, want prefix %q", tt.id, g, tt.want)
		}
	}
}

// TestAckedRunFreesItsSlot: an acknowledged agent run does not hold one of the connection's
// in-flight slots while it runs (SPEC §5.3): with a limit of 2 and 3 runs going, health is
// still answered; each run still gets its final.
func TestAckedRunFreesItsSlot(t *testing.T) {
	g := startEdge(t, func(c *Config) {
		c.Routes = RoutesFor(DefaultRoutes(), allServices)
		c.MaxInFlight = 2
	})
	startFakeServices(t, g.nc)
	fa := startFakeAgent(t, g.nc)
	c, _ := g.connect("cli")
	for i := range 3 {
		id := fmt.Sprintf("a%d", i)
		c.Send(map[string]any{"type": "req", "id": id, "method": "agent",
			"params": map[string]any{"message": "hi", "idempotencyKey": "slot-" + id}})
		if ack := c.NextRes(id); ack["ok"] != true {
			t.Fatalf("ack %s = %v", id, ack)
		}
	}
	c.Send(`{"type":"req","id":"h","method":"health"}`)
	if res := c.NextRes("h"); res["ok"] != true {
		t.Fatalf("health while 3 runs go on with a limit of 2: %v", res)
	}
	finals := map[string]bool{}
	for range 3 {
		fa.go_ <- struct{}{}
	}
	for len(finals) < 3 {
		if m := c.Next(); m["type"] == "res" {
			if m["ok"] != true {
				t.Fatalf("final %v", m)
			}
			finals[m["id"].(string)] = true
		}
	}
}
