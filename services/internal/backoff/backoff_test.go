package backoff

import (
	"context"
	"errors"
	"math"
	"testing"
	"testing/synctest"
	"time"
)

func fixed(r float64) func() float64 { return func() float64 { return r } }

func TestDelay(t *testing.T) {
	provider := Policy{Initial: 2 * time.Second, Max: 30 * time.Second, Factor: 1.8, Jitter: 0.25}
	doubling := Policy{Initial: time.Second, Max: time.Minute}
	ms := func(v float64) time.Duration { return time.Duration(v * float64(time.Millisecond)) }
	for _, tt := range []struct {
		name    string
		p       Policy
		attempt int
		rnd     float64
		want    time.Duration
	}{
		{"first, middle draw", provider, 1, 0.5, 2 * time.Second},
		{"first, lowest jitter", provider, 1, 0, 1500 * time.Millisecond},
		{"first, highest jitter", provider, 1, 1, 2500 * time.Millisecond},
		{"second grows by factor", provider, 2, 0.5, 3600 * time.Millisecond},
		{"third grows by factor", provider, 3, 0.5, ms(2000 * 1.8 * 1.8)},
		{"capped", provider, 20, 0.5, 30 * time.Second},
		{"capped, lowest jitter", provider, 20, 0, 22500 * time.Millisecond},
		{"capped, highest jitter stays capped", provider, 20, 1, 30 * time.Second},
		{"attempt 0 counts as the first", provider, 0, 0.5, 2 * time.Second},
		{"negative attempt counts as the first", provider, -3, 0.5, 2 * time.Second},
		{"draw above 1 is clamped", provider, 1, 7, 2500 * time.Millisecond},
		{"draw below 0 is clamped", provider, 1, -7, 1500 * time.Millisecond},
		{"factor 0 doubles", doubling, 4, 0.9, 8 * time.Second},
		{"doubling capped", doubling, 7, 0.9, time.Minute},
		{"no jitter ignores the draw", doubling, 1, 0, time.Second},
		{"huge attempt with a cap", doubling, math.MaxInt, 0, time.Minute},
		{"no cap grows", Policy{Initial: time.Millisecond, Factor: 10}, 4, 0, time.Second},
		{"no cap saturates", Policy{Initial: time.Hour}, 1000, 0, time.Duration(math.MaxInt64)},
		{"zero policy waits nothing", Policy{}, 5, 0.3, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.p.Delay(tt.attempt, fixed(tt.rnd))
			if diff := got - tt.want; diff < -time.Microsecond || diff > time.Microsecond {
				t.Errorf("Delay(%d, %g) = %s, want %s", tt.attempt, tt.rnd, got, tt.want)
			}
		})
	}
}

func TestDelayDrawsOnlyWithJitter(t *testing.T) {
	draws := 0
	rnd := func() float64 { draws++; return 0.5 }
	Policy{Initial: time.Second}.Delay(3, rnd)
	if draws != 0 {
		t.Errorf("drew %d times without jitter", draws)
	}
	Policy{Initial: time.Second, Jitter: 0.1}.Delay(3, rnd)
	if draws != 1 {
		t.Errorf("drew %d times with jitter, want 1", draws)
	}
}

func TestDelayDefaultRandStaysInBounds(t *testing.T) {
	p := Policy{Initial: time.Second, Max: 10 * time.Second, Jitter: 0.5}
	for range 1000 {
		if d := p.Delay(2, nil); d < time.Second || d > 3*time.Second {
			t.Fatalf("Delay(2, nil) = %s, outside [1s, 3s]", d)
		}
	}
}

func TestValidate(t *testing.T) {
	for _, tt := range []struct {
		name string
		p    Policy
		ok   bool
	}{
		{"zero", Policy{}, true},
		{"full", Policy{Initial: time.Second, Max: time.Minute, Factor: 1.5, Jitter: 0.2, MaxAttempts: 3}, true},
		{"factor 1", Policy{Initial: time.Second, Factor: 1}, true},
		{"max equals initial", Policy{Initial: time.Second, Max: time.Second}, true},
		{"negative initial", Policy{Initial: -1}, false},
		{"negative max", Policy{Max: -1}, false},
		{"max below initial", Policy{Initial: time.Minute, Max: time.Second}, false},
		{"factor below 1", Policy{Factor: 0.5}, false},
		{"factor NaN", Policy{Factor: math.NaN()}, false},
		{"factor infinite", Policy{Factor: math.Inf(1)}, false},
		{"jitter 1", Policy{Jitter: 1}, false},
		{"negative jitter", Policy{Jitter: -0.1}, false},
		{"negative attempts", Policy{MaxAttempts: -1}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.p.Validate()
			if (err == nil) != tt.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not wrap ErrInvalid", err)
			}
		})
	}
}

func TestGiveUp(t *testing.T) {
	for _, tt := range []struct {
		max, failures int
		want          bool
	}{
		{0, 1, false},
		{0, 1 << 30, false},
		{3, 2, false},
		{3, 3, true},
		{3, 4, true},
		{1, 1, true},
	} {
		if got := (Policy{MaxAttempts: tt.max}).GiveUp(tt.failures); got != tt.want {
			t.Errorf("MaxAttempts %d: GiveUp(%d) = %v, want %v", tt.max, tt.failures, got, tt.want)
		}
	}
}

func TestSleepWaitsTheDuration(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		if err := Sleep(t.Context(), 90*time.Second); err != nil {
			t.Fatalf("Sleep = %v", err)
		}
		if got := time.Since(start); got != 90*time.Second {
			t.Errorf("slept %s, want 90s", got)
		}
	})
}

func TestSleepEndsWithTheContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		start := time.Now()
		if err := Sleep(ctx, time.Hour); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Sleep = %v, want DeadlineExceeded", err)
		}
		if got := time.Since(start); got != 5*time.Second {
			t.Errorf("returned after %s, want 5s", got)
		}
	})
}

func TestSleepCancelledFromAnotherGoroutine(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() { done <- Sleep(ctx, time.Hour) }()
		time.Sleep(time.Minute) // fake time: the sleeper is blocked meanwhile
		synctest.Wait()
		select {
		case err := <-done:
			t.Fatalf("Sleep returned early: %v", err)
		default:
		}
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("Sleep = %v, want Canceled", err)
		}
	})
}

func TestSleepWithoutWaiting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cancelled, cancel := context.WithCancel(t.Context())
		cancel()
		for _, tt := range []struct {
			name string
			ctx  context.Context
			d    time.Duration
			want error
		}{
			{"zero", t.Context(), 0, nil},
			{"negative", t.Context(), -time.Second, nil},
			{"cancelled before", cancelled, time.Hour, context.Canceled},
			{"cancelled and zero", cancelled, 0, context.Canceled},
		} {
			start := time.Now()
			if err := Sleep(tt.ctx, tt.d); !errors.Is(err, tt.want) {
				t.Errorf("%s: Sleep = %v, want %v", tt.name, err, tt.want)
			}
			if waited := time.Since(start); waited != 0 {
				t.Errorf("%s: waited %s", tt.name, waited)
			}
		}
	})
}
