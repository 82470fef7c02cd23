package telegram

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/clawdis/clawdis/bus/bustest"
	"github.com/clawdis/clawdis/bus/subject"
	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/schemas"
	"github.com/clawdis/clawdis/services/provider"
	"github.com/clawdis/clawdis/services/provider/providertest"
	"github.com/clawdis/clawdis/services/telegram/telegramtest"
)

// waitLimit bounds every wait in these tests; it only decides when a test has failed.
const waitLimit = 10 * time.Second

// testToken looks like a real token so that any leak is easy to spot.
const testToken = "7000001:AAF-leakcheck_SECRET-token-0123456789"

// harness is a fake Bot API, a Bot on it, and a provider core serving the bot on a bus.
type harness struct {
	t       *testing.T
	srv     *telegramtest.Server
	bot     *Bot
	logs    *syncBuffer
	nc      *nats.Conn
	states  chan *nats.Msg
	inbound chan *nats.Msg
	sleeps  chan time.Duration // every poll backoff or rate-limit wait the bot started
	release chan struct{}      // ends one such wait
	stop    func()
}

// newHarness starts everything; mutate adjusts the bot's config. The bot's waits block
// until the test calls releaseSleep. At the end the captured logs must not hold the token.
func newHarness(t *testing.T, mutate func(*Config)) *harness {
	t.Helper()
	h := &harness{
		t:       t,
		srv:     telegramtest.New(testToken),
		logs:    &syncBuffer{},
		states:  make(chan *nats.Msg, 256),
		inbound: make(chan *nats.Msg, 256),
		sleeps:  make(chan time.Duration, 64),
		release: make(chan struct{}),
	}
	t.Cleanup(h.srv.Close)
	log := slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg := Config{Token: testToken, APIRoot: h.srv.URL, ProbeInterval: time.Hour, Log: log}
	if mutate != nil {
		mutate(&cfg)
	}
	bot, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	bot.sleep = func(ctx context.Context, d time.Duration) error {
		h.sleeps <- d
		select {
		case <-h.release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	h.bot = bot

	b := bustest.New(t)
	h.nc = b.Conn("test")
	for subj, ch := range map[string]chan *nats.Msg{
		must(subject.ProviderState(subject.ServiceTelegram)):   h.states,
		must(subject.ProviderInbound(subject.ServiceTelegram)): h.inbound,
	} {
		if _, err := h.nc.ChanSubscribe(subj, ch); err != nil {
			t.Fatalf("subscribe: %v", err)
		}
	}
	if err := h.nc.Flush(); err != nil {
		t.Fatalf("flush: %v", err)
	}
	core, err := provider.New(provider.Config{
		Network: bot,
		// The test's own subscription to the inbound subject makes a publish without the
		// stream wait for a reply rather than fail at once.
		InboundTimeout: 300 * time.Millisecond,
		Sleep: func(ctx context.Context, d time.Duration) error {
			<-ctx.Done() // no restarts within a test
			return ctx.Err()
		},
	}, b.Conn("telegram"), log)
	if err != nil {
		t.Fatalf("provider.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- core.Run(ctx) }()
	var once sync.Once
	h.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("core Run: %v", err)
				}
			case <-time.After(waitLimit):
				t.Errorf("core did not stop within %s", waitLimit)
			}
		})
	}
	t.Cleanup(func() {
		h.stop()
		if strings.Contains(h.logs.String(), testToken) {
			t.Errorf("the bot token appears in the logs:\n%s", h.logs.String())
		}
	})
	select {
	case <-core.Ready():
	case <-time.After(waitLimit):
		t.Fatal("core not ready")
	}
	return h
}

func must(s string, err error) string {
	if err != nil {
		panic(err)
	}
	return s
}

// waitState waits for a state event satisfying ok.
func (h *harness) waitState(what string, ok func(wire.ProviderState) bool) wire.ProviderState {
	h.t.Helper()
	return providertest.NextEvent(h.t, h.states, "state event "+what, func(st wire.ProviderState, raw []byte) bool {
		if strings.Contains(string(raw), testToken) {
			h.t.Errorf("state event holds the token: %s", raw)
		}
		return ok(st)
	})
}

func (h *harness) waitPolling() wire.ProviderState {
	h.t.Helper()
	return h.waitState("polling", func(st wire.ProviderState) bool { return st.State == schemas.TelegramPolling })
}

func (h *harness) waitInbound() wire.InboundMessage {
	h.t.Helper()
	return providertest.NextEvent(h.t, h.inbound, "inbound event", providertest.AnyEvent[wire.InboundMessage])
}

// waitSleep waits for the bot to start a wait and returns its duration; the wait lasts
// until releaseSleep.
func (h *harness) waitSleep() time.Duration {
	h.t.Helper()
	select {
	case d := <-h.sleeps:
		return d
	case <-time.After(waitLimit):
		h.t.Fatalf("the bot did not wait within %s", waitLimit)
	}
	return 0
}

func (h *harness) releaseSleep() {
	h.t.Helper()
	select {
	case h.release <- struct{}{}:
	case <-time.After(waitLimit):
		h.t.Fatal("nobody waits")
	}
}

// send requests a send on the bus; err is the protocol error.
func (h *harness) send(p schemas.SendParams) (schemas.SendResult, *wire.Error) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if p.IdempotencyKey == "" {
		p.IdempotencyKey = h.t.Name() + "-" + time.Now().Format(time.RFC3339Nano)
	}
	var res schemas.SendResult
	err := wire.RequestJSON(ctx, h.nc, must(subject.ProviderSend(subject.ServiceTelegram)), p, &res)
	var werr *wire.Error
	if err != nil && !errors.As(err, &werr) {
		h.t.Fatalf("send: %v", err)
	}
	if werr != nil && strings.Contains(werr.Message, testToken) {
		h.t.Errorf("send error holds the token: %s", werr.Message)
	}
	return res, werr
}

// nextSent waits for the next message the fake API accepted.
func (h *harness) nextSent() telegramtest.Sent {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	m, err := h.srv.WaitSent(ctx)
	if err != nil {
		h.t.Fatal(err)
	}
	return m
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
