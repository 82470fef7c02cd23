package provider_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/schemas"
	"github.com/clawdis/clawdis/services/provider"
	"github.com/clawdis/clawdis/services/provider/providertest"
)

func TestNewRejectsBadConfig(t *testing.T) {
	nc := newHarness(t).nc
	for _, tt := range []struct {
		name string
		cfg  provider.Config
	}{
		{"no network", provider.Config{}},
		{"bad id", provider.Config{Network: providertest.NewFake("a.b")}},
		{"factor below 1", provider.Config{Network: providertest.NewFake("x"), Reconnect: provider.Policy{Factor: 0.5}}},
		{"jitter 1", provider.Config{Network: providertest.NewFake("x"), Reconnect: provider.Policy{Jitter: 1}}},
		{"max below initial", provider.Config{Network: providertest.NewFake("x"), Reconnect: provider.Policy{InitialMs: 5000, MaxMs: 100}}},
		{"negative attempts", provider.Config{Network: providertest.NewFake("x"), Reconnect: provider.Policy{MaxAttempts: -1}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := provider.New(tt.cfg, nc, nil); err == nil {
				t.Error("New accepted the config")
			}
		})
	}
	if _, err := provider.New(provider.Config{Network: providertest.NewFake("x")}, nil, nil); err == nil {
		t.Error("New accepted a nil connection")
	}
}

func TestSupervisionRestartsWithBackoffAndStopsOnTerminal(t *testing.T) {
	h := newHarness(t)
	f := providertest.NewFake(netID)
	h.start(h.config(f))

	waitRun(t, f, 1)
	f.Fail(errors.New("stream error 1"))
	if d := h.waitSleep(); d != time.Second {
		t.Errorf("first backoff %s, want 1s", d)
	}
	st := h.waitState("reconnecting", func(st wire.ProviderState) bool { return st.State == schemas.WebReconnecting })
	if st.LastError != "stream error 1" || st.Connected {
		t.Errorf("reconnecting state %+v", st)
	}

	waitRun(t, f, 2)
	f.Fail(errors.New("stream error 2"))
	if d := h.waitSleep(); d != 2*time.Second {
		t.Errorf("second backoff %s, want 2s", d)
	}

	waitRun(t, f, 3)
	f.Connect() // a run that connected resets the failure count
	h.waitConnected()
	f.Fail(errors.New("stream error 3"))
	if d := h.waitSleep(); d != time.Second {
		t.Errorf("backoff after a connected run %s, want 1s", d)
	}

	waitRun(t, f, 4)
	f.Fail(errors.New("stream error 4"))
	if d := h.waitSleep(); d != 2*time.Second {
		t.Errorf("backoff %s, want 2s", d)
	}
	waitRun(t, f, 5)
	h.clock.Advance(61 * time.Second) // a run that lasted a minute resets it too
	f.Fail(errors.New("stream error 5"))
	if d := h.waitSleep(); d != time.Second {
		t.Errorf("backoff after a long run %s, want 1s", d)
	}

	waitRun(t, f, 6)
	f.Terminate(schemas.WebLoggedOut, errors.New("logged out from the phone"))
	st = h.waitState("logged_out", func(st wire.ProviderState) bool { return st.State == schemas.WebLoggedOut })
	if st.LastError != "logged out from the phone" {
		t.Errorf("terminal state %+v", st)
	}
	if got := h.status(); got.State != schemas.WebLoggedOut {
		t.Errorf("status after terminal %+v", got)
	}
	if n := f.RunCount(); n != 6 {
		t.Errorf("%d runs after the terminal state, want 6", n)
	}
	select {
	case d := <-h.sleeps:
		t.Errorf("backoff %s after the terminal state", d)
	default:
	}
}

func TestSupervisionGivesUpAfterMaxAttempts(t *testing.T) {
	h := newHarness(t)
	f := providertest.NewFake(netID)
	cfg := h.config(f)
	cfg.Reconnect.MaxAttempts = 2
	h.start(cfg)

	waitRun(t, f, 1)
	f.Fail(errors.New("boom 1"))
	if d := h.waitSleep(); d != time.Second {
		t.Errorf("backoff %s, want 1s", d)
	}
	waitRun(t, f, 2)
	f.Fail(errors.New("boom 2"))
	st := h.waitState("given up", func(st wire.ProviderState) bool {
		return strings.HasPrefix(st.LastError, "gave up")
	})
	if st.State != schemas.WebReconnecting || !strings.Contains(st.LastError, "boom 2") {
		t.Errorf("state after giving up %+v", st)
	}
	if n := f.RunCount(); n != 2 {
		t.Errorf("%d runs, want 2", n)
	}
}

func TestSupervisionRecoversPanics(t *testing.T) {
	h := newHarness(t)
	n := &panicky{Fake: providertest.NewFake(netID)}
	h.start(h.config(n))
	st := h.waitState("reconnecting", func(st wire.ProviderState) bool { return st.State == schemas.WebReconnecting })
	if !strings.Contains(st.LastError, "panicked") {
		t.Errorf("state after panic %+v", st)
	}
	h.waitSleep()
}

// panicky panics in its first Run.
type panicky struct {
	*providertest.Fake
	once bool
}

func (p *panicky) Run(ctx context.Context, s provider.Sink) error {
	if !p.once {
		p.once = true
		panic("adapter bug")
	}
	return p.Fake.Run(ctx, s)
}

func TestStateEventsAndStatus(t *testing.T) {
	h := newHarness(t)
	f := providertest.NewFake(netID)
	h.start(h.config(f))
	st := h.waitState("connecting", func(st wire.ProviderState) bool { return st.State == schemas.WebConnecting })
	if !st.Linked || st.Connected {
		t.Errorf("connecting state %+v", st)
	}
	f.Connect()
	st = h.waitState("connected", func(st wire.ProviderState) bool { return st.State == schemas.WebConnected })
	if !st.Connected {
		t.Errorf("connected state %+v", st)
	}
	got := h.status()
	if got.State != schemas.WebConnected || got.Provider != netID || got.Ts != st.Ts {
		t.Errorf("status %+v, want the last event %+v", got, st)
	}
}

func TestRunStopsNetwork(t *testing.T) {
	h := newHarness(t)
	f := providertest.NewFake(netID)
	f.SetAutoConnect(true)
	stop := h.start(h.config(f))
	h.waitConnected()
	stop()
	if _, werr := h.send(schemas.SendParams{To: "+1", Message: "x", IdempotencyKey: "k"}); werr == nil ||
		werr.Code != wire.CodeUnavailable || !werr.Retryable {
		t.Errorf("send after stop: %+v, want UNAVAILABLE retryable", werr)
	}
}
