package sessions

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/nats-io/nats.go"

	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/schemas"
)

// summaryRequest is the body of a subject.SessionsSummary request.
type summaryRequest struct {
	Limit int `json:"limit"`
}

// handleSummary answers subject.SessionsSummary: the store's path, its size and its most
// recently updated sessions, newest first (ties by key).
func (s *Service) handleSummary(_ context.Context, data []byte, _ nats.Header) (any, error) {
	var req summaryRequest
	if err := decode(data, &req); err != nil {
		return nil, err
	}
	if req.Limit < 0 || req.Limit > MaxSummaryLimit {
		return nil, wire.Invalid("limit %d out of range 1..%d (0 for %d)", req.Limit, MaxSummaryLimit, DefaultSummaryLimit)
	}
	if req.Limit == 0 {
		req.Limit = DefaultSummaryLimit
	}
	return s.summary(req.Limit)
}

// summary returns the store's path, its size and its limit most recently updated sessions,
// newest first (ties by key).
func (s *Service) summary(limit int) (wire.SessionsSummary, error) {
	unlock, err := s.lockLoaded()
	if err != nil {
		return wire.SessionsSummary{}, err
	}
	entries := s.newestFirst()
	unlock()
	all := make([]wire.SessionInfo, 0, len(entries))
	for _, ke := range entries {
		all = append(all, wire.SessionInfo{
			Key:           ke.key,
			SessionID:     ke.e.SessionID,
			UpdatedAt:     ke.e.UpdatedAt,
			ThinkingLevel: ke.e.ThinkingLevel,
		})
	}
	n := len(all)
	sum := wire.SessionsSummary{Path: s.st.path, Count: n, Sessions: all[:min(n, limit)]}
	fitSummary(&sum, s.cfg.MaxBytes)
	return sum, nil
}

// fitSummary leaves out the oldest sessions of sum until it takes at most maxBytes encoded.
func fitSummary(sum *wire.SessionsSummary, maxBytes int) {
	size := encodedLen(sum)
	for n := len(sum.Sessions); size > maxBytes && n > 0; n-- {
		size -= encodedLen(sum.Sessions[n-1])
		if n > 1 {
			size-- // its comma
		}
		sum.Sessions = sum.Sessions[:n-1]
	}
}

// encodedLen is the length of v encoded as JSON.
func encodedLen(v any) int {
	b, err := json.Marshal(v)
	if err != nil {
		return 0 // never happens: plain values
	}
	return len(b)
}

// handleResolve answers subject.SessionsResolve: the session of the key, created when
// missing; a different requested session id re-points the key.
func (s *Service) handleResolve(_ context.Context, data []byte, _ nats.Header) (any, error) {
	var req wire.SessionResolve
	if err := decode(data, &req); err != nil {
		return nil, err
	}
	key, err := sessionKey(req.SessionKey)
	if err != nil {
		return nil, err
	}
	if err := requestedID(req.SessionID); err != nil {
		return nil, err
	}
	unlock, err := s.lockLoaded()
	if err != nil {
		return nil, err
	}
	defer unlock()
	e, created, err := s.mutate(key, func(e *entry) (bool, error) {
		return s.assignID(e, req.SessionID)
	})
	if err != nil {
		return nil, err
	}
	return e.session(key, created), nil
}

