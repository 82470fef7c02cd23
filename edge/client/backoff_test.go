package client

import (
	"math/rand/v2"
	"testing"
	"time"
)

func TestBackoffDelay(t *testing.T) {
	const ms = time.Millisecond
	custom := Backoff{Initial: 100 * ms, Max: time.Second, Factor: 3, Jitter: 0.5}
	tests := []struct {
		name    string
		b       Backoff
		attempt int
		r       float64
		want    time.Duration
	}{
		{"default first, no jitter drawn", Backoff{}, 0, 0.5, 500 * ms},
		{"default first, lowest", Backoff{}, 0, 0, 400 * ms},
		{"default first, highest", Backoff{}, 0, 1, 600 * ms},
		{"default doubles", Backoff{}, 3, 0.5, 4 * time.Second},
		{"default capped at max", Backoff{}, 6, 0.5, 30 * time.Second},
		{"jitter never exceeds max", Backoff{}, 6, 1, 30 * time.Second},
		{"jitter below the cap", Backoff{}, 6, 0, 24 * time.Second},
		{"huge attempt does not overflow", Backoff{}, 1 << 30, 0.5, 30 * time.Second},
		{"negative attempt counts as 0", Backoff{}, -3, 0.5, 500 * ms},
		{"rnd above 1 is clamped", Backoff{}, 0, 7, 600 * ms},
		{"rnd below 0 is clamped", Backoff{}, 0, -7, 400 * ms},
		{"custom factor", custom, 2, 0.5, 900 * ms},
		{"custom jitter low", custom, 0, 0, 50 * ms},
		{"custom jitter high capped", custom, 2, 1, time.Second},
		{"no jitter", Backoff{Initial: 100 * ms, Max: time.Second, Jitter: -1}, 1, 0, 200 * ms},
		{"factor below 1 means 2", Backoff{Initial: 100 * ms, Factor: 0.5, Jitter: -1}, 2, 0, 400 * ms},
		{"factor 1 is constant", Backoff{Initial: 100 * ms, Factor: 1, Jitter: -1}, 50, 0, 100 * ms},
		{"initial above max", Backoff{Initial: time.Minute, Max: time.Second}, 0, 0.5, time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.b.Delay(tt.attempt, func() float64 { return tt.r })
			if diff := got - tt.want; diff < -time.Microsecond || diff > time.Microsecond {
				t.Errorf("Delay(%d, %v) = %v, want %v", tt.attempt, tt.r, got, tt.want)
			}
		})
	}
}

func TestBackoffDelayBounds(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, b := range []Backoff{{}, {Initial: 10 * time.Millisecond, Max: 2 * time.Second, Factor: 1.5, Jitter: 0.9}} {
		d := b.withDefaults()
		base := d.Initial
		for attempt := range 40 {
			lo := time.Duration(float64(base) * (1 - d.Jitter))
			hi := min(time.Duration(float64(base)*(1+d.Jitter)), d.Max)
			for range 50 {
				for _, rnd := range []func() float64{rng.Float64, nil} {
					got := b.Delay(attempt, rnd)
					if got < lo-time.Microsecond || got > hi+time.Microsecond {
						t.Fatalf("%+v: Delay(%d) = %v, outside [%v, %v]", b, attempt, got, lo, hi)
					}
				}
			}
			base = min(time.Duration(float64(base)*d.Factor), d.Max)
		}
	}
}
