package health

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"sync/atomic"
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

// run starts the health service with cfg on the real clock; see runOn.
func (h *harness) run(t *testing.T, cfg Config) *Service {
	t.Helper()
	return h.runOn(t, cfg, nil)
}

// runOn starts the health service with cfg on clk (nil: the real clock) and its own bus
// connection named "health"; it is stopped, and Run's nil result checked, at cleanup.
func (h *harness) runOn(t *testing.T, cfg Config, clk clock) *Service {
	t.Helper()
	s, err := New(cfg, h.bus.Conn(subject.ServiceHealth), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if clk != nil {
		s.clock = clk
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
	return s
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

// fakeService is a micro service run by the test on its own connection, named like the
// service so that the bus's advisories name it.
type fakeService struct {
	nc  *nats.Conn
	svc micro.Service
}

// addService registers a micro service named name with metadata meta and endpoints,
// answering pings; it is stopped at cleanup.
func (h *harness) addService(t *testing.T, name string, meta map[string]string, endpoints ...wire.Endpoint) *fakeService {
	t.Helper()
	nc := h.bus.Conn(name)
	svc, err := wire.AddService(nc, micro.Config{Name: name, Version: "0.0.1", Metadata: meta}, endpoints...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop() })
	return &fakeService{nc: nc, svc: svc}
}

// answer is an endpoint that answers subj with reply and counts its requests.
func answer(name, subj string, reply any, count *atomic.Int32) wire.Endpoint {
	return wire.Endpoint{Name: name, Subject: subj, Handler: wire.Handler(name,
		func(context.Context, []byte, nats.Header) (any, error) {
			if count != nil {
				count.Add(1)
			}
			return reply, nil
		})}
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

// manualClock is a clock that moves only when the test advances it.
type manualClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*manualTimer
	armed  chan struct{} // poked whenever a timer is armed
}

func newManualClock() *manualClock {
	return &manualClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), armed: make(chan struct{}, 1)}
}

// manualTimer is a timer of a manualClock.
type manualTimer struct {
	clk   *manualClock
	c     chan time.Time
	at    time.Time
	armed bool
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) NewTimer(d time.Duration) timer {
	t := &manualTimer{clk: c, c: make(chan time.Time, 1)}
	c.mu.Lock()
	c.timers = append(c.timers, t)
	c.mu.Unlock()
	t.Reset(d)
	return t
}

func (t *manualTimer) C() <-chan time.Time { return t.c }

// Reset arms the timer d from now, dropping a tick not yet received (as time.Timer does).
func (t *manualTimer) Reset(d time.Duration) {
	c := t.clk
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-t.c:
	default:
	}
	t.at, t.armed = c.now.Add(d), true
	if d <= 0 {
		t.armed = false
		t.c <- c.now
		return
	}
	select {
	case c.armed <- struct{}{}:
	default:
	}
}

func (t *manualTimer) Stop() {
	t.clk.mu.Lock()
	defer t.clk.mu.Unlock()
	t.armed = false
	select {
	case <-t.c:
	default:
	}
}

// Advance moves the clock by d and fires the timers that are due.
func (c *manualClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	for _, t := range c.timers {
		if t.armed && !t.at.After(c.now) {
			t.armed = false
			t.c <- c.now
		}
	}
}

// waitArmed waits until exactly n timers are armed: every loop owning one of them is then
// idle until the clock moves.
func (c *manualClock) waitArmed(t *testing.T, n int) {
	t.Helper()
	deadline := time.After(waitTimeout)
	for {
		c.mu.Lock()
		armed := 0
		for _, tm := range c.timers {
			if tm.armed {
				armed++
			}
		}
		c.mu.Unlock()
		if armed == n {
			return
		}
		select {
		case <-c.armed:
		case <-deadline:
			t.Fatalf("%d timers armed, want %d", armed, n)
		}
	}
}
