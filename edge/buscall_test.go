package edge

import (
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/clawdis/clawdis/bus/subject"
	"github.com/clawdis/clawdis/schemas"
)

// heldRequests is a responder on subj that answers nothing until told: the test holds every
// request it got and answers them when and how it wants.
func heldRequests(t *testing.T, g *gw, subj string) chan *nats.Msg {
	t.Helper()
	got := make(chan *nats.Msg, 16)
	nc := g.bus.Conn("held")
	if _, err := nc.Subscribe(subj, func(m *nats.Msg) { got <- m }); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return got
}

// TestLateReplyIsDropped: a reply that comes after its request's deadline answered the
// client is dropped; the client gets exactly one res per request.
func TestLateReplyIsDropped(t *testing.T) {
	// system-event with text "late" has a short deadline, any other an hour.
	deadline := func(params []byte) time.Duration {
		if strings.Contains(string(params), `"late"`) {
			return 20 * time.Millisecond
		}
		return time.Hour
	}
	g := startEdge(t, func(c *Config) {
		c.Routes = []Route{{Method: schemas.MethodSystemEvent, Subject: subject.PresenceEvent, Service: subject.ServicePresence, DeadlineFor: deadline}}
	})
	held := heldRequests(t, g, subject.PresenceEvent)
	c, _ := g.connect("cli")
	c.Send(`{"type":"req","id":"h1","method":"system-event","params":{"text":"late"}}`)
	late := <-held
	if code, _, retryable := errCode(c.NextRes("h1")); code != "UNAVAILABLE" || !retryable {
		t.Fatalf("h1 past its deadline: %s", code)
	}
	// The late reply first, then the next request, answered at once: replies reach the edge
	// in the order they were sent, so a second res for h1 would come before h2's.
	if err := late.Respond([]byte(`{"late":true}`)); err != nil {
		t.Fatal(err)
	}
	c.Send(`{"type":"req","id":"h2","method":"system-event","params":{"text":"on time"}}`)
	m := <-held
	if err := m.Respond([]byte(`{"ok":true}`)); err != nil {
		t.Fatal(err)
	}
	if res := c.Next(); res["type"] != "res" || res["id"] != "h2" || res["ok"] != true {
		t.Fatalf("after the late reply, got %v; want h2's res", res)
	}
}

// TestClosedConnectionEndsItsRequests: a client that leaves with a request under way ends it
// at once (not at its deadline), so nothing of the connection is left waiting.
func TestClosedConnectionEndsItsRequests(t *testing.T) {
	g := startEdge(t, func(c *Config) {
		c.Routes = []Route{{Method: schemas.MethodSystemEvent, Subject: subject.PresenceEvent, Service: subject.ServicePresence, Deadline: time.Hour}}
	})
	held := heldRequests(t, g, subject.PresenceEvent)
	c, _ := g.connect("cli")
	c.Send(`{"type":"req","id":"e1","method":"system-event","params":{"text":"hi"}}`)
	<-held
	_ = c.WS.CloseNow()
	select {
	case <-g.srv.hub.drain.stop(): // closed once no request is under way
	case <-time.After(10 * time.Second):
		t.Fatal("the request of a closed connection is still under way")
	}
	g.srv.calls.mu.Lock()
	n := len(g.srv.calls.calls)
	g.srv.calls.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d bus requests still registered", n)
	}
}
