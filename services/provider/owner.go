package provider

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/clawdis/clawdis/bus/subject"
	"github.com/clawdis/clawdis/bus/wire"
)

// ErrAlreadyRunning is returned by Run when another process already runs this provider on
// the bus: two copies would fight over one WhatsApp link or Telegram token.
var ErrAlreadyRunning = errors.New("provider already running elsewhere on the bus")

// ownerProbeTimeout bounds the question "does anyone run this provider?".
const ownerProbeTimeout = 500 * time.Millisecond

// claimOwnership asks the bus whether another copy runs this provider and, when none
// answers, answers that question itself from now on. Two copies starting within the same
// instant can both win; the check is for the usual mistake (a split-out copy started
// without --without on the gateway), not a consensus protocol.
func (c *Core) claimOwnership(ctx context.Context) (*nats.Subscription, error) {
	subj, err := subject.ProviderOwner(c.id)
	if err != nil {
		return nil, err
	}
	qctx, cancel := context.WithTimeout(ctx, ownerProbeTimeout)
	defer cancel()
	msg, err := c.nc.RequestWithContext(qctx, subj, nil)
	if err == nil {
		var o wire.ProviderOwner
		_ = json.Unmarshal(msg.Data, &o)
		return nil, fmt.Errorf("provider %s: %w (pid %d on %s, since %s)", c.id, ErrAlreadyRunning, o.PID, o.Host,
			time.UnixMilli(o.StartedAt).Format(time.RFC3339))
	}
	if !errors.Is(err, nats.ErrNoResponders) && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, nats.ErrTimeout) {
		return nil, fmt.Errorf("provider %s: ownership check: %w", c.id, err)
	}
	host, _ := os.Hostname()
	me, _ := json.Marshal(wire.ProviderOwner{Host: host, PID: os.Getpid(), StartedAt: c.cfg.Now().UnixMilli()})
	return c.nc.Subscribe(subj, func(m *nats.Msg) { _ = m.Respond(me) })
}
