package wire

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/clawdis/clawdis/bus/subject"
)

// fakeStatus answers agent.status questions from a script and counts them.
type fakeStatus struct {
	mu     sync.Mutex
	asked  []time.Duration // when, since start
	start  time.Time
	answer func(n int) (RunStatus, error) // n counts from 1
}

func (f *fakeStatus) status(_ context.Context, _ string) (RunStatus, error) {
	f.mu.Lock()
	f.asked = append(f.asked, time.Since(f.start))
	n := len(f.asked)
	f.mu.Unlock()
	return f.answer(n)
}

func (f *fakeStatus) calls() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Duration(nil), f.asked...)
}

const hb = time.Second

// waitAsync runs w.Wait in a goroutine of the bubble and returns where its result lands.
func waitAsync(ctx context.Context, w *RunWaiter) <-chan RunFinal {
	out := make(chan RunFinal, 1)
	go func() {
		f, err := w.Wait(ctx)
		if err != nil {
			f = RunFinal{Error: Unavailable(false, "wait: %s", err.Error())}
		}
		out <- f
	}()
	return out
}

func TestRunFinalReachesExactlyItsWaiters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fs := &fakeStatus{start: time.Now(), answer: func(int) (RunStatus, error) { return RunStatus{State: RunRunning}, nil }}
		r := newRuns(fs.status, hb)
		a1, a2, b := r.Watch("a"), r.Watch("a"), r.Watch("b.c d")
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		ga1, ga2, gb := waitAsync(ctx, a1), waitAsync(ctx, a2), waitAsync(ctx, b)

		for range 10 { // heartbeats keep both runs alive well past the quiet limit
			time.Sleep(hb)
			r.dispatch(subject.AgentRunEvents("a"), RunEventHeartbeat, nil)
			r.dispatch(subject.AgentRunEvents("b.c d"), RunEventAgent, []byte(`{}`))
		}
		r.dispatch(subject.AgentRunEvents("a"), RunEventFinal, []byte(`{"ok":true,"payload":{"runId":"a"}}`))
		synctest.Wait()
		for i, ch := range []<-chan RunFinal{ga1, ga2} {
			select {
			case f := <-ch:
				if !f.OK || string(f.Payload) != `{"runId":"a"}` {
					t.Fatalf("waiter %d of a got %+v", i, f)
				}
			default:
				t.Fatalf("waiter %d of a did not get the final", i)
			}
		}
		select {
		case f := <-gb:
			t.Fatalf("the waiter of b got a's final: %+v", f)
		default:
		}
		if c := fs.calls(); len(c) != 0 {
			t.Fatalf("status asked %d times while events flowed", len(c))
		}
		r.dispatch(subject.AgentRunEvents("b.c d"), RunEventFinal, []byte(`{"ok":false,"error":{"code":"AGENT_TIMEOUT","message":"late"}}`))
		if f := <-gb; f.OK || f.Error == nil || f.Error.Code != CodeAgentTimeout {
			t.Fatalf("b's final = %+v", f)
		}
		b.Stop()
		a1.Stop()
		if len(r.waiters) != 0 {
			t.Fatalf("waiters left registered: %v", r.waiters)
		}
	})
}

