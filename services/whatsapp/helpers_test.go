package whatsapp

import (
	"context"
	"sync"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/store"

	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/services/whatsapp/whatsapptest"
)

// waitTimeout bounds every wait on an event in tests; reaching it fails the test.
const waitTimeout = 10 * time.Second

// fakeSink records what a Network reports and signals each report. Inbound answers with
// what store returns (nil when store is nil), after recording the message.
type fakeSink struct {
	mu      sync.Mutex
	states  []wire.ProviderState
	inbound []wire.InboundMessage
	poke    chan struct{}
	store   func(wire.InboundMessage) error
}

func newFakeSink() *fakeSink { return &fakeSink{poke: make(chan struct{}, 1000)} }

func (s *fakeSink) State(st wire.ProviderState) {
	s.mu.Lock()
	s.states = append(s.states, st)
	s.mu.Unlock()
	s.poke <- struct{}{}
}

func (s *fakeSink) Inbound(_ context.Context, m wire.InboundMessage) error {
	s.mu.Lock()
	s.inbound = append(s.inbound, m)
	store := s.store
	s.mu.Unlock()
	s.poke <- struct{}{}
	if store == nil {
		return nil
	}
	return store(m)
}

func (s *fakeSink) snapshot() ([]wire.ProviderState, []wire.InboundMessage) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]wire.ProviderState(nil), s.states...), append([]wire.InboundMessage(nil), s.inbound...)
}

// waitFor waits until cond holds for the recorded reports.
func (s *fakeSink) waitFor(t *testing.T, what string, cond func([]wire.ProviderState, []wire.InboundMessage) bool) {
	t.Helper()
	deadline := time.After(waitTimeout)
	for {
		if cond(s.snapshot()) {
			return
		}
		select {
		case <-s.poke:
		case <-deadline:
			st, in := s.snapshot()
			t.Fatalf("timed out waiting for %s; states %+v, inbound %+v", what, st, in)
		}
	}
}

func stateNames(states []wire.ProviderState) []string {
	names := make([]string, len(states))
	for i, st := range states {
		names[i] = st.State
	}
	return names
}

// linkTestDevice stores a device that looks linked (an ID and a signed identity with a
// pairing timestamp) in dir's store, as a finished `clawdis login` leaves it.
func linkTestDevice(t *testing.T, dir, number string, pairedAt time.Time) {
	t.Helper()
	ctx := context.Background()
	c, err := openStore(ctx, dir, nil)
	if err != nil {
		t.Fatalf("openStore: %v", err)
	}
	defer func() { _ = c.Close() }()
	dev := c.NewDevice()
	markLinked(t, dev, number, pairedAt)
}

// markLinked gives dev what pairing gives a device (an ID, a LID and a signed identity with
// a pairing timestamp) and saves it, as whatsmeow does when a QR code is scanned.
func markLinked(t *testing.T, dev *store.Device, number string, pairedAt time.Time) {
	t.Helper()
	if err := whatsapptest.MarkLinked(dev, number, pairedAt); err != nil {
		t.Fatal(err)
	}
}
