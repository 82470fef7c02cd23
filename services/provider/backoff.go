package provider

import (
	"fmt"
	"time"

	"github.com/clawdis/clawdis/services/internal/backoff"
)

// Policy is the reconnect policy of the supervisor as configured (SPEC §3 web.reconnect).
// Zero fields take their defaults. The supervisor waits with services/internal/backoff.
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

// backoff fills p's zero fields with the defaults, validates it and returns it as a backoff
// policy.
func (p Policy) backoff() (backoff.Policy, error) {
	if p.InitialMs == 0 {
		p.InitialMs = DefaultInitialMs
	}
	if p.MaxMs == 0 {
		p.MaxMs = DefaultMaxMs
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
	b := backoff.Policy{
		Initial:     time.Duration(p.InitialMs) * time.Millisecond,
		Max:         time.Duration(p.MaxMs) * time.Millisecond,
		Factor:      p.Factor,
		Jitter:      p.Jitter,
		MaxAttempts: p.MaxAttempts,
	}
	if err := b.Validate(); err != nil {
		return b, fmt.Errorf("reconnect policy: %w", err)
	}
	return b, nil
}
