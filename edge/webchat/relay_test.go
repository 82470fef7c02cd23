package webchat

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/clawdis/clawdis/bus/subject"
	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/schemas"
)

// collect reads frames from c until want(res) is satisfied, returning the res frames by id
// and every event frame in order.
func collect(c *tabConn, want func(res map[string][]map[string]any) bool) (map[string][]map[string]any, []map[string]any) {
	c.T.Helper()
	res := map[string][]map[string]any{}
	var events []map[string]any
	for !want(res) {
		m := c.Next()
		switch m["type"] {
		case "res":
			id := m["id"].(string)
			res[id] = append(res[id], m)
		case "event":
			events = append(events, m)
		}
	}
	return res, events
}

func TestTabsKeepTheirRequestIDs(t *testing.T) {
	g := startGateway(t)
	r := startRelay(t, g.url(), nil)
	r.waitUp(true)
	a, helloA := r.open()
	b, helloB := r.open()

	idA := helloA["server"].(map[string]any)["connId"]
	idB := helloB["server"].(map[string]any)["connId"]
	if idA == idB || idA == "" {
		t.Errorf("tabs share connId %v", idA)
	}
	if v := helloA["server"].(map[string]any)["version"]; v != "test-gw" {
		t.Errorf("hello-ok server.version = %v, want the gateway's", v)
	}
	methods := helloA["features"].(map[string]any)["methods"].([]any)
	for _, m := range []string{"health", "agent", "chat.send"} {
		if !slices.Contains(methods, any(m)) {
			t.Errorf("features.methods %v lacks %s", methods, m)
		}
	}

	// The same ids on both tabs, for different methods, at the same time.
	a.Req("1", "health", nil)
	b.Req("1", "system-presence", nil)
	a.Req("2", "agent", map[string]any{"message": "hi", "idempotencyKey": "run-a"})
	b.Req("2", "agent", map[string]any{"message": "hi", "idempotencyKey": "late-b"})
	done := func(res map[string][]map[string]any) bool { return len(res["1"]) == 1 && len(res["2"]) == 2 }
	resA, _ := collect(a, done)
	resB, _ := collect(b, done)

	if p, ok := resA["1"][0]["payload"].(map[string]any); !ok || p["web"] == nil {
		t.Errorf("tab A got %v for its health request", resA["1"][0])
	}
	// system-presence: passed through as the gateway answers it (the list, or {presence}).
	if p, ok := resB["1"][0]["payload"].(map[string]any); ok && p["presence"] == nil {
		t.Errorf("tab B got %v for its system-presence request", resB["1"][0])
	}
	for name, rs := range map[string][]map[string]any{"A": resA["2"], "B": resB["2"]} {
		if p := rs[0]["payload"].(map[string]any); rs[0]["ok"] != true || p["status"] != "accepted" {
			t.Errorf("tab %s: agent ack = %v", name, rs[0])
		}
	}
	if p := resA["2"][1]["payload"].(map[string]any); resA["2"][1]["ok"] != true || p["text"] != "reply to run-a" {
		t.Errorf("tab A: agent final = %v", resA["2"][1])
	}
	fin := resB["2"][1]
	if code, _ := errCode(fin); fin["ok"] != false || code != "AGENT_TIMEOUT" ||
		fin["payload"].(map[string]any)["status"] != "timeout" {
		t.Errorf("tab B: agent final = %v", fin)
	}
}

func TestEventsFanOutWithPerTabSeq(t *testing.T) {
	g := startGateway(t)
	r := startRelay(t, g.url(), nil)
	r.waitUp(true)
	a, _ := r.open()
	b, _ := r.open()

	presence := schemas.PresencePayload{Presence: []schemas.PresenceEntry{
		{Host: "phone", Mode: "app", Ts: 2}, {Host: "gw", Mode: "gateway", Reason: "self", Ts: 1}}}
	chat := schemas.ChatEventPayload{RunID: "r1", SessionKey: "main", Seq: 1, State: schemas.ChatStateFinal,
		Message: &schemas.ChatMessage{Role: "assistant", Content: []schemas.ChatContent{{Type: "text", Text: "hey"}}, Timestamp: 3}}
	agentEv := schemas.AgentEventPayload{RunID: "r1", Seq: 1, Stream: "assistant", Ts: 3, Data: json.RawMessage(`{"text":"hey"}`)}
	publish(t, g, subject.PresenceChanged, presence)
	publishRun(t, g, subject.ChatRunEvents("r1"), wire.RunEventChat, chat)
	publishRun(t, g, subject.AgentRunEvents("r1"), wire.RunEventAgent, agentEv)

	for name, c := range map[string]*tabConn{"A": a, "B": b} {
		var got []string
		for len(got) < 3 {
			m := c.Next()
			if m["type"] != "event" {
				continue
			}
			got = append(got, m["event"].(string))
			if seq := m["seq"].(float64); int(seq) != len(got) {
				t.Errorf("tab %s: event %d has seq %v", name, len(got), seq)
			}
			if m["event"] == "presence" && m["stateVersion"] == nil {
				t.Errorf("tab %s: presence event without stateVersion", name)
			}
		}
		if !slices.Contains(got, "presence") || !slices.Contains(got, "chat") || !slices.Contains(got, "agent") {
			t.Errorf("tab %s got events %v", name, got)
		}
	}
	// A later tab starts at seq 1 again and finds the new presence in its snapshot.
	c, hello := r.open()
	snap := hello["snapshot"].(map[string]any)["presence"].([]any)
	if len(snap) != 2 || snap[0].(map[string]any)["host"] != "phone" {
		t.Errorf("snapshot presence = %v, want the latest list", snap)
	}
	publishRun(t, g, subject.ChatRunEvents("r1"), wire.RunEventChat, chat)
	for {
		m := c.Next()
		if m["type"] == "event" {
			if m["seq"] != 1.0 {
				t.Errorf("the first event of a new tab has seq %v", m["seq"])
			}
			break
		}
	}
}

