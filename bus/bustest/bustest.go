// Package bustest gives tests an in-process bus that is shut down with t.Cleanup.
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

// New starts a bus and registers its shutdown with t.Cleanup.
func New(t testing.TB) *Bus {
	t.Helper()
	b := bus.New(bus.Config{ServerName: "bustest"}, slog.New(slog.NewTextHandler(io.Discard, nil)))
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
