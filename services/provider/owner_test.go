package provider_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/clawdis/clawdis/services/provider"
	"github.com/clawdis/clawdis/services/provider/providertest"
)

// TestSecondCopyRefused: while one core runs a provider on the bus, a second core for the
// same provider id refuses to start, naming the first; after the first stops, it may.
func TestSecondCopyRefused(t *testing.T) {
	h := newHarness(t)
	stop := h.start(h.config(providertest.NewFake(netID)))

	second, err := provider.New(h.config(providertest.NewFake(netID)), h.bus.Conn("second"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	err = second.Run(context.Background())
	if !errors.Is(err, provider.ErrAlreadyRunning) || !strings.Contains(err.Error(), "pid ") {
		t.Fatalf("second copy: Run = %v, want ErrAlreadyRunning naming the holder", err)
	}
	stop()
	h.start(h.config(providertest.NewFake(netID))) // free again
}
