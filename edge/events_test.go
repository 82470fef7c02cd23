package edge

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/clawdis/clawdis/bus/subject"
	"github.com/clawdis/clawdis/edge/edgetest"
	"github.com/clawdis/clawdis/schemas"
)

func publishPresence(t testing.TB, g *gw, n int, text string) {
	t.Helper()
	p := schemas.PresencePayload{}
	for i := range n {
		p.Presence = append(p.Presence, schemas.PresenceEntry{Host: fmt.Sprintf("h%d", i), Text: text, Ts: int64(i + 1)})
	}
	b, _ := json.Marshal(p)
	if err := g.nc.Publish(subject.PresenceChanged, b); err != nil {
		t.Fatal(err)
	}
}

func TestPresenceEventsSeqAndStateVersion(t *testing.T) {
	g := startEdge(t, nil)
	startFakeServices(t, g.nc)
	var clients []*wsc
	for range 3 {
		c, _ := g.connect("cli")
		clients = append(clients, c)
	}
	for i := range 3 {
		publishPresence(t, g, i+1, "x")
	}
	for ci, c := range clients {
		var last float64
		for want := 1; want <= 3; want++ {
			ev := c.NextEvent("presence")
			if ev["seq"] != float64(want) {
				t.Errorf("client %d: seq %v, want %d", ci, ev["seq"], want)
			}
			sv := ev["stateVersion"].(map[string]any)
			if p := sv["presence"].(float64); p <= last {
				t.Errorf("client %d: stateVersion.presence %v did not grow past %v", ci, p, last)
			} else {
				last = p
			}
			if n := len(ev["payload"].(map[string]any)["presence"].([]any)); n != want {
				t.Errorf("client %d: %d entries, want %d", ci, n, want)
			}
		}
	}
	// A client connecting now sees the grown counter in its snapshot and starts at seq 1.
	c, ok := g.connect("cli")
	sv := ok["snapshot"].(map[string]any)["stateVersion"].(map[string]any)
	if sv["presence"] != float64(3) {
		t.Errorf("snapshot stateVersion = %v", sv)
	}
	publishPresence(t, g, 1, "y")
	if ev := c.NextEvent("presence"); ev["seq"] != float64(1) {
		t.Errorf("new client's first seq = %v", ev["seq"])
	}
}

func TestHealthEventCarriesStateVersion(t *testing.T) {
	g := startEdge(t, nil)
	startFakeServices(t, g.nc)
	c, _ := g.connect("cli")
	b, _ := json.Marshal(sampleHealth(false))
	if err := g.nc.Publish(subject.HealthChanged, b); err != nil {
		t.Fatal(err)
	}
	ev := c.NextEvent("health")
	if ev["stateVersion"].(map[string]any)["health"] != float64(1) || ev["payload"].(map[string]any)["ok"] != false {
		t.Errorf("health event = %v", ev)
	}
	// A later hello-ok snapshot uses the event's summary.
	_, ok := g.connect("cli")
	if ok["snapshot"].(map[string]any)["health"].(map[string]any)["ok"] != false {
		t.Errorf("snapshot did not follow the health event")
	}
}

func TestClientPresenceAnnounced(t *testing.T) {
	g := startEdge(t, nil)
	fs := startFakeServices(t, g.nc)
	c, _ := g.connect("webchat")
	cp := <-fs.clients
	if cp.Event != "connect" || cp.Key != "inst-webchat" || cp.InstanceID != "inst-webchat" ||
		cp.Host != "test-webchat" || cp.Version != "1.2.3" || cp.Mode != "webchat" || cp.IP != "" {
		t.Errorf("connect = %+v", cp)
	}
	// cli clients are not in presence.
	cli, _ := g.connect("cli")
	_ = cli.WS.Close(websocket.StatusNormalClosure, "")
	_ = c.WS.Close(websocket.StatusNormalClosure, "")
	cp = <-fs.clients
	if cp.Event != "disconnect" || cp.Key != "inst-webchat" {
		t.Errorf("after closing: %+v (a cli client must not be announced)", cp)
	}
}

func TestTicks(t *testing.T) {
	g := startEdge(t, func(c *Config) { c.TickInterval = 20 * time.Millisecond })
	c, ok := g.connect("cli")
	if ok["policy"].(map[string]any)["tickIntervalMs"] != float64(20) {
		t.Errorf("policy = %v", ok["policy"])
	}
	prev := int64(0)
	for i := 1; i <= 3; i++ {
		ev := c.NextEvent("tick")
		if ev["seq"] != float64(i) {
			t.Errorf("tick %d seq = %v", i, ev["seq"])
		}
		ts := int64(ev["payload"].(map[string]any)["ts"].(float64))
		if ts < prev {
			t.Errorf("tick ts went back: %d < %d", ts, prev)
		}
		prev = ts
	}
}

func TestSlowConsumerSkipsDroppableEvents(t *testing.T) {
	// Small kernel send buffers make a client that stops reading back up into the queue;
	// a long write timeout: this test is about the queue bound, not about stuck writes.
	g := startEdge(t, func(c *Config) {
		c.Listener = edgetest.SmallSendBuffer(c.Listener)
		c.MaxBufferedBytes = 64 << 10
		c.WriteTimeout = 5 * time.Minute
	})
	startFakeServices(t, g.nc)
	slow := dialRaw(t, g.url, nil)
	slow.Send(hello("cli"))
	slow.Next()
	fast, _ := g.connect("cli")

	// Large droppable events: the slow client stops reading, so its queue fills and
	// events are skipped for it while the fast client gets them all.
	// Each event is published once the fast client has the previous one, so only the slow
	// client's queue grows.
	text := strings.Repeat("p", 500)
	const n = 400
	for i := 1; i <= n; i++ {
		publishPresence(t, g, 20, text)
		if ev := fast.NextEvent("presence"); ev["seq"] != float64(i) {
			t.Fatalf("fast client seq %v, want %d", ev["seq"], i)
		}
	}
	// Now the slow client reads. A response queued after all those events marks the end of
	// them; on the way it must see a gap, and it is still open.
	slow.Send(`{"type":"req","id":"alive","method":"health"}`)
	var prev float64
	gap := false
	for {
		m := slow.Next()
		if m["type"] == "res" {
			if m["id"] != "alive" || m["ok"] != true {
				t.Fatalf("slow client: %v", m)
			}
			break
		}
		if m["event"] != "presence" {
			continue
		}
		s := m["seq"].(float64)
		if s != prev+1 {
			gap = true
		}
		prev = s
	}
	if !gap {
		t.Errorf("slow client saw no seq gap although events were skipped for it (last seq %v)", prev)
	}
}
