package wire

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/clawdis/clawdis/bus/subject"
)

// Runs follows the lifecycle events of every run on one subscription: it hands each event to
// OnEvent (the edge broadcasts them) and the heartbeats and final of a run to whoever
// Watches it. A waiter registers before it sends the request that starts the run, so no
// event can slip between the two.
type Runs struct {
	sub       *nats.Subscription
	status    func(ctx context.Context, runID string) (RunStatus, error)
	heartbeat time.Duration

	mu      sync.Mutex
	waiters map[string][]*RunWaiter // by events subject
}

// RunsConfig configures FollowRuns; zero values take the defaults noted.
type RunsConfig struct {
	// OnEvent, when set, gets every event of every run, in order, on the subscription's
	// goroutine: kind is the HeaderRunEvent value, data the event's bytes (owned by the
	// callee only during the call). Waiters are told after it returns.
	OnEvent func(kind string, data []byte)
	// Heartbeat is the runs' heartbeat interval; default RunHeartbeat.
	Heartbeat time.Duration
}

// FollowRuns subscribes to the events of every run on nc and returns once the subscription
// is in place on the server.
func FollowRuns(nc *nats.Conn, cfg RunsConfig) (*Runs, error) {
	r := newRuns(func(ctx context.Context, runID string) (RunStatus, error) {
		var st RunStatus
		err := RequestJSON(ctx, nc, subject.AgentStatus, RunStatusRequest{RunID: runID}, &st)
		return st, err
	}, cfg.Heartbeat)
	onEvent := cfg.OnEvent
	sub, err := nc.Subscribe(subject.AgentRunAll, func(m *nats.Msg) {
		kind := m.Header.Get(HeaderRunEvent)
		if onEvent != nil {
			onEvent(kind, m.Data)
		}
		r.dispatch(m.Subject, kind, m.Data)
	})
	if err != nil {
		return nil, fmt.Errorf("follow runs: subscribe: %w", err)
	}
	if err := nc.Flush(); err != nil {
		_ = sub.Unsubscribe()
		return nil, fmt.Errorf("follow runs: flush: %w", err)
	}
	r.sub = sub
	return r, nil
}

func newRuns(status func(ctx context.Context, runID string) (RunStatus, error), heartbeat time.Duration) *Runs {
	if heartbeat <= 0 {
		heartbeat = RunHeartbeat
	}
	return &Runs{status: status, heartbeat: heartbeat, waiters: map[string][]*RunWaiter{}}
}

// Close ends the subscription. Waits in progress go on until their context ends.
func (r *Runs) Close() error {
	if r.sub == nil {
		return nil
	}
	return r.sub.Unsubscribe()
}

// dispatch tells the waiters of the run published on subj about one of its events.
func (r *Runs) dispatch(subj, kind string, data []byte) {
	r.mu.Lock()
	ws := r.waiters[subj]
	if len(ws) == 0 {
		r.mu.Unlock()
		return
	}
	var fin RunFinal
	final := kind == RunEventFinal
	if final {
		delete(r.waiters, subj)
	}
	r.mu.Unlock()
	var hb RunHeartbeatData
	if kind == RunEventHeartbeat && len(data) > 0 {
		_ = json.Unmarshal(data, &hb) // a heartbeat without a deadline still shows the run alive
	}
	if final {
		if err := json.Unmarshal(data, &fin); err != nil {
			fin = RunFinal{Error: Unavailable(false, "malformed final of the run: %s", err.Error())}
		}
	}
	for _, w := range ws {
		if final {
			w.final <- fin // buffered, and sent at most once: the waiter left the map above
			continue
		}
		if hb.Deadline > 0 {
			w.deadline.Store(hb.Deadline)
		}
		select {
		case w.alive <- struct{}{}:
		default:
		}
	}
}

// Watch registers interest in the agent run runID; call it before the request that may start
// the run, then Wait, and Stop when done.
func (r *Runs) Watch(runID string) *RunWaiter {
	w := &RunWaiter{r: r, runID: runID, subj: subject.AgentRunEvents(runID),
		alive: make(chan struct{}, 1), final: make(chan RunFinal, 1)}
	r.mu.Lock()
	r.waiters[w.subj] = append(r.waiters[w.subj], w)
	r.mu.Unlock()
	return w
}

