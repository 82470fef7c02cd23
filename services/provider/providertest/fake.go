// Package providertest holds the conformance suite every provider.Network must pass (Run)
// and Fake, a scriptable Network for tests of the provider core and of services that talk
// to a provider over the bus.
package providertest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/schemas"
	"github.com/clawdis/clawdis/services/provider"
)

// Typing is one recorded Typing call.
type Typing struct {
	ChatID string
	On     bool
}

type cmdKind int

const (
	cmdConnect cmdKind = iota
	cmdFail
	cmdTerminal
	cmdInbound
)

type fakeCmd struct {
	kind   cmdKind
	err    error
	state  string
	msg    wire.InboundMessage
	stored chan error // cmdInbound: gets what the sink answered, when not nil
}

// Fake is a scriptable provider.Network. A Run reports "connecting" (Linked as set) and
// then obeys the commands given with Connect, Fail, Terminate and Inject; commands given
// while no Run is active wait for the next one. Send succeeds only while linked and
// connected, records the message and answers with message ids "fake-1", "fake-2", ….
// A recipient containing whitespace is rejected with a *provider.RecipientError.
type Fake struct {
	id string

	mu          sync.Mutex
	linked      bool
	autoConnect bool
	connected   bool
	runCount    int
	sendCount   int
	sendErr     error
	hold        chan struct{}

	cmds    chan fakeCmd
	runs    chan int
	sends   chan provider.Outbound
	started chan provider.Outbound
	typing  chan Typing
}

var _ provider.Network = (*Fake)(nil)

// NewFake returns a linked Fake with the given id that waits for Connect in every Run.
func NewFake(id string) *Fake {
	return &Fake{
		id:      id,
		linked:  true,
		cmds:    make(chan fakeCmd, 64),
		runs:    make(chan int, 1024),
		sends:   make(chan provider.Outbound, 1024),
		started: make(chan provider.Outbound, 1024),
		typing:  make(chan Typing, 1024),
	}
}

// ID implements provider.Network.
func (f *Fake) ID() string { return f.id }

// SetLinked sets whether the fake account is linked; Send answers ErrNotLinked when not.
func (f *Fake) SetLinked(linked bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.linked = linked
}

// SetAutoConnect makes every later Run report connected right after it starts.
func (f *Fake) SetAutoConnect(on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.autoConnect = on
}

// Connect makes the active (or next) Run report connected.
func (f *Fake) Connect() { f.cmds <- fakeCmd{kind: cmdConnect} }

// Fail makes the active (or next) Run return err, a transient failure.
func (f *Fake) Fail(err error) { f.cmds <- fakeCmd{kind: cmdFail, err: err} }

// Terminate makes the active (or next) Run return a *provider.TerminalError.
func (f *Fake) Terminate(state string, err error) {
	f.cmds <- fakeCmd{kind: cmdTerminal, state: state, err: err}
}

// Inject makes the active (or next) Run report msg as received.
func (f *Fake) Inject(msg wire.InboundMessage) { f.cmds <- fakeCmd{kind: cmdInbound, msg: msg} }

// Deliver makes the active (or next) Run report msg as received and returns what the sink
// answered: nil once the message is stored, as a network would then acknowledge it.
func (f *Fake) Deliver(msg wire.InboundMessage) error {
	stored := make(chan error, 1)
	f.cmds <- fakeCmd{kind: cmdInbound, msg: msg, stored: stored}
	return <-stored
}

// Runs delivers the number of every Run started (1, 2, …), after its first state report.
func (f *Fake) Runs() <-chan int { return f.runs }

// Sends delivers every message Send delivered, in order.
func (f *Fake) Sends() <-chan provider.Outbound { return f.sends }

// SendStarted delivers every message as Send starts delivering it (before HoldSends
// releases it).
func (f *Fake) SendStarted() <-chan provider.Outbound { return f.started }

// Typings delivers every successful Typing call.
func (f *Fake) Typings() <-chan Typing { return f.typing }

// SendCount is the number of messages delivered so far.
func (f *Fake) SendCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sendCount
}

// RunCount is the number of Runs started so far.
func (f *Fake) RunCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.runCount
}

