package health

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/clawdis/clawdis/bus/bustest"
	"github.com/clawdis/clawdis/bus/subject"
	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/schemas"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
)

// waitTimeout is the generous bound on anything a test waits for.
const waitTimeout = 10 * time.Second

// warnLog records the messages of Warn and Error records.
type warnLog struct {
	mu    sync.Mutex
	warns []string
}

func (h *warnLog) Enabled(context.Context, slog.Level) bool { return true }
func (h *warnLog) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *warnLog) WithGroup(string) slog.Handler            { return h }
func (h *warnLog) Handle(_ context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		h.mu.Lock()
		h.warns = append(h.warns, r.Message)
		h.mu.Unlock()
	}
	return nil
}

func (h *warnLog) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.warns)
}

// harness is a running health service on a test bus with a client connection subscribed to
// its health events.
type harness struct {
	bus    *bustest.Bus
	client *nats.Conn
	events chan *nats.Msg
}

// startHarness starts a bus, subscribes to health events and returns before the service runs.
func startHarness(t *testing.T) *harness {
	t.Helper()
	b := bustest.New(t)
	h := &harness{bus: b, client: b.Conn("test-client"), events: make(chan *nats.Msg, 256)}
	sub, err := h.client.ChanSubscribe(subject.HealthChanged, h.events)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := h.client.Flush(); err != nil {
		t.Fatal(err)
	}
	return h
}

// run starts the health service with cfg; it is stopped, and Run's nil result checked, at
// cleanup.
func (h *harness) run(t *testing.T, cfg Config) {
	t.Helper()
	s, err := New(cfg, h.bus.Conn("health"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run returned %v", err)
			}
		case <-time.After(waitTimeout):
			t.Errorf("Run did not return after cancel")
		}
	})
}

// waitEvent returns the first health event for which ok returns true.
func (h *harness) waitEvent(t *testing.T, what string, ok func(schemas.HealthSummary) bool) schemas.HealthSummary {
	t.Helper()
	deadline := time.After(waitTimeout)
	for {
		select {
		case msg := <-h.events:
			var sum schemas.HealthSummary
			if err := json.Unmarshal(msg.Data, &sum); err != nil {
				t.Fatalf("bad health event %s: %v", msg.Data, err)
			}
			if ok(sum) {
				return sum
			}
		case <-deadline:
			t.Fatalf("no health event with %s within %s", what, waitTimeout)
		}
	}
}

// request sends a request and returns the raw reply.
func (h *harness) request(t *testing.T, subj string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	data, err := wire.Request(ctx, h.client, subj, []byte("{}"), nil)
	if err != nil {
		t.Fatalf("request %s: %v", subj, err)
	}
	return data
}

func (h *harness) health(t *testing.T) (schemas.HealthSummary, []byte) {
	t.Helper()
	raw := h.request(t, subject.HealthGet)
	var sum schemas.HealthSummary
	if err := json.Unmarshal(raw, &sum); err != nil {
		t.Fatalf("decode health %s: %v", raw, err)
	}
	return sum, raw
}

// addService registers an endpoint-less micro service named name that answers pings.
func (h *harness) addService(t *testing.T, name string) micro.Service {
	t.Helper()
	svc, err := micro.AddService(h.bus.Conn("svc-"+name), micro.Config{Name: name, Version: "0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop() })
	return svc
}

// serviceOK returns the ok flag of the named service in sum and whether it is listed.
func serviceOK(sum schemas.HealthSummary, name string) (ok, listed bool) {
	for _, s := range sum.Services {
		if s.Name == name {
			return s.OK, true
		}
	}
	return false, false
}
