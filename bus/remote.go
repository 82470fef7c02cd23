package bus

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
)

// Connector hands out named bus connections: the embedded *Bus, or a *Remote NATS
// deployment.
type Connector interface {
	Connect(name string, extra ...nats.Option) (*nats.Conn, error)
}

var (
	_ Connector = (*Bus)(nil)
	_ Connector = (*Remote)(nil)
)

// Remote connects to an existing NATS server or cluster over TCP (`--nats-url`).
type Remote struct {
	url, token string
	log        *slog.Logger
}

// NewRemote prepares connections to url (comma-separated for a cluster) with an optional
// token; it does no I/O.
func NewRemote(url, token string, log *slog.Logger) *Remote {
	return &Remote{url: url, token: token, log: log.With("component", "bus", "nats_url", url)}
}

// Connect dials the remote bus as name. It retries an unreachable server in the
// background rather than failing (RetryOnFailedConnect), and reconnects forever, so a bus
// node restart heals without restarting the process.
func (r *Remote) Connect(name string, extra ...nats.Option) (*nats.Conn, error) {
	log := r.log.With("conn", name)
	opts := append([]nats.Option{
		nats.Name(name),
		nats.Token(r.token),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.ReconnectJitter(250*time.Millisecond, time.Second),
		nats.RetryOnFailedConnect(true),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("bus disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(*nats.Conn) { log.Info("bus reconnected") }),
		nats.ErrorHandler(logAsyncErrors(log)),
	}, extra...)
	nc, err := nats.Connect(r.url, opts...)
	if err != nil {
		return nil, fmt.Errorf("bus: connect %s to %s: %w", name, r.url, err)
	}
	return nc, nil
}

// WaitConnected returns once nc is connected: at once for the embedded bus, or when a remote
// server first answers (a connection made with RetryOnFailedConnect starts out
// reconnecting). Services wait here before subscribing, so a bus node that starts after them
// is not a startup error. It fails when nc closes or ctx ends first.
func WaitConnected(ctx context.Context, nc *nats.Conn) error {
	ch := nc.StatusChanged(nats.CONNECTED, nats.CLOSED)
	defer nc.RemoveStatusListener(ch)
	for {
		switch {
		case nc.IsConnected():
			return nil
		case nc.IsClosed():
			return fmt.Errorf("bus: connection %s closed before it connected", nc.Opts.Name)
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("bus: waiting for connection %s: %w", nc.Opts.Name, ctx.Err())
		}
	}
}