// FailSends makes every later Send return err (nil restores delivery).
func (f *Fake) FailSends(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sendErr = err
}

// HoldSends makes later sends wait (after SendStarted) until release is called.
func (f *Fake) HoldSends() (release func()) {
	ch := make(chan struct{})
	f.mu.Lock()
	f.hold = ch
	f.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			f.mu.Lock()
			if f.hold == ch {
				f.hold = nil
			}
			f.mu.Unlock()
			close(ch)
		})
	}
}

// Run implements provider.Network.
func (f *Fake) Run(ctx context.Context, sink provider.Sink) error {
	f.mu.Lock()
	f.runCount++
	n, linked, auto := f.runCount, f.linked, f.autoConnect
	f.mu.Unlock()
	defer f.setConnected(false)

	sink.State(wire.ProviderState{State: schemas.WebConnecting, Linked: linked})
	select {
	case f.runs <- n:
	default: // nobody watches the runs
	}
	if auto {
		f.connect(sink)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case cmd := <-f.cmds:
			switch cmd.kind {
			case cmdConnect:
				f.connect(sink)
			case cmdFail:
				return cmd.err
			case cmdTerminal:
				return &provider.TerminalError{State: cmd.state, Err: cmd.err}
			case cmdInbound:
				err := sink.Inbound(ctx, cmd.msg)
				if cmd.stored != nil {
					cmd.stored <- err
				}
			}
		}
	}
}

func (f *Fake) connect(sink provider.Sink) {
	f.setConnected(true)
	f.mu.Lock()
	linked := f.linked
	f.mu.Unlock()
	sink.State(wire.ProviderState{State: schemas.WebConnected, Linked: linked, Connected: true})
}

func (f *Fake) setConnected(on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.connected = on
}

// check returns the error a Send or Typing gets in the current state.
func (f *Fake) check(to string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case !f.linked:
		return provider.ErrNotLinked
	case !f.connected:
		return provider.ErrNotConnected
	case to == "" || strings.ContainsAny(to, " \t\r\n"):
		return &provider.RecipientError{To: to, Reason: "not an address of the fake network"}
	}
	return f.sendErr
}

// Send implements provider.Network.
func (f *Fake) Send(ctx context.Context, msg provider.Outbound) (provider.Receipt, error) {
	if err := f.check(msg.To); err != nil {
		return provider.Receipt{}, err
	}
	f.started <- msg
	f.mu.Lock()
	hold := f.hold
	f.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
			return provider.Receipt{}, fmt.Errorf("fake send: %w", ctx.Err())
		}
	}
	f.mu.Lock()
	f.sendCount++
	id := fmt.Sprintf("fake-%d", f.sendCount)
	f.mu.Unlock()
	f.sends <- msg
	return provider.Receipt{MessageID: id, ChatID: msg.To}, nil
}

// Typing implements provider.Network.
func (f *Fake) Typing(_ context.Context, chatID string, on bool) error {
	if err := f.check(chatID); err != nil {
		return err
	}
	f.typing <- Typing{ChatID: chatID, On: on}
	return nil
}

// Controller returns the conformance-suite controller of f.
func (f *Fake) Controller() Controller { return &fakeController{f: f} }

type fakeController struct {
	f *Fake
	n int
}

func (c *fakeController) Recipient() string        { return "+15550001" }
func (c *fakeController) InvalidRecipient() string { return "not a recipient" }

func (c *fakeController) Inject(_ testing.TB, text string) string {
	c.n++
	c.f.Inject(wire.InboundMessage{
		MessageID: fmt.Sprintf("in-%d", c.n),
		ChatID:    "+15550001",
		ChatType:  "direct",
		From:      "+15550001",
		Text:      text,
		Ts:        time.Now().UnixMilli(),
	})
	return "+15550001"
}

func (c *fakeController) Sent(t testing.TB) (string, string) {
	t.Helper()
	select {
	case m := <-c.f.sends:
		return m.To, m.Text
	case <-time.After(WaitLimit):
		t.Fatalf("fake: no message delivered within %s", WaitLimit)
		return "", ""
	}
}
