package agent

import (
	"context"
	"encoding/json"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/clawdis/clawdis/bus/subject"
	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/services/internal/idem"
)

// eventsSubject is where the run publishes its lifecycle.
func (j *job) eventsSubject() string {
	if j.kind == kindChat {
		return subject.ChatRunEvents(j.runID)
	}
	return subject.AgentRunEvents(j.runID)
}

// heartbeat publishes a heartbeat of the agent run j, carrying its deadline, when it starts
// and then every interval until it has its final or the service's stop ends it, so that
// whoever waits for it knows the run is alive and how long to wait through a restart
// (wire.RunWaiter).
func (s *Service) heartbeat(j *job) {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.Heartbeat)
	defer t.Stop()
	subj := j.eventsSubject()
	data := mustJSON(wire.RunHeartbeatData{Deadline: j.deadline.UnixMilli()})
	for {
		// A run past its deadline is about to end with its timeout final: no heartbeat
		// should make a waiter give up on it first.
		if time.Now().Before(j.deadline) {
			s.publishRun(subj, j.runID, wire.RunEventHeartbeat, data)
		}
		select {
		case <-j.done:
			return
		case <-s.runCtx.Done():
			return
		case <-t.C:
		}
	}
}

// publishFinal publishes the final event of the agent run j; it is the run's last event.
func (s *Service) publishFinal(j *job, r idem.Result) {
	data, err := json.Marshal(finalOf(r))
	if err != nil {
		s.log.Error("encode final", "run_id", j.runID, "err", err)
		return
	}
	if limit := s.nc.MaxPayload(); limit > 0 && int64(len(data)) > limit {
		// Never silence: a final too large for the bus becomes an error final that fits.
		s.log.Error("final too large for the bus", "run_id", j.runID, "bytes", len(data), "limit", limit)
		data, _ = json.Marshal(finalOf(errorResult(j.runID, wire.Unavailable(false, "the run's final was too large to send"))))
	}
	s.publishRun(j.eventsSubject(), j.runID, wire.RunEventFinal, data)
}

// handleStatus answers agent.status: whether the agent run is queued, running or stored to
// run again (with its deadline), its final when it finished recently, or unknown;
// UNAVAILABLE retryable when the idempotency records or the stream cannot be read. Waiters
// ask it only when a run has gone quiet.
func (s *Service) handleStatus(_ context.Context, data []byte, _ nats.Header) (any, error) {
	var req wire.RunStatusRequest
	if err := decode(data, &req); err != nil {
		return nil, err
	}
	if req.RunID == "" {
		return nil, wire.Invalid("runId required")
	}
	key := agentKeyPrefix + req.RunID
	s.mu.Lock()
	stopped := s.stopped || s.idem == nil
	held, running := s.runs[key]
	recent, isRecent := s.recent.Get(key, s.cfg.Now())
	s.mu.Unlock()
	switch {
	case stopped:
		return nil, errStopping
	case running && !isClosed(held.done):
		return wire.RunStatus{State: wire.RunRunning, Deadline: held.deadline.UnixMilli()}, nil
	case running:
		f := finalOf(held.final)
		return wire.RunStatus{State: wire.RunDone, Final: &f}, nil
	case isRecent:
		f := finalOf(recent)
		return wire.RunStatus{State: wire.RunDone, Final: &f}, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	r, found, err := s.idem.Get(ctx, key)
	if err != nil {
		return nil, wire.Unavailable(true, "%s", err.Error())
	}
	if found {
		f := finalOf(r)
		return wire.RunStatus{State: wire.RunDone, Final: &f}, nil
	}
	ar, stored, err := s.storedRun(ctx, key)
	if err != nil {
		return nil, err
	}
	if stored {
		return wire.RunStatus{State: wire.RunRunning, Deadline: ar.Deadline}, nil
	}
	return wire.RunStatus{State: wire.RunUnknown}, nil
}

// isClosed reports whether ch is closed.
func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func finalOf(r idem.Result) wire.RunFinal {
	return wire.RunFinal{OK: r.OK, Payload: r.Payload, Error: r.Error}
}
