package provider_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/clawdis/clawdis/bus/bustest"
	"github.com/clawdis/clawdis/bus/subject"
	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/schemas"
	"github.com/clawdis/clawdis/services/internal/jsstore"
	"github.com/clawdis/clawdis/services/provider"
	"github.com/clawdis/clawdis/services/provider/providertest"
)

// waitLimit bounds every wait in these tests; it only decides when a test has failed.
const waitLimit = 5 * time.Second

const netID = "fake"

// fakeClock is a clock the test moves by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// harness is a bus with a test connection subscribed to the fake provider's events.
type harness struct {
	t      *testing.T
	bus    *bustest.Bus
	nc     *nats.Conn
	states chan *nats.Msg
	clock  *fakeClock
	sleeps chan time.Duration // every backoff the supervisor waited
	logs   *syncBuffer
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	b := bustest.New(t)
	h := &harness{
		t:      t,
		bus:    b,
		nc:     b.Conn("test"),
		states: make(chan *nats.Msg, 256),
		clock:  &fakeClock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)},
		sleeps: make(chan time.Duration, 256),
		logs:   &syncBuffer{},
	}
	sub, err := h.nc.ChanSubscribe(must(subject.ProviderState(netID)), h.states)
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := h.nc.Flush(); err != nil {
		t.Fatalf("flush: %v", err)
	}
	return h
}

func must(s string, err error) string {
	if err != nil {
		panic(err)
	}
	return s
}

// config is a core config on h's clock whose backoff waits return at once (recorded in
// h.sleeps) and whose jitter is neutral.
func (h *harness) config(n provider.Network) provider.Config {
	return provider.Config{
		Network:    n,
		Reconnect:  provider.Policy{InitialMs: 1000, MaxMs: 5000, Factor: 2},
		OwnerProbe: 20 * time.Millisecond,
		Now:        h.clock.Now,
		Rand:       func() float64 { return 0.5 },
		Sleep: func(ctx context.Context, d time.Duration) error {
			h.sleeps <- d
			return ctx.Err()
		},
	}
}

// start runs a core with cfg until the test ends (or the returned stop is called) and
// waits until it serves.
func (h *harness) start(cfg provider.Config) (stop func()) {
	h.t.Helper()
	log := slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c, err := provider.New(cfg, h.bus.Conn("provider"), log)
	if err != nil {
		h.t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					h.t.Errorf("Run: %v", err)
				}
			case <-time.After(waitLimit):
				h.t.Errorf("Run did not return within %s", waitLimit)
			}
		})
	}
	h.t.Cleanup(stop)
	select {
	case <-c.Ready():
	case err := <-done:
		h.t.Fatalf("Run returned early: %v", err)
	case <-time.After(waitLimit):
		h.t.Fatalf("core not ready within %s", waitLimit)
	}
	return stop
}

// waitState waits for a state event satisfying ok.
func (h *harness) waitState(what string, ok func(wire.ProviderState) bool) wire.ProviderState {
	h.t.Helper()
	return providertest.NextEvent(h.t, h.states, "state event "+what, func(st wire.ProviderState, raw []byte) bool {
		if st.Provider != netID || st.Ts <= 0 {
			h.t.Fatalf("state event without provider or ts: %s", raw)
		}
		return ok(st)
	})
}

func (h *harness) waitConnected() {
	h.t.Helper()
	h.waitState("connected", func(st wire.ProviderState) bool { return st.Connected })
}

// stored returns the inbound messages in the inbound stream, oldest first.
func (h *harness) stored() []wire.InboundMessage {
	h.t.Helper()
	ctx := h.t.Context()
	js, err := jetstream.New(h.nc)
	if err != nil {
		h.t.Fatal(err)
	}
	s, err := js.Stream(ctx, jsstore.InboundStream)
	if err != nil {
		h.t.Fatalf("inbound stream: %v", err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		h.t.Fatal(err)
	}
	var out []wire.InboundMessage
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			h.t.Fatalf("stream message %d: %v", seq, err)
		}
		var msg wire.InboundMessage
		if err := json.Unmarshal(m.Data, &msg); err != nil {
			h.t.Fatalf("stream message %d: %v", seq, err)
		}
		out = append(out, msg)
	}
	return out
}

// waitSleep waits for the supervisor's next backoff.
func (h *harness) waitSleep() time.Duration {
	h.t.Helper()
	select {
	case d := <-h.sleeps:
		return d
	case <-time.After(waitLimit):
		h.t.Fatalf("no backoff within %s", waitLimit)
	}
	return 0
}

// send requests a send on the bus and returns the result or the protocol error.
func (h *harness) send(p schemas.SendParams) (schemas.SendResult, *wire.Error) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	var res schemas.SendResult
	err := wire.RequestJSON(ctx, h.nc, must(subject.ProviderSend(netID)), p, &res)
	var werr *wire.Error
	if err != nil && !errors.As(err, &werr) {
		h.t.Fatalf("send: %v", err)
	}
	return res, werr
}

// waitRun waits for the fake to start Run number n.
func waitRun(t *testing.T, f *providertest.Fake, n int) {
	t.Helper()
	timeout := time.After(waitLimit)
	for {
		select {
		case got := <-f.Runs():
			if got == n {
				return
			}
			if got > n {
				t.Fatalf("run %d started, expected run %d", got, n)
			}
		case <-timeout:
			t.Fatalf("run %d not started within %s", n, waitLimit)
		}
	}
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// status requests the provider's current state.
func (h *harness) status() wire.ProviderState {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	var st wire.ProviderState
	if err := wire.RequestJSON(ctx, h.nc, must(subject.ProviderStatus(netID)), struct{}{}, &st); err != nil {
		h.t.Fatalf("status: %v", err)
	}
	return st
}
