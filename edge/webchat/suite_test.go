package webchat

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

// TestConnSuite runs the shared connection tests against the WebChat relay (in front of a
// gateway edge): the relay runs its tabs on the edge's connection machinery.
func TestConnSuite(t *testing.T) {
	edgetest.Run(t, func(t *testing.T, o edgetest.Options) edgetest.Target {
		g := startGateway(t)
		r := startRelay(t, g.url(), func(c *Config) {
			if o.MaxBufferedBytes > 0 {
				c.MaxBufferedBytes = o.MaxBufferedBytes
				c.WriteTimeout = 5 * time.Minute
			}
			if o.Listener != nil {
				c.Listener = o.Listener(c.Listener)
			}
			if o.Log != nil {
				c.Log = o.Log
			}
			c.MaxConnections, c.PingInterval, c.IdleTimeout = o.MaxConnections, o.PingInterval, o.IdleTimeout
		})
		r.waitUp(true)
		return edgetest.Target{
			URL:   "ws://" + r.addr + "/ws",
			Hello: helloFrame(),
			Token: testToken, // the relay always requires its gateway token
			Emit: func(t testing.TB, runID string, seq0, n, size int) {
				data, _ := json.Marshal(map[string]string{"text": strings.Repeat("a", size)})
				for i := range n {
					publishRunTB(t, g.nc, subject.AgentRunEvents(runID), wire.RunEventAgent,
						schemas.AgentEventPayload{RunID: runID, Seq: int64(seq0 + i), Stream: "assistant", Ts: 1, Data: data})
				}
			},
			Hold: func(t testing.TB) (<-chan struct{}, func()) {
				_ = g.svcs[subject.ServiceHealth].Stop()
				release := make(chan struct{})
				arrived := make(chan struct{}, 64)
				sub, err := g.nc.Subscribe(subject.HealthGet, func(m *nats.Msg) {
					arrived <- struct{}{}
					go func() { <-release; _ = m.Respond([]byte(`{}`)) }()
				})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = sub.Unsubscribe() })
				if err := g.nc.Flush(); err != nil {
					t.Fatal(err)
				}
				return arrived, func() { close(release) }
			},
		}
	})
}

// publishRunTB publishes one run event of kind, as the agent service does.
func publishRunTB(t testing.TB, nc *nats.Conn, subj, kind string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.PublishMsg(&nats.Msg{Subject: subj, Data: b, Header: nats.Header{wire.HeaderRunEvent: []string{kind}}}); err != nil {
		t.Fatal(err)
	}
}
