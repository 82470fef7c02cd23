package provider

import (
	"context"
	"fmt"
	"math"
	"time"
)

// Policy is the reconnect policy of the supervisor (SPEC §3 web.reconnect). Zero fields
// take their defaults.
type Policy struct {
	// InitialMs is the first delay before a restart. Default 2000.
	InitialMs int
	// MaxMs caps every delay, jitter included. Default 30000.
	MaxMs int
	// Factor multiplies the delay after each consecutive failure; at least 1. Default 1.8.
	Factor float64
	// Jitter spreads a delay d over [d*(1-Jitter), d*(1+Jitter)]; below 1. 0 selects the
	// default 0.25; a negative value disables jitter.
	Jitter float64
	// MaxAttempts stops the restarts after this many consecutive failures. Default 0:
	// unlimited.
	MaxAttempts int
}

// Policy defaults.
const (
	DefaultInitialMs = 2000
	DefaultMaxMs     = 30000
	DefaultFactor    = 1.8
	DefaultJitter    = 0.25
)

// stableRun is how long a run must last for the failure count to start over.
const stableRun = time.Minute

// withDefaults validates p and fills its zero fields.
func (p Policy) withDefaults() (Policy, error) {
	switch {
	case p.InitialMs < 0:
		return p, fmt.Errorf("reconnect InitialMs %d is negative", p.InitialMs)
	case p.MaxMs < 0:
		return p, fmt.Errorf("reconnect MaxMs %d is negative", p.MaxMs)
	case p.Factor != 0 && p.Factor < 1:
		return p, fmt.Errorf("reconnect Factor %g is below 1", p.Factor)
	case p.Jitter >= 1:
		return p, fmt.Errorf("reconnect Jitter %g is not below 1", p.Jitter)
	case p.MaxAttempts < 0:
		return p, fmt.Errorf("reconnect MaxAttempts %d is negative", p.MaxAttempts)
	}
	if p.InitialMs == 0 {
		p.InitialMs = DefaultInitialMs
	}
	if p.MaxMs == 0 {
		p.MaxMs = DefaultMaxMs
	}
	if p.MaxMs < p.InitialMs {
		return p, fmt.Errorf("reconnect MaxMs %d is below InitialMs %d", p.MaxMs, p.InitialMs)
	}
	if p.Factor == 0 {
		p.Factor = DefaultFactor
	}
	switch {
	case p.Jitter == 0:
		p.Jitter = DefaultJitter
	case p.Jitter < 0:
		p.Jitter = 0
	}
	return p, nil
}

// Delay is the wait before restart number attempt (1 for the first failure):
// d = min(InitialMs*Factor^(attempt-1), MaxMs), spread by rnd (in [0,1)) over
// [d*(1-Jitter), d*(1+Jitter)] and capped at MaxMs. p must have its defaults applied.
func (p Policy) Delay(attempt int, rnd float64) time.Duration {
	attempt = max(attempt, 1)
	d := float64(p.InitialMs) * math.Pow(p.Factor, float64(attempt-1))
	d = min(d, float64(p.MaxMs))
	d *= 1 + p.Jitter*(2*rnd-1)
	d = min(d, float64(p.MaxMs))
	return time.Duration(d * float64(time.Millisecond))
}

// sleep waits d or until ctx ends (then it returns ctx.Err()).
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
