package autoreply

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/clawdis/clawdis/bus/subject"
	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/schemas"
	"github.com/clawdis/clawdis/services/internal/backoff"
)

// Bus request timeouts.
const (
	ackTimeout      = 10 * time.Second // agent run acknowledgement
	sendTimeout     = time.Minute      // one provider send
	typingTimeout   = 5 * time.Second
	sessionsTimeout = 5 * time.Second
)

// errRunFailed marks a run the agent finished with an error (or timeout): logged as a
// warning, nothing is sent to the chat.
var errRunFailed = errors.New("agent run failed")

// process answers one message and says what it came to (and why, for anything but
// answered). first is its first delivery: only then does a direct chat become the main
// session's last route (a redelivered message is older than what may have arrived since).
func (s *Service) process(ctx context.Context, log *slog.Logger, msg wire.InboundMessage, key string, first bool) (outcome, string) {
	if msg.ChatType == chatDirect && first {
		s.updateRoute(ctx, log, msg)
	}
	t := &typer{s: s, log: log, provider: msg.Provider, chat: msg.ChatID}
	res, err := s.runAgent(ctx, log, msg, key, t)
	t.stop()
	switch {
	case err != nil && ctx.Err() != nil:
		return interrupted, ""
	case errors.Is(err, errRunFailed):
		log.Warn("agent run failed; no reply sent", "err", err)
		return notAnswered, "agent run failed"
	case err != nil:
		return retryLater, "agent unavailable: " + err.Error()
	case res.Status == schemas.RunAborted:
		return notAnswered, "agent run aborted" // nothing is delivered for an aborted run (SPEC §6.9)
	case strings.TrimSpace(res.Text) == "":
		return notAnswered, "agent reply is empty"
	}
	err = s.sendReply(ctx, log, msg, key, strings.TrimSpace(res.Text))
	var werr *wire.Error
	switch {
	case err == nil:
		return answered, ""
	case ctx.Err() != nil:
		return interrupted, ""
	case errors.As(err, &werr) && werr.Retryable:
		return retryLater, "reply not delivered: " + err.Error()
	default:
		log.Warn("reply not delivered", "err", err)
		return notAnswered, "reply not delivered: " + err.Error()
	}
}

// updateRoute records the chat as the main session's last route, so that a later
// "agent --deliver" reaches it. Failures are logged and otherwise ignored.
func (s *Service) updateRoute(ctx context.Context, log *slog.Logger, msg wire.InboundMessage) {
	ctx, cancel := context.WithTimeout(ctx, sessionsTimeout)
	defer cancel()
	upd := wire.SessionUpdate{SessionKey: s.cfg.MainKey, LastChannel: &msg.Provider, LastTo: &msg.ChatID}
	if err := wire.RequestJSON(ctx, s.nc, subject.SessionsUpdate, upd, nil); err != nil {
		log.Warn("last route not updated", "err", err)
	}
}

// runAgent starts the run of msg with key and waits for its final. A final with a retryable error, or
// one without a payload (a run the agent does not know, lost in its own restart), starts
// the run again with the same key, up to RetryAttempts runs. Typing is shown from the acknowledgement on.
func (s *Service) runAgent(ctx context.Context, log *slog.Logger, msg wire.InboundMessage, key string, t *typer) (schemas.AgentResult, error) {
	params := wire.AgentRunRequest{
		AgentParams: schemas.AgentParams{
			Message:        s.cfg.envelope(msg),
			To:             msg.ChatID,
			SessionKey:     s.cfg.sessionKey(msg),
			Channel:        msg.Provider,
			Timeout:        s.cfg.runTimeoutSeconds(),
			IdempotencyKey: key,
		},
		Origin: &wire.RunOrigin{Channel: msg.Provider, Sender: cmp.Or(msg.FromName, msg.From)},
	}
	for run := 1; ; run++ {
		fin, err := s.startRun(ctx, log, params, t)
		if err != nil {
			return schemas.AgentResult{}, err
		}
		var res schemas.AgentResult
		if len(fin.Payload) > 0 {
			if err := json.Unmarshal(fin.Payload, &res); err != nil && fin.OK {
				return res, fmt.Errorf("%w: malformed final payload: %w", errRunFailed, err)
			}
		}
		if fin.OK {
			return res, nil
		}
		ferr := cmp.Or(fin.Error, wire.Unavailable(false, "the run ended without a result"))
		// A final without a payload is a run the agent does not know (lost in its restart):
		// nothing ran, so it is run again like a retryable failure.
		if !ferr.Retryable && len(fin.Payload) > 0 {
			return res, fmt.Errorf("%w: %w", errRunFailed, ferr)
		}
		if run >= s.cfg.RetryAttempts {
			return res, fmt.Errorf("agent run: gave up after %d runs: %w", run, ferr)
		}
		wait := s.cfg.backoff(run)
		log.Warn("agent run ended with a retryable error; running it again", "runs", run,
			"retry_in", wait, "err", ferr)
		if err := backoff.Sleep(ctx, wait); err != nil {
			return res, err
		}
	}
}

