package provider_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

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

// TestSimultaneousStartsOneWins starts several copies of one provider at the same instant
// (the same start time, so only the nonce ranks them), again and again: exactly one runs
// each time, and the others refuse with ErrAlreadyRunning.
func TestSimultaneousStartsOneWins(t *testing.T) {
	h := newHarness(t)
	const copies, rounds = 3, 15
	for round := range rounds {
		ctx, cancel := context.WithCancel(context.Background())
		type outcome struct {
			ready bool
			err   error
		}
		results := make(chan outcome, copies)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range copies {
			cfg := h.config(providertest.NewFake(netID))
			cfg.OwnerProbe = 100 * time.Millisecond
			c, err := provider.New(cfg, h.bus.Conn(fmt.Sprintf("copy-%d-%d", round, i)), slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			wg.Go(func() {
				done := make(chan error, 1)
				<-start
				go func() { done <- c.Run(ctx) }()
				select {
				case <-c.Ready():
					results <- outcome{ready: true}
					<-done
				case err := <-done:
					results <- outcome{err: err}
				}
			})
		}
		close(start)
		winners := 0
		for range copies {
			r := <-results
			switch {
			case r.ready:
				winners++
			case !errors.Is(r.err, provider.ErrAlreadyRunning):
				t.Fatalf("round %d: a copy failed otherwise: %v", round, r.err)
			}
		}
		cancel()
		wg.Wait()
		if winners != 1 {
			t.Fatalf("round %d: %d copies run the provider, want exactly 1", round, winners)
		}
	}
}

// TestPrivateBusTakesAtOnce: on a private bus the core does not wait out its claim window,
// and it still answers claims as the owner.
func TestPrivateBusTakesAtOnce(t *testing.T) {
	h := newHarness(t)
	cfg := h.config(providertest.NewFake(netID))
	cfg.OwnerProbe = time.Hour // h.start would time out if it were waited for
	cfg.PrivateBus = true
	h.start(cfg)
	second, err := provider.New(h.config(providertest.NewFake(netID)), h.bus.Conn("second"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := second.Run(context.Background()); !errors.Is(err, provider.ErrAlreadyRunning) {
		t.Fatalf("a second copy next to the private-bus owner: %v", err)
	}
}