// handleUpdate answers subject.SessionsUpdate: the fields that are not nil are set (an
// empty string removes an optional field), updatedAt is bumped.
func (s *Service) handleUpdate(_ context.Context, data []byte, _ nats.Header) (any, error) {
	var req wire.SessionUpdate
	if err := decode(data, &req); err != nil {
		return nil, err
	}
	key, unlock, err := s.lockKey(req.SessionKey)
	if err != nil {
		return nil, err
	}
	defer unlock()
	e, created, err := s.mutate(key, func(e *entry) (bool, error) {
		if _, err := s.assignID(e, ""); err != nil {
			return false, err
		}
		for _, f := range []struct{ src, dst *string }{
			{req.ThinkingLevel, &e.ThinkingLevel},
			{req.LastChannel, &e.LastChannel},
			{req.LastTo, &e.LastTo},
		} {
			if f.src != nil {
				*f.dst = *f.src
			}
		}
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	s.log.Debug("session updated", "session_key", key)
	return e.session(key, created), nil
}

// handleAppend answers subject.SessionsAppend: the messages are appended, in order, to the
// transcript of the key's session (resolved or created as by resolve), whose updatedAt is
// bumped.
func (s *Service) handleAppend(_ context.Context, data []byte, _ nats.Header) (any, error) {
	var req wire.TranscriptAppend
	if err := decode(data, &req); err != nil {
		return nil, err
	}
	key, err := sessionKey(req.SessionKey)
	if err != nil {
		return nil, err
	}
	if err := requestedID(req.SessionID); err != nil {
		return nil, err
	}
	if err := validateMessages(req.Messages, s.cfg.Now()); err != nil {
		return nil, err
	}
	unlock, err := s.lockLoaded()
	if err != nil {
		return nil, err
	}
	defer unlock()
	e, created, err := s.mutate(key, func(e *entry) (bool, error) {
		if _, err := s.assignID(e, req.SessionID); err != nil {
			return false, err
		}
		return true, usableID(key, e)
	})
	if err != nil {
		return nil, err
	}
	path := transcriptPath(s.cfg.Dir, e.SessionID)
	var before []schemas.ChatMessage
	if req.RunKey != "" {
		if before, err = runMessages(path, req.RunKey); err != nil {
			return nil, storageError(err, "session %q: %s", wire.Clip(key), err.Error())
		}
	}
	msgs := newOfRun(before, req.Messages)
	reply := wire.TranscriptAppended{Session: e.session(key, created), RunReply: runReply(before)}
	if len(msgs) == 0 {
		s.log.Debug("transcript append of a run repeated; nothing appended", "session_key", key, "run", req.RunKey)
		return reply, nil
	}
	start, size, repaired, err := appendTranscript(path, req.RunKey, msgs)
	if repaired > 0 {
		s.log.Warn("partial transcript line cut off", "session_key", key, "session_id", e.SessionID, "bytes", repaired)
	}
	if err != nil {
		s.log.Error("appending to transcript failed", "session_key", key, "session_id", e.SessionID, "err", err)
		return nil, storageError(err, "session %q: %s", wire.Clip(key), err.Error())
	}
	s.stats.appended(path, start, size, msgs)
	s.log.Debug("transcript appended", "session_key", key, "messages", len(msgs))
	return reply, nil
}

// runReply is the last assistant message of msgs, or nil.
func runReply(msgs []schemas.ChatMessage) *schemas.ChatMessage {
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].Role == roleAssistant {
			return &msgs[i]
		}
	}
	return nil
}

// newOfRun returns the messages of msgs whose role is not among those a run appended
// before: a run's user message and its reply are each appended once.
func newOfRun(before, msgs []schemas.ChatMessage) []schemas.ChatMessage {
	if len(before) == 0 {
		return msgs
	}
	out := msgs[:0:0]
	for _, m := range msgs {
		if !slices.ContainsFunc(before, func(b schemas.ChatMessage) bool { return b.Role == m.Role }) {
			out = append(out, m)
		}
	}
	return out
}

// handleHistory answers subject.SessionsHistory: the newest Limit messages of the key's
// transcript, oldest first, trimmed from the oldest end to MaxBytes. A key without a session
// has no messages; nothing is created.
func (s *Service) handleHistory(_ context.Context, data []byte, _ nats.Header) (any, error) {
	var req wire.HistoryRequest
	if err := decode(data, &req); err != nil {
		return nil, err
	}
	key, err := sessionKey(req.SessionKey)
	if err != nil {
		return nil, err
	}
	if req.Limit < 0 || req.Limit > MaxHistoryLimit {
		return nil, wire.Invalid("limit %d out of range 1..%d (0 for %d)", req.Limit, MaxHistoryLimit, DefaultHistoryLimit)
	}
	if req.Limit == 0 {
		req.Limit = DefaultHistoryLimit
	}
	if req.MaxBytes < 0 {
		return nil, wire.Invalid("maxBytes %d is negative", req.MaxBytes)
	}
	unlock, err := s.lockLoaded()
	if err != nil {
		return nil, err
	}
	var e *entry
	if stored := s.st.entries[key]; stored != nil {
		e = stored.clone()
	}
	unlock()

	res := schemas.ChatHistoryResult{
		SessionKey:    key,
		Messages:      []schemas.ChatMessage{},
		ThinkingLevel: DefaultThinkingLevel,
	}
	if e == nil {
		return res, nil
	}
	res.SessionID = e.SessionID
	if e.ThinkingLevel != "" {
		res.ThinkingLevel = e.ThinkingLevel
	}
	if e.SessionID == "" {
		return res, nil
	}
	if err := usableID(key, e); err != nil {
		return nil, err
	}
	// Bound the reply by MaxBytes and by what the bus can carry: the budget for the messages
	// is what is left after the rest of the result.
	maxBytes := int(s.nc.MaxPayload())
	if req.MaxBytes > 0 && (maxBytes <= 0 || req.MaxBytes < maxBytes) {
		maxBytes = req.MaxBytes
	}
	budget := unbounded
	if maxBytes > 0 {
		base, err := json.Marshal(res)
		if err != nil {
			return nil, fmt.Errorf("encode history: %w", err)
		}
		budget = maxBytes - len(base)
	}
	// Read without the lock: appends are single writes per line, and a line still being
	// written is skipped as broken.
	msgs, err := readTranscript(transcriptPath(s.cfg.Dir, e.SessionID), req.Limit, budget, req.ExceptRun)
	if err != nil {
		s.log.Error("reading transcript failed", "session_key", key, "session_id", e.SessionID, "err", err)
		return nil, storageError(err, "session %q: %s", wire.Clip(key), err.Error())
	}
	res.Messages = msgs
	return res, nil
}
