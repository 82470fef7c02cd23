package provider

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/clawdis/clawdis/bus/subject"
	"github.com/clawdis/clawdis/bus/wire"
)

// ErrAlreadyRunning is returned by Run when another process already runs this provider on
// the bus: two copies would fight over one WhatsApp link or Telegram token.
var ErrAlreadyRunning = errors.New("provider already running elsewhere on the bus")

// DefaultOwnerProbe is how long a starting core listens for other copies by default.
const DefaultOwnerProbe = 250 * time.Millisecond

// claim is this core's side of the ownership protocol on subject.ProviderOwner.
//
// A starting core subscribes to the subject, then publishes its claim (start time and a
// random nonce) there with a reply inbox and listens for OwnerProbe. Every subscriber
// answers every claim with its own, and also reads the claims it receives. A core loses
// when it sees an owner, or a claimant with precedence (earlier start, then smaller
// nonce); otherwise it becomes the owner when the window closes, and answers as one from
// then on. Any two copies whose starts overlap see each other's claim in at least one
// direction (whichever subscribed first receives the other's claim, and answers it), and
// they rank each other the same way, so at most one wins — unless an answer takes longer
// than the window, which on one bus it does not.
type claim struct {
	mu   sync.Mutex
	me   wire.ProviderOwner
	beat *wire.ProviderOwner // the first claim or owner seen that has precedence over me
}

// precedes reports whether a takes precedence over b.
func precedes(a, b wire.ProviderOwner) bool {
	if a.Owner != b.Owner {
		return a.Owner
	}
	if a.StartedAt != b.StartedAt {
		return a.StartedAt < b.StartedAt
	}
	return a.Nonce < b.Nonce
}

// consider records other when it beats this core's claim. Nothing beats an owner.
func (cl *claim) consider(other wire.ProviderOwner) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if other.Nonce == cl.me.Nonce || cl.me.Owner || cl.beat != nil {
		return
	}
	if precedes(other, cl.me) {
		cl.beat = &other
	}
}

func (cl *claim) encode() []byte {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	data, _ := json.Marshal(cl.me)
	return data
}

// decide ends the claim: the owner that beat it, or nil when this core now owns the provider.
func (cl *claim) decide() *wire.ProviderOwner {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if cl.beat == nil {
		cl.me.Owner = true
	}
	return cl.beat
}

// claimOwnership runs the ownership protocol (see claim) and, when this core wins, returns
// the subscription that keeps answering claims as the owner until it is unsubscribed.
func (c *Core) claimOwnership(ctx context.Context) (*nats.Subscription, error) {
	subj, err := subject.ProviderOwner(c.id)
	if err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	nonce := make([]byte, 8)
	_, _ = rand.Read(nonce)
	cl := &claim{me: wire.ProviderOwner{Host: host, PID: os.Getpid(), StartedAt: c.cfg.Now().UnixMilli(), Nonce: hex.EncodeToString(nonce)}}
	consider := func(data []byte) {
		var other wire.ProviderOwner
		if len(data) > 0 && json.Unmarshal(data, &other) == nil && other.Nonce != "" {
			cl.consider(other)
		}
	}
	owner, err := c.nc.Subscribe(subj, func(m *nats.Msg) {
		consider(m.Data)
		if m.Reply != "" {
			_ = m.Respond(cl.encode())
		}
	})
	if err != nil {
		return nil, fmt.Errorf("provider %s: ownership: %w", c.id, err)
	}
	if c.cfg.PrivateBus {
		cl.decide() // nobody else can be there; answer as the owner at once
		return owner, nil
	}
	answers := make(chan *nats.Msg, 64)
	inbox, err := c.nc.ChanSubscribe(c.nc.NewRespInbox(), answers)
	if err == nil {
		defer func() { _ = inbox.Unsubscribe() }()
		err = c.nc.Flush() // both subscriptions exist before anyone can see the claim
	}
	if err == nil {
		err = c.nc.PublishRequest(subj, inbox.Subject, cl.encode())
	}
	if err != nil {
		_ = owner.Unsubscribe()
		return nil, fmt.Errorf("provider %s: ownership claim: %w", c.id, err)
	}
	window := time.NewTimer(c.cfg.OwnerProbe)
	defer window.Stop()
	for listening := true; listening; {
		select {
		case m := <-answers:
			consider(m.Data)
		case <-window.C:
			listening = false
		case <-ctx.Done():
			_ = owner.Unsubscribe()
			return nil, ctx.Err()
		}
	}
	if beat := cl.decide(); beat != nil {
		_ = owner.Unsubscribe()
		state := "starting"
		if beat.Owner {
			state = "since"
		}
		return nil, fmt.Errorf("provider %s: %w (pid %d on %s, %s %s)", c.id, ErrAlreadyRunning, beat.PID, beat.Host,
			state, time.UnixMilli(beat.StartedAt).Format(time.RFC3339))
	}
	return owner, nil
}
