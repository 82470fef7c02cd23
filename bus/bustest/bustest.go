// Package bustest gives tests an in-process bus, with JetStream storing in a t.TempDir(),
// that is shut down with t.Cleanup.
package bustest

import (
	"io"
	"log/slog"
	"testing"

	"github.com/clawdis/clawdis/bus"
	"github.com/nats-io/nats.go"
)

// Bus is a started in-process bus for one test.
type Bus struct {
	*bus.Bus
	t testing.TB
}

// New starts a bus with JetStream (its store in a fresh t.TempDir()) and registers its
// shutdown with t.Cleanup.
func New(t testing.TB) *Bus {
	t.Helper()
	return NewAt(t, t.TempDir())
}

// NewAt starts a bus with its JetStream store in dir, so that a test can stop it and start
// another on the same store (what a restart keeps).
func NewAt(t testing.TB, dir string) *Bus {
	t.Helper()
	b := bus.New(bus.Config{ServerName: "bustest", StoreDir: dir}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := b.Start(); err != nil {
		t.Fatalf("bustest: %v", err)
	}
	t.Cleanup(b.Shutdown)
	return &Bus{Bus: b, t: t}
}

// Conn opens a named connection that is closed with t.Cleanup.
func (b *Bus) Conn(name string) *nats.Conn {
	b.t.Helper()
	nc, err := b.Connect(name)
	if err != nil {
		b.t.Fatalf("bustest: %v", err)
	}
	b.t.Cleanup(nc.Close)
	return nc
}