func TestRunQuietAsksStatus(t *testing.T) {
	quiet := RunQuietBeats * hb
	for _, tt := range []struct {
		name   string
		answer func(n int) (RunStatus, error)
		want   func(t *testing.T, f RunFinal, asked []time.Duration)
	}{
		{
			name: "running then done",
			answer: func(n int) (RunStatus, error) {
				if n < 3 {
					return RunStatus{State: RunRunning}, nil
				}
				return RunStatus{State: RunDone, Final: &RunFinal{OK: true, Payload: []byte(`1`)}}, nil
			},
			want: func(t *testing.T, f RunFinal, asked []time.Duration) {
				if !f.OK || string(f.Payload) != "1" {
					t.Fatalf("final = %+v, want the one status reported", f)
				}
				if want := []time.Duration{quiet, 2 * quiet, 3 * quiet}; !slices.Equal(asked, want) {
					t.Fatalf("asked at %v, want %v", asked, want)
				}
			},
		},
		{
			name:   "unknown",
			answer: func(int) (RunStatus, error) { return RunStatus{State: RunUnknown}, nil },
			want: func(t *testing.T, f RunFinal, asked []time.Duration) {
				if f.OK || f.Error == nil || f.Error.Retryable || f.Error.Message != "unknown run r1 (the agent service may have restarted)" {
					t.Fatalf("final = %+v, want unknown run", f.Error)
				}
				if len(asked) != 1 || asked[0] != quiet {
					t.Fatalf("asked at %v", asked)
				}
			},
		},
		{
			name:   "service gone",
			answer: func(int) (RunStatus, error) { return RunStatus{}, Unavailable(true, "no service answers x") },
			want: func(t *testing.T, f RunFinal, asked []time.Duration) {
				if f.OK || f.Error == nil || !f.Error.Retryable || !strings.Contains(f.Error.Message, "stopped answering (no service answers x)") {
					t.Fatalf("final = %+v, want the outcome unknown", f.Error)
				}
				var want []time.Duration
				for d := quiet; d <= 2*quiet; d += hb {
					want = append(want, d)
				}
				if !slices.Equal(asked, want) {
					t.Fatalf("asked at %v, want %v", asked, want)
				}
			},
		},
		{
			name: "service back after a while",
			answer: func(n int) (RunStatus, error) {
				if n < 2 {
					return RunStatus{}, errors.New("timeout")
				}
				return RunStatus{State: RunDone, Final: &RunFinal{OK: true}}, nil
			},
			want: func(t *testing.T, f RunFinal, asked []time.Duration) {
				if !f.OK {
					t.Fatalf("final = %+v", f)
				}
				if want := []time.Duration{quiet, quiet + hb}; !slices.Equal(asked, want) {
					t.Fatalf("asked at %v, want %v", asked, want)
				}
			},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				fs := &fakeStatus{start: time.Now(), answer: tt.answer}
				r := newRuns(fs.status, hb)
				w := r.Watch("r1")
				defer w.Stop()
				f, err := w.Wait(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				tt.want(t, f, fs.calls())
			})
		})
	}
}

func TestRunWaitEndsWithContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fs := &fakeStatus{start: time.Now(), answer: func(int) (RunStatus, error) { return RunStatus{State: RunRunning}, nil }}
		r := newRuns(fs.status, hb)
		w := r.Watch("r")
		defer w.Stop()
		ctx, cancel := context.WithTimeout(t.Context(), 10*hb)
		defer cancel()
		if _, err := w.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Wait = %v, want the context's error", err)
		}
	})
}

// TestRunWaitThroughRestart: a run whose heartbeats told its deadline is waited for while
// the agent service does not answer (it restarts) for longer than the quiet limit, and its
// final is returned when it comes; a run that never finishes ends RunFinishGrace past its
// deadline with "the run did not finish by its deadline".
func TestRunWaitThroughRestart(t *testing.T) {
	for _, finishes := range []bool{true, false} {
		synctest.Test(t, func(t *testing.T) {
			start := time.Now()
			deadline := start.Add(20 * hb)
			fs := &fakeStatus{start: start, answer: func(int) (RunStatus, error) {
				return RunStatus{}, Unavailable(true, "no service answers")
			}}
			r := newRuns(fs.status, hb)
			w := r.Watch("r")
			defer w.Stop()
			got := waitAsync(t.Context(), w)
			hbData := []byte(`{"deadline":` + strconv.FormatInt(deadline.UnixMilli(), 10) + `}`)
			r.dispatch(subject.AgentRunEvents("r"), RunEventHeartbeat, hbData)
			time.Sleep(5 * quiet()) // the service is away well past the quiet limit
			synctest.Wait()
			select {
			case f := <-got:
				t.Fatalf("gave up while the run's deadline is ahead: %+v", f)
			default:
			}
			if finishes {
				r.dispatch(subject.AgentRunEvents("r"), RunEventHeartbeat, hbData) // back
				r.dispatch(subject.AgentRunEvents("r"), RunEventFinal, []byte(`{"ok":true}`))
				if f := <-got; !f.OK {
					t.Fatalf("final = %+v", f)
				}
				return
			}
			f := <-got
			if f.OK || f.Error == nil || f.Error.Message != "the run did not finish by its deadline" || !f.Error.Retryable {
				t.Fatalf("final = %+v, want the deadline error", f.Error)
			}
			if at := time.Since(start); at != deadline.Add(RunFinishGrace).Sub(start) {
				t.Fatalf("gave up after %v, want deadline + %v", at, RunFinishGrace)
			}
		})
	}
}

func quiet() time.Duration { return RunQuietBeats * hb }
