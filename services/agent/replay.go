package agent

import (
	"context"
	"encoding/json"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/clawdis/clawdis/bus/subject"
	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/schemas"
	"github.com/clawdis/clawdis/services/internal/idem"
)

// replay is a handler's answer followed by work done once the answer is sent.
type replay struct {
	answer any
	after  func()
}

// replayHandler is wire.Handler for a handler that may answer with a replay: its answer is
// sent first, then its after runs, so that what after publishes follows the reply on the
// bus.
func replayHandler(name string, fn wire.HandlerFunc) micro.Handler {
	return micro.HandlerFunc(func(req micro.Request) {
		var after func()
		wire.Handler(name, func(ctx context.Context, data []byte, hdr nats.Header) (any, error) {
			out, err := fn(ctx, data, hdr)
			if r, ok := out.(replay); ok {
				after = r.after
				return r.answer, err
			}
			return out, err
		}).Handle(req)
		if after != nil {
			after()
		}
	})
}

// replayChat publishes the final chat event of the finished chat turn j again, from its
// remembered final r: the event as it was published, or, for a record an earlier version
// wrote (an agent result), one built from it.
func (s *Service) replayChat(j *job, r idem.Result) {
	var ev schemas.ChatEventPayload
	data := []byte(r.Payload)
	if json.Unmarshal(r.Payload, &ev) != nil || ev.State == "" {
		var res schemas.AgentResult
		_ = json.Unmarshal(r.Payload, &res)
		ev = schemas.ChatEventPayload{RunID: j.runID, SessionKey: j.sessionKey, Seq: 1, State: chatFinal}
		if r.OK {
			m := assistantMessage(res.Text, s.cfg.Now())
			ev.Message = &m
		} else {
			ev.State = chatError
			if r.Error != nil {
				ev.ErrorMessage = r.Error.Message
			}
		}
		data = mustJSON(ev)
	}
	s.log.Debug("chat turn repeated; final replayed", "run_id", j.runID, "state", ev.State)
	s.publishRun(subject.ChatRunEvents(j.runID), j.runID, wire.RunEventChat, data)
}
