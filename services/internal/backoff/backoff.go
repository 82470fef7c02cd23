// Package backoff is the services' one retry policy and their one cancellable sleep: an
// exponential backoff (initial delay, growth factor, cap, proportional jitter, an optional
// limit on attempts) that is deterministic when given its random source, and Sleep, which
// waits a duration or until a context ends.
package backoff

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

// Policy is an exponential backoff. The wait after the n-th consecutive failure is
// Initial·Factor^(n−1), capped at Max, then spread by Jitter and capped at Max again. The
// zero Policy waits nothing; callers fill it from their own configuration and defaults.
type Policy struct {
	// Initial is the wait after the first failure.
	Initial time.Duration
	// Max caps every wait, jitter included; 0 means no cap.
	Max time.Duration
	// Factor multiplies the wait after each further failure; 0 means 2, otherwise at least 1.
	Factor float64
	// Jitter spreads a wait d uniformly over [d·(1−Jitter), d·(1+Jitter)]; in [0, 1), 0 for
	// none.
	Jitter float64
	// MaxAttempts is how many consecutive failures end the retries (see GiveUp); 0 means
	// never.
	MaxAttempts int
}

// Validate reports a policy whose fields are out of range, naming the field.
func (p Policy) Validate() error {
	var why string
	switch {
	case p.Initial < 0:
		why = fmt.Sprintf("initial delay %s is negative", p.Initial)
	case p.Max < 0:
		why = fmt.Sprintf("max delay %s is negative", p.Max)
	case p.Max > 0 && p.Max < p.Initial:
		why = fmt.Sprintf("max delay %s is below the initial delay %s", p.Max, p.Initial)
	case p.Factor != 0 && (p.Factor < 1 || math.IsInf(p.Factor, 0) || math.IsNaN(p.Factor)):
		why = fmt.Sprintf("factor %g is not a number of at least 1", p.Factor)
	case p.Jitter < 0 || p.Jitter >= 1 || math.IsNaN(p.Jitter):
		why = fmt.Sprintf("jitter %g is not in [0, 1)", p.Jitter)
	case p.MaxAttempts < 0:
		why = fmt.Sprintf("max attempts %d is negative", p.MaxAttempts)
	}
	if why != "" {
		return fmt.Errorf("%w: %s", ErrInvalid, why)
	}
	return nil
}

// ErrInvalid is wrapped by Validate's errors.
var ErrInvalid = errors.New("backoff: invalid policy")

// maxWait is the largest wait Delay returns without a cap (about 292 years).
const maxWait = time.Duration(math.MaxInt64)

// Delay is the wait after failure number attempt (1 for the first; lower counts as 1).
// rnd returns the jitter draw in [0, 1) (values outside are clamped); it is called once when
// Jitter is set, and nil means math/rand/v2.Float64. With a fixed rnd Delay is a pure
// function of attempt.
func (p Policy) Delay(attempt int, rnd func() float64) time.Duration {
	factor := p.Factor
	if factor == 0 {
		factor = 2
	}
	limit := float64(maxWait)
	if p.Max > 0 {
		limit = float64(p.Max)
	}
	d := min(float64(p.Initial)*math.Pow(factor, float64(max(attempt, 1)-1)), limit)
	if p.Jitter > 0 {
		if rnd == nil {
			rnd = rand.Float64
		}
		r := min(max(rnd(), 0), 1)
		d = min(d*(1+p.Jitter*(2*r-1)), limit)
	}
	if d >= float64(maxWait) {
		return maxWait
	}
	return time.Duration(d)
}

// GiveUp reports whether failures consecutive failures exhaust the policy's MaxAttempts.
func (p Policy) GiveUp(failures int) bool {
	return p.MaxAttempts > 0 && failures >= p.MaxAttempts
}

// Sleep waits d or until ctx ends, whichever comes first. It returns nil when d passed and
// ctx.Err() when ctx ended first (also when it had ended before the call). A d of zero or
// less does not wait.
func Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil || d <= 0 {
		return err
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
