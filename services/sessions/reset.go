package sessions

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/clawdis/clawdis/bus/subject"
	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/schemas"
)

// busyTimeout bounds the question to the agent service whether a session has runs.
const busyTimeout = 2 * time.Second

// handleReset answers sessions.reset (SPEC §6.11): the key gets a new session id, so its
// conversation starts afresh; the old transcript stays on disk, the thinking level and the
// last route are kept. While a run of the session is running or queued it is refused with
// INVALID_REQUEST: the agent service, which owns run state, is asked (subject.AgentBusy)
// while the store is locked, so no run can resolve the old session between that answer and
// the reset (a run resolves its session through this service before it uses it).
func (s *Service) handleReset(_ context.Context, data []byte, _ nats.Header) (any, error) {
	var p schemas.SessionsResetParams
	if err := decode(data, &p); err != nil {
		return nil, err
	}
	key, unlock, err := s.lockKey(p.SessionKey)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := s.checkIdle(key); err != nil {
		return nil, err
	}
	var old string
	e, _, err := s.mutate(key, func(e *entry) (bool, error) {
		old, e.SessionID = e.SessionID, ""
		_, err := s.assignID(e, "")
		return true, err
	})
	if err != nil {
		return nil, err
	}
	s.log.Info("session reset", "session_key", key, "old_session_id", old, "session_id", e.SessionID)
	return schemas.SessionsResetResult{SessionKey: key, SessionID: e.SessionID}, nil
}

// checkIdle asks the agent service for the runs of session key: INVALID_REQUEST when there
// are any, UNAVAILABLE (retryable) when it cannot tell. Without an agent service on the bus
// nothing runs.
func (s *Service) checkIdle(key string) error {
	body, err := json.Marshal(wire.SessionBusyRequest{SessionKey: key})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), busyTimeout)
	defer cancel()
	reply, err := s.nc.RequestMsgWithContext(ctx, &nats.Msg{Subject: subject.AgentBusy, Data: body})
	if errors.Is(err, nats.ErrNoResponders) {
		return nil
	}
	if err != nil {
		return wire.RequestError(subject.AgentBusy, err)
	}
	if werr := wire.ReplyError(reply); werr != nil {
		return werr
	}
	var busy wire.SessionBusy
	if err := json.Unmarshal(reply.Data, &busy); err != nil {
		return wire.Unavailable(false, "bad reply from %s: %s", subject.AgentBusy, err.Error())
	}
	if len(busy.RunIDs) > 0 {
		return wire.Invalid("a run of session %s is running (%s); abort it first",
			wire.Clip(key), wire.Clip(strings.Join(busy.RunIDs, ", ")))
	}
	return nil
}
