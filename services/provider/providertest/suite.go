package providertest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/clawdis/clawdis/bus/subject"
	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/services/provider"
)

// WaitLimit bounds every wait of the suite; it only decides when a test has failed.
const WaitLimit = 10 * time.Second

// Controller drives the far side of the network an adapter talks to (a fake server).
type Controller interface {
	// Recipient is a `to` the network delivers to.
	Recipient() string
	// InvalidRecipient is a `to` Send must reject with a *provider.RecipientError; ""
	// skips that check.
	InvalidRecipient() string
	// Inject makes the network deliver a direct text message to the adapter and returns
	// the chat id it must be reported in.
	Inject(t testing.TB, text string) (chatID string)
	// Sent waits for the next message the network received from the adapter and returns
	// its chat id and text.
	Sent(t testing.TB) (chatID, text string)
}

// Run checks that the networks made by newNetwork behave as the provider core expects.
// newNetwork is called once per subtest and must register its own cleanup.
func Run(t *testing.T, newNetwork func(t *testing.T) (provider.Network, Controller)) {
	t.Run("ID", func(t *testing.T) {
		n, _ := newNetwork(t)
		if !subject.ValidToken(n.ID()) {
			t.Fatalf("ID %q is not a valid subject token", n.ID())
		}
	})
	t.Run("RunStopsWithContext", func(t *testing.T) {
		n, _ := newNetwork(t)
		for round := 1; round <= 2; round++ { // the supervisor calls Run again after a stop
			r := start(t, n)
			r.waitConnected(t)
			r.stop(t)
		}
	})
	t.Run("Inbound", func(t *testing.T) {
		n, ctl := newNetwork(t)
		r := start(t, n)
		defer r.stop(t)
		r.waitConnected(t)
		chat := ctl.Inject(t, "hello from the far side")
		msg := r.waitInbound(t)
		switch {
		case msg.Text != "hello from the far side":
			t.Errorf("inbound text %q", msg.Text)
		case msg.ChatID != chat:
			t.Errorf("inbound chat %q, want %q", msg.ChatID, chat)
		case msg.MessageID == "" || msg.From == "":
			t.Errorf("inbound without message id or sender: %+v", msg)
		case msg.ChatType != "direct" && msg.ChatType != "group":
			t.Errorf("inbound chat type %q", msg.ChatType)
		case msg.Ts <= 0:
			t.Errorf("inbound without timestamp: %+v", msg)
		}
	})
	t.Run("Send", func(t *testing.T) {
		n, ctl := newNetwork(t)
		r := start(t, n)
		defer r.stop(t)
		r.waitConnected(t)
		rc, err := n.Send(r.ctx, provider.Outbound{To: ctl.Recipient(), Text: "hello conformance"})
		if err != nil {
			t.Fatalf("Send: %v", err)
		}
		if rc.MessageID == "" {
			t.Errorf("receipt without message id: %+v", rc)
		}
		if _, text := ctl.Sent(t); text != "hello conformance" {
			t.Errorf("network received %q", text)
		}
		if bad := ctl.InvalidRecipient(); bad != "" {
			_, err := n.Send(r.ctx, provider.Outbound{To: bad, Text: "x"})
			if rerr := (*provider.RecipientError)(nil); !errors.As(err, &rerr) {
				t.Errorf("Send to %q: err %v, want a *provider.RecipientError", bad, err)
			}
		}
	})
	t.Run("ConcurrentSends", func(t *testing.T) {
		n, ctl := newNetwork(t)
		r := start(t, n)
		defer r.stop(t)
		r.waitConnected(t)
		const count = 8
		want := make([]string, count)
		var wg sync.WaitGroup
		errs := make(chan error, count)
		for i := range count {
			want[i] = fmt.Sprintf("concurrent %d", i)
			wg.Go(func() {
				if _, err := n.Send(r.ctx, provider.Outbound{To: ctl.Recipient(), Text: want[i]}); err != nil {
					errs <- err
				}
			})
		}
		var got []string
		for range count {
			_, text := ctl.Sent(t)
			got = append(got, text)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("Send: %v", err)
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("network received %q, want %q", got, want)
		}
	})
	t.Run("Typing", func(t *testing.T) {
		n, ctl := newNetwork(t)
		r := start(t, n)
		defer r.stop(t)
		r.waitConnected(t)
		for _, on := range []bool{true, false} {
			if err := n.Typing(r.ctx, ctl.Recipient(), on); err != nil {
				t.Errorf("Typing(%v): %v", on, err)
			}
		}
	})
}

// recorder is a Sink that never blocks.
type recorder struct {
	states  chan wire.ProviderState
	inbound chan wire.InboundMessage
	mu      sync.Mutex
	dropped int
}

func (r *recorder) State(st wire.ProviderState) {
	select {
	case r.states <- st:
	default:
		r.mu.Lock()
		r.dropped++
		r.mu.Unlock()
	}
}

func (r *recorder) Inbound(_ context.Context, msg wire.InboundMessage) error {
	select {
	case r.inbound <- msg:
	default:
		r.mu.Lock()
		r.dropped++
		r.mu.Unlock()
	}
	return nil
}

// running is one Run of a network under test.
type running struct {
	*recorder
	ctx    context.Context
	cancel context.CancelFunc
	done   chan error
}

func start(t *testing.T, n provider.Network) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{
		recorder: &recorder{states: make(chan wire.ProviderState, 1024), inbound: make(chan wire.InboundMessage, 1024)},
		ctx:      ctx,
		cancel:   cancel,
		done:     make(chan error, 1),
	}
	go func() { r.done <- n.Run(ctx, r.recorder) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(WaitLimit):
		}
	})
	return r
}

// waitConnected waits for a state with Connected set; every state must be named.
func (r *running) waitConnected(t *testing.T) {
	t.Helper()
	timeout := time.After(WaitLimit)
	for {
		select {
		case st := <-r.states:
			if st.State == "" {
				t.Fatalf("state without a name: %+v", st)
			}
			if st.Connected {
				return
			}
		case err := <-r.done:
			t.Fatalf("Run returned %v before connecting", err)
		case <-timeout:
			t.Fatalf("not connected within %s", WaitLimit)
		}
	}
}

func (r *running) waitInbound(t *testing.T) wire.InboundMessage {
	t.Helper()
	select {
	case msg := <-r.inbound:
		return msg
	case err := <-r.done:
		t.Fatalf("Run returned %v before an inbound message", err)
	case <-time.After(WaitLimit):
		t.Fatalf("no inbound message within %s", WaitLimit)
	}
	return wire.InboundMessage{}
}

// stop cancels the run and checks that Run returns nil in time and never blocked the sink.
func (r *running) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("Run returned %v after its context ended, want nil", err)
		}
		r.done <- nil // for the cleanup
	case <-time.After(WaitLimit):
		t.Fatalf("Run did not return within %s of its context ending", WaitLimit)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.dropped > 0 {
		t.Errorf("%d reports exceeded the suite's buffer", r.dropped)
	}
}
