package agent

import (
	"encoding/json"
	"time"

	"github.com/nats-io/nats.go/micro"

	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/services/internal/idem"
)

// maxWait caps the waitMs of one agent.wait.
const maxWait = 10 * time.Minute

// handleWait answers agent.wait: at once when the run is finished or unknown, else from
// a goroutine when it finishes or waitMs passes, so that a long poll never blocks the
// endpoint's other requests.
func (s *Service) handleWait(req micro.Request) {
	var w wire.AgentWait
	if err := json.Unmarshal(req.Data(), &w); err != nil || w.RunID == "" {
		wire.RespondError(req, "agent.wait", wire.Invalid("agent.wait needs {runId, waitMs}"))
		return
	}
	key := agentKeyPrefix + w.RunID
	s.mu.Lock()
	if s.stopped || s.idem == nil {
		s.mu.Unlock()
		wire.RespondError(req, "agent.wait", errStopping)
		return
	}
	j := s.runs[key]
	if j == nil {
		final := s.finalLocked(key, w.RunID)
		s.mu.Unlock()
		respondFinal(req, final)
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()

	wait := min(max(time.Duration(w.WaitMs)*time.Millisecond, 0), maxWait)
	go func() {
		defer s.wg.Done()
		timer := time.NewTimer(wait)
		defer timer.Stop()
		select {
		case <-j.done:
			respondFinal(req, finalOf(j.final))
		case <-timer.C:
			respondFinal(req, wire.AgentFinal{Done: false})
		}
	}()
}

// finalLocked is the final of a run that is not in progress: remembered, recent, or
// unknown.
func (s *Service) finalLocked(key, runID string) wire.AgentFinal {
	if r, ok := s.idem.Get(key); ok {
		return finalOf(r)
	}
	if r, ok := s.recent[key]; ok && s.cfg.Now().UnixMilli()-r.At <= recentTTL.Milliseconds() {
		return finalOf(r)
	}
	return wire.AgentFinal{Done: true, Error: wire.Unavailable(false,
		"unknown run %s (the agent service may have restarted)", runID)}
}

func finalOf(r idem.Result) wire.AgentFinal {
	return wire.AgentFinal{Done: true, OK: r.OK, Payload: r.Payload, Error: r.Error}
}

func respondFinal(req micro.Request, f wire.AgentFinal) {
	data, err := json.Marshal(f)
	if err != nil {
		wire.RespondError(req, "agent.wait", err)
		return
	}
	_ = req.Respond(data)
}
