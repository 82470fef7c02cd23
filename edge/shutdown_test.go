package edge

import (
	"net"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/nats-io/nats.go"

	"github.com/clawdis/clawdis/bus/subject"
)

func TestShutdownSequence(t *testing.T) {
	g := startEdge(t, func(c *Config) { c.ShutdownTimeout = 200 * time.Millisecond })
	startFakeServices(t, g.nc)
	var clients []*wsc
	for range 3 {
		c, _ := g.connect("cli")
		clients = append(clients, c)
	}
	g.cancel()
	for i, c := range clients {
		ev := c.NextEvent("shutdown")
		if ev["payload"].(map[string]any)["reason"] != "gateway stopping" {
			t.Errorf("client %d shutdown payload = %v", i, ev["payload"])
		}
		if code, reason := c.Closed(); code != websocket.StatusServiceRestart || reason != "service restart" {
			t.Errorf("client %d closed %d %q", i, code, reason)
		}
	}
	select {
	case err := <-g.done:
		if err != nil {
			t.Errorf("Run returned %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return")
	}
	// The port is free at once.
	ln, err := net.Listen("tcp", g.addr)
	if err != nil {
		t.Fatalf("port still taken after stop: %v", err)
	}
	ln.Close()
	g.done <- nil // for the cleanup's stop
}

func TestShutdownFailsInFlightRequestsWithinBudget(t *testing.T) {
	g := startEdge(t, func(c *Config) { c.ShutdownTimeout = 100 * time.Millisecond })
	arrived := make(chan struct{}, 4)
	sub, err := g.nc.Subscribe(subject.HealthGet, func(m *nats.Msg) { arrived <- struct{}{} }) // never answers
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	c, _ := g.connect("cli")
	for len(arrived) > 0 { // the edge's own question for a first snapshot
		<-arrived
	}
	c.Send(`{"type":"req","id":"stuck","method":"health"}`)
	<-arrived
	g.cancel()
	res := c.NextRes("stuck")
	if code, msg, retryable := errCode(res); code != "UNAVAILABLE" || !retryable || msg != "gateway shutting down" {
		t.Errorf("in-flight at shutdown: %v", res)
	}
	if code, _ := c.Closed(); code != websocket.StatusServiceRestart {
		t.Errorf("closed %d", code)
	}
	<-g.done
	g.done <- nil
}

func TestShutdownClosesConnectionsStillInHandshake(t *testing.T) {
	g := startEdge(t, func(c *Config) { c.HandshakeTimeout = time.Hour })
	added := make(chan struct{}, 1)
	hook := func() { added <- struct{}{} }
	g.srv.hub.connAdded.Store(&hook)
	c := dialRaw(t, g.url, nil)
	<-added // the server has the connection
	g.cancel()
	if code, _ := c.Closed(); code != websocket.StatusServiceRestart {
		t.Errorf("closed %d", code)
	}
	select {
	case <-g.done:
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return")
	}
	g.done <- nil
}
