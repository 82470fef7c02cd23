package agent

import (
	"cmp"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/schemas"
	"github.com/clawdis/clawdis/services/internal/idem"
)

// abortWait bounds how long chat.abort waits for the runs it stopped to end (their backends
// killed, the partial reply stored, the closing events published), within the edge's quick
// deadline.
const abortWait = 3 * time.Second

// handleAbort answers chat.abort (SPEC §6.9): it ends the session's runs (with runId, that
// run only; else the running one and every queued one) with status aborted, waits until
// they have ended, and answers {ok:true, aborted:[runId…]} with the runs that ended aborted,
// in the order they were accepted (empty when nothing ran). A run that completed before the
// abort reached it is not listed.
func (s *Service) handleAbort(_ context.Context, data []byte, _ nats.Header) (any, error) {
	var p schemas.ChatAbortParams
	if err := decode(data, &p); err != nil {
		return nil, err
	}
	key := strings.TrimSpace(p.SessionKey)
	if key == "" {
		return nil, wire.Invalid("sessionKey required")
	}
	jobs := s.sessionRuns(key, p.RunID)
	for _, j := range jobs {
		j.abort(errAborted)
	}
	aborted := []string{}
	limit := time.NewTimer(abortWait)
	defer limit.Stop()
	for _, j := range jobs {
		select {
		case <-j.done:
			if !isAborted(j.final) {
				continue
			}
		case <-limit.C:
			// Still ending (a slow transcript write): it was stopped all the same.
			limit.Reset(0)
		}
		aborted = append(aborted, j.runID)
	}
	s.log.Info("chat.abort", "session_key", key, "run_id", p.RunID, "aborted", len(aborted))
	return schemas.ChatAbortResult{OK: true, Aborted: aborted}, nil
}

// handleBusy answers agent.busy: the runs of the session that are running or queued. The
// sessions service asks it before a reset.
func (s *Service) handleBusy(_ context.Context, data []byte, _ nats.Header) (any, error) {
	var req wire.SessionBusyRequest
	if err := decode(data, &req); err != nil {
		return nil, err
	}
	s.mu.Lock()
	stopped := s.stopped
	s.mu.Unlock()
	if stopped {
		return nil, errStopping
	}
	ids := []string{}
	for _, j := range s.sessionRuns(strings.TrimSpace(req.SessionKey), "") {
		ids = append(ids, j.runID)
	}
	return wire.SessionBusy{RunIDs: ids}, nil
}

// sessionRuns returns the runs in progress of the session key (only the one with runID when
// it is not empty), in the order they were accepted; a held run that has its final (its
// delivery not yet acknowledged) is not in progress.
func (s *Service) sessionRuns(key, runID string) []*job {
	s.mu.Lock()
	var out []*job
	for _, j := range s.runs {
		if j.sessionKey == key && (runID == "" || j.runID == runID) && !isClosed(j.done) {
			out = append(out, j)
		}
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b *job) int { return cmp.Compare(a.seq, b.seq) })
	return out
}

// isAborted reports whether r is the final of an aborted run: an agent result, or the chat
// event a chat turn remembers, with status or state aborted.
func isAborted(r idem.Result) bool {
	var v struct {
		Status string `json:"status"`
		State  string `json:"state"`
	}
	return r.OK && json.Unmarshal(r.Payload, &v) == nil &&
		(v.Status == schemas.RunAborted || v.State == schemas.ChatStateAborted)
}