// TestUpstreamGapReachesTabs: events the relay lost upstream show as a seq gap in every tab,
// so the page refreshes.
func TestUpstreamGapReachesTabs(t *testing.T) {
	g := startGateway(t)
	r := startRelay(t, g.url(), nil)
	r.waitUp(true)
	a, _ := r.open()
	r.srv.onGap(1, 4) // the client saw seq 4 after 0: three events lost
	publish(t, g, subject.PresenceChanged, schemas.PresencePayload{Presence: []schemas.PresenceEntry{{Host: "gw", Ts: 1}}})
	for {
		m := a.Next()
		if m["type"] == "event" {
			if m["seq"] != 4.0 {
				t.Errorf("first event after the gap has seq %v, want 4", m["seq"])
			}
			return
		}
	}
}

func publish(t *testing.T, g *gateway, subj string, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.nc.Publish(subj, b); err != nil {
		t.Fatal(err)
	}
}

// publishRun publishes one run event of kind on g's bus, as the agent service does.
func publishRun(t *testing.T, g *gateway, subj, kind string, v any) {
	t.Helper()
	publishRunTB(t, g.nc, subj, kind, v)
}

func TestReconnectsToARestartedGateway(t *testing.T) {
	g := startGateway(t)
	r := startRelay(t, g.url(), nil)
	r.waitUp(true)
	a, _ := r.open()

	g.stop()
	var seqs []float64
	next := func(want string) map[string]any {
		t.Helper()
		for {
			m := a.Next()
			if m["type"] == "event" {
				seqs = append(seqs, m["seq"].(float64))
				if m["event"] == want {
					return m
				}
			}
		}
	}
	next("shutdown")
	r.waitUp(false)

	a.Req("down", "health", nil)
	res, _ := collect(a, func(res map[string][]map[string]any) bool { return len(res["down"]) == 1 })
	if code, retry := errCode(res["down"][0]); code != "UNAVAILABLE" || !retry {
		t.Errorf("request while the gateway is down = %v, want UNAVAILABLE retryable", res["down"][0])
	}
	fresh := r.dial()
	fresh.Send(helloFrame())
	if m := fresh.Next(); m["type"] != "hello-error" || !strings.HasPrefix(m["reason"].(string), "gateway unavailable: "+g.url()) {
		t.Errorf("hello while the gateway is down = %v", m)
	}
	if code, _ := fresh.Closed(); code != websocket.StatusTryAgainLater {
		t.Errorf("close code %d, want 1013", code)
	}

	g.start() // the same port
	r.waitUp(true)
	next("presence")
	next("health")
	a.Req("up", "health", nil)
	res, _ = collect(a, func(res map[string][]map[string]any) bool { return len(res["up"]) == 1 })
	if res["up"][0]["ok"] != true {
		t.Errorf("request after the restart = %v", res["up"][0])
	}
	for i, s := range seqs {
		if int(s) != i+1 {
			t.Errorf("event seqs %v skip numbers", seqs)
			break
		}
	}
}

func TestShutdownClosesTabs(t *testing.T) {
	g := startGateway(t)
	r := startRelay(t, g.url(), nil)
	r.waitUp(true)
	a, _ := r.open()
	stopped := make(chan struct{})
	go func() { r.stop(); close(stopped) }()
	if code, reason := a.Closed(); code != websocket.StatusServiceRestart || reason != "service restart" {
		t.Errorf("tab closed with %d %q, want 1012 service restart", code, reason)
	}
	select {
	case <-stopped:
	case <-time.After(waitLimit):
		t.Fatal("Run did not return")
	}
}