// RunWaiter waits for the final of one run.
type RunWaiter struct {
	r     *Runs
	runID string
	subj  string
	alive chan struct{}
	final chan RunFinal
	// deadline is the run's deadline (unix ms) as its heartbeats tell, 0 until one did.
	deadline atomic.Int64
}

// Stop unregisters the waiter; it is safe to call more than once and after the final.
func (w *RunWaiter) Stop() {
	w.r.mu.Lock()
	defer w.r.mu.Unlock()
	ws := w.r.waiters[w.subj]
	for i, x := range ws {
		if x == w {
			ws = append(ws[:i], ws[i+1:]...)
			break
		}
	}
	if len(ws) == 0 {
		delete(w.r.waiters, w.subj)
	} else {
		w.r.waiters[w.subj] = ws
	}
}

// Wait returns the run's final, or ctx's error when ctx ends first. Any event of the run
// shows it alive; after RunQuietBeats heartbeat intervals without one, Wait asks the agent
// service about the run: a run it still runs or has stored to run again is waited for again,
// a finished one's final is returned (its final event was missed), and a run it does not know
// ends UNAVAILABLE ("unknown run"). While no agent service answers that question (it is
// restarting), Wait keeps asking every interval. Once the run's deadline is known (from its
// heartbeats or its status) Wait waits until RunFinishGrace past it and then gives up with
// UNAVAILABLE, retryable, "the run did not finish by its deadline" (SPEC §13); before that,
// it gives up after another RunQuietBeats intervals without an answer: the outcome is
// unknown.
func (w *RunWaiter) Wait(ctx context.Context) (RunFinal, error) {
	hb := w.r.heartbeat
	quiet := RunQuietBeats * hb
	timer := time.NewTimer(quiet)
	defer timer.Stop()
	late := newLateTimer()
	defer late.stop()
	var unreachableSince time.Time
	for {
		select {
		case f := <-w.final:
			return f, nil
		case <-ctx.Done():
			return RunFinal{}, ctx.Err()
		case <-w.alive:
			late.set(w.deadline.Load())
			unreachableSince = time.Time{}
			timer.Reset(quiet) // since Go 1.23 a Reset discards a value the timer already sent
		case <-late.c:
			return RunFinal{Error: Unavailable(true, "the run did not finish by its deadline")}, nil
		case <-timer.C:
			qctx, cancel := context.WithTimeout(ctx, hb)
			st, err := w.r.status(qctx, w.runID)
			cancel()
			if ctx.Err() != nil {
				return RunFinal{}, ctx.Err()
			}
			switch {
			case err == nil && st.State == RunRunning:
				late.set(st.Deadline)
				unreachableSince = time.Time{}
				timer.Reset(quiet)
			case err == nil && st.State == RunDone && st.Final != nil:
				return *st.Final, nil
			case err == nil:
				return RunFinal{Error: Unavailable(false, "unknown run %s (the agent service may have restarted)", w.runID)}, nil
			default:
				now := time.Now()
				if unreachableSince.IsZero() {
					unreachableSince = now
				}
				if late.c == nil && now.Sub(unreachableSince) >= quiet {
					return RunFinal{Error: Unavailable(true, "run %s: the agent service stopped answering (%s); the outcome is unknown",
						w.runID, errorMessage(err))}, nil
				}
				timer.Reset(hb)
			}
		}
	}
}

// lateTimer fires RunFinishGrace past a run's deadline; c is nil until the deadline is
// known.
type lateTimer struct {
	t        *time.Timer
	c        <-chan time.Time
	deadline int64
}

func newLateTimer() *lateTimer { return &lateTimer{} }

// set (re)arms the timer for the deadline d (unix ms); 0 or the same deadline changes
// nothing.
func (l *lateTimer) set(d int64) {
	if d <= 0 || d == l.deadline {
		return
	}
	l.deadline = d
	wait := time.Until(time.UnixMilli(d).Add(RunFinishGrace))
	if l.t == nil {
		l.t = time.NewTimer(wait)
		l.c = l.t.C
		return
	}
	l.t.Reset(wait)
}

func (l *lateTimer) stop() {
	if l.t != nil {
		l.t.Stop()
	}
}

func errorMessage(err error) string {
	var we *Error
	if errors.As(err, &we) {
		return we.Message
	}
	return err.Error()
}
