package edge

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/clawdis/clawdis/bus/subject"
	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/edge/edgetest"
	"github.com/clawdis/clawdis/schemas"
)

// TestConnSuite runs the shared connection tests against the gateway's edge.
func TestConnSuite(t *testing.T) {
	edgetest.Run(t, func(t *testing.T, o edgetest.Options) edgetest.Target {
		const token = "edgetest-token"
		g := startEdgeLog(t, o.Log, func(c *Config) {
			if o.RequireToken {
				c.Token = token
			}
			c.MaxConnections = o.MaxConnections
			if o.PingInterval > 0 {
				c.TickInterval, c.IdleTimeout = o.PingInterval, o.IdleTimeout
			}
			if o.MaxBufferedBytes > 0 {
				c.MaxBufferedBytes = o.MaxBufferedBytes
				c.WriteTimeout = 5 * time.Minute
			}
			if o.Listener != nil {
				c.Listener = o.Listener(c.Listener)
			}
			c.Routes = RoutesFor(DefaultRoutes(), allServices)
		})
		fs := startFakeServices(t, g.nc)
		tg := edgetest.Target{
			URL:   g.url,
			Hello: hello("cli"),
			Emit: func(t testing.TB, runID string, seq0, n, size int) {
				emitAgentEvents(t, g.nc, runID, seq0, n, size)
			},
			Hold: func(t testing.TB) (<-chan struct{}, func()) {
				return holdHealth(t, g.nc, func() { _ = fs.health.Stop() })
			},
		}
		if o.RequireToken {
			tg.Token = token
			tg.Hello["auth"] = map[string]any{"token": token}
		}
		return tg
	})
}

// emitAgentEvents publishes n agent events of runID as the agent service does.
func emitAgentEvents(t testing.TB, nc *nats.Conn, runID string, seq0, n, size int) {
	data, _ := json.Marshal(map[string]string{"text": strings.Repeat("a", size)})
	for i := range n {
		publishRunEvent(t, nc, subject.AgentRunEvents(runID), wire.RunEventAgent,
			schemas.AgentEventPayload{RunID: runID, Seq: int64(seq0 + i), Stream: "assistant", Ts: 1, Data: data})
	}
}

// holdHealth stops the health service (stop) and answers health requests itself once
// release is called.
func holdHealth(t testing.TB, nc *nats.Conn, stop func()) (<-chan struct{}, func()) {
	stop()
	release := make(chan struct{})
	arrived := make(chan struct{}, 64)
	body, _ := json.Marshal(sampleHealth(true))
	sub, err := nc.Subscribe(subject.HealthGet, func(m *nats.Msg) {
		arrived <- struct{}{}
		go func() { <-release; _ = m.Respond(body) }()
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	var released bool
	return arrived, func() {
		if !released {
			released = true
			close(release)
		}
	}
}