// startRun asks the agent for the run and waits for its final event; the run is watched
// before it is asked for, so its final cannot be missed. A run of that key that had already
// finished is answered with its final at once. Typing is shown from the acknowledgement on.
func (s *Service) startRun(ctx context.Context, log *slog.Logger, params wire.AgentRunRequest, t *typer) (wire.RunFinal, error) {
	w := s.runs.Watch(params.IdempotencyKey)
	defer w.Stop()
	reply, err := s.requestMsg(ctx, log, "agent run", subject.AgentRun, ackTimeout, params)
	if err != nil {
		return wire.RunFinal{}, err
	}
	var fin wire.RunFinal
	if reply.Header.Get(wire.HeaderRunFinal) != "" {
		if err := json.Unmarshal(reply.Data, &fin); err != nil {
			return fin, fmt.Errorf("agent run: malformed final: %w", err)
		}
		return fin, nil
	}
	log.Debug("agent run accepted", "session_key", params.SessionKey)
	t.start(ctx)
	return w.Wait(ctx)
}

// sendReply sends text to the message's chat with the run's reply key.
func (s *Service) sendReply(ctx context.Context, log *slog.Logger, msg wire.InboundMessage, key, text string) error {
	if msg.ToSelf {
		s.echo.expectText(msg.Provider, msg.ChatID, text)
	}
	params := schemas.SendParams{To: msg.ChatID, Message: text, Provider: msg.Provider, IdempotencyKey: replyKey(key)}
	var res schemas.SendResult
	if err := s.request(ctx, log, "reply send", s.send[msg.Provider], sendTimeout, params, &res); err != nil {
		return err
	}
	s.echo.sent(msg.Provider, msg.ChatID, res.MessageID)
	log.Info("reply sent", "message_id", res.MessageID, "chars", len(text))
	return nil
}

// request sends one bus request with requestMsg and decodes the reply into out (when
// out is not nil).
func (s *Service) request(ctx context.Context, log *slog.Logger, op, subj string, timeout time.Duration, in, out any) error {
	reply, err := s.requestMsg(ctx, log, op, subj, timeout, in)
	if err != nil || out == nil {
		return err
	}
	if err := json.Unmarshal(reply.Data, out); err != nil {
		return fmt.Errorf("%s: bad reply: %w", op, err)
	}
	return nil
}

// requestMsg sends one bus request, retrying retryable failures (nobody answers, a
// deadline, a provider not connected) with backoff up to RetryAttempts attempts, and
// returns the reply. It returns ctx's error when ctx ends.
func (s *Service) requestMsg(ctx context.Context, log *slog.Logger, op, subj string, timeout time.Duration, in any) (*nats.Msg, error) {
	data, err := json.Marshal(in)
	if err != nil {
		return nil, fmt.Errorf("%s: encode: %w", op, err)
	}
	for attempt := 1; ; attempt++ {
		rctx, cancel := context.WithTimeout(ctx, timeout)
		reply, err := wire.RequestMsg(rctx, s.nc, &nats.Msg{Subject: subj, Data: data})
		cancel()
		if err == nil {
			return reply, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var werr *wire.Error
		if !errors.As(err, &werr) || !werr.Retryable {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		if attempt >= s.cfg.RetryAttempts {
			return nil, fmt.Errorf("%s: gave up after %d attempts: %w", op, attempt, err)
		}
		wait := s.cfg.backoff(attempt)
		log.Warn(op+" failed; retrying", "attempt", attempt, "retry_in", wait, "err", err)
		if err := backoff.Sleep(ctx, wait); err != nil {
			return nil, err
		}
	}
}

// typer shows the typing indicator in a chat while a run goes on, refreshing it every
// TypingInterval. It is owned by one worker: start and stop are called from it only.
type typer struct {
	s              *Service
	log            *slog.Logger
	provider, chat string
	cancel         context.CancelFunc
	done           chan struct{}
}

// start turns typing on and keeps it on until stop; later calls do nothing.
func (t *typer) start(ctx context.Context) {
	if t.done != nil {
		return
	}
	ctx, t.cancel = context.WithCancel(ctx)
	t.done = make(chan struct{})
	go func() {
		defer close(t.done)
		tick := time.NewTicker(t.s.cfg.TypingInterval)
		defer tick.Stop()
		for {
			t.set(ctx, true)
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
}

// stop ends the refresh and turns typing off (when it was turned on).
func (t *typer) stop() {
	if t.done == nil {
		return
	}
	t.cancel()
	<-t.done
	// Off is sent even when the service stops, so no chat is left "typing"; briefly, so a
	// provider that does not answer cannot hold up the stop.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	t.set(ctx, false)
}

// set sends one typing request; failures are only logged at debug level.
func (t *typer) set(ctx context.Context, on bool) {
	ctx, cancel := context.WithTimeout(ctx, typingTimeout)
	defer cancel()
	req := wire.TypingRequest{ChatID: t.chat, On: on}
	if err := wire.RequestJSON(ctx, t.s.nc, t.s.typing[t.provider], req, nil); err != nil && ctx.Err() == nil {
		t.log.Debug("typing request failed", "on", on, "err", err)
	}
}
