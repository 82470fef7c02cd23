package client

import (
	"math"
	"math/rand/v2"
	"time"
)

// Backoff is the reconnect policy: exponential growth with proportional jitter. Its zero
// value is the default policy.
type Backoff struct {
	// Initial is the base delay before the first reconnect attempt. Default 500ms.
	Initial time.Duration
	// Max bounds every delay, jitter included. Default 30s.
	Max time.Duration
	// Factor multiplies the base delay after each failed attempt. Default 2; values
	// below 1 mean the default.
	Factor float64
	// Jitter is the fraction of the base delay randomly added or removed. Default 0.2;
	// a negative value disables jitter; values above 1 count as 1.
	Jitter float64
}

// Backoff defaults.
const (
	DefaultBackoffInitial = 500 * time.Millisecond
	DefaultBackoffMax     = 30 * time.Second
	DefaultBackoffFactor  = 2.0
	DefaultBackoffJitter  = 0.2
)

func (b Backoff) withDefaults() Backoff {
	if b.Initial <= 0 {
		b.Initial = DefaultBackoffInitial
	}
	if b.Max <= 0 {
		b.Max = DefaultBackoffMax
	}
	if b.Factor < 1 {
		b.Factor = DefaultBackoffFactor
	}
	switch {
	case b.Jitter == 0:
		b.Jitter = DefaultBackoffJitter
	case b.Jitter < 0:
		b.Jitter = 0
	case b.Jitter > 1:
		b.Jitter = 1
	}
	return b
}

// Delay returns the wait before reconnect attempt number attempt (0 for the first attempt
// after a drop). The base delay is Initial·Factor^attempt, capped at Max; the result is
// base·(1 + Jitter·(2r−1)) with r = rnd() clamped to [0, 1], so it lies within
// [base·(1−Jitter), base·(1+Jitter)] and never exceeds Max. A nil rnd uses math/rand/v2.
func (b Backoff) Delay(attempt int, rnd func() float64) time.Duration {
	b = b.withDefaults()
	if attempt < 0 {
		attempt = 0
	}
	limit := float64(b.Max)
	base := float64(b.Initial) * math.Pow(b.Factor, float64(attempt))
	if math.IsInf(base, 0) || math.IsNaN(base) || base > limit {
		base = limit
	}
	if rnd == nil {
		rnd = rand.Float64
	}
	r := rnd()
	if math.IsNaN(r) {
		r = 0.5
	}
	r = min(max(r, 0), 1)
	d := base * (1 + b.Jitter*(2*r-1))
	d = min(max(d, 0), limit)
	return time.Duration(d)
}
