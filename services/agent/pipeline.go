package agent

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/clawdis/clawdis/bus/subject"
	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/schemas"
)

// Bounds of the bus requests a run makes (within the run's own deadline).
const (
	sessionsTimeout = 10 * time.Second
	drainTimeout    = 2 * time.Second
	deliverTimeout  = 60 * time.Second
	// historyMaxBytes keeps the history reply under the bus's 1 MiB payload limit.
	historyMaxBytes = 900 << 10
)

// pipeline runs one turn: session, settings, system events, history, transcript, the
// backend, and delivery. It returns the reply text.
func (s *Service) pipeline(j *job, ev *emitter) (string, error) {
	ctx := j.ctx
	var sess wire.Session
	err := s.request(ctx, sessionsTimeout, subject.SessionsResolve,
		wire.SessionResolve{SessionKey: j.sessionKey, SessionID: j.sessionID}, &sess, "resolve session "+strconv.Quote(wire.Clip(j.sessionKey)))
	if err != nil {
		return "", err
	}
	level := j.thinking
	if level == "" {
		if l, explicit, ok := normalizeThinking(sess.ThinkingLevel); ok && explicit {
			level = l
		} else {
			level = s.cfg.ThinkingDefault
		}
	}
	s.updateSession(ctx, j, sess)

	events := s.drainSystemEvents(ctx, j)
	consumed := false
	defer func() {
		if !consumed {
			s.requeueSystemEvents(ctx, j, events)
		}
	}()
	t := &turn{RunID: j.runID, SessionKey: j.sessionKey, SessionID: sess.SessionID, Prompt: systemLines(events) + j.message,
		Images: j.images, From: j.to, Thinking: level,
		Reply: newReplyBuffer(s.cfg.MaxReplyBytes, textBudget(s.frameLimit(), j.runID, j.sessionKey))}
	if s.backend.wantsHistory() {
		var h schemas.ChatHistoryResult
		req := wire.HistoryRequest{SessionKey: j.sessionKey, Limit: s.cfg.HistoryLimit, MaxBytes: historyMaxBytes, ExceptRun: j.key}
		if err := s.request(ctx, sessionsTimeout, subject.SessionsHistory, req, &h, "read history of "+strconv.Quote(wire.Clip(j.sessionKey))); err != nil {
			return "", err
		}
		t.History = h.Messages
	}
	stored, err := s.appendTranscript(ctx, j, sess, inputMessage(j, s.cfg.Now()))
	if err != nil {
		return "", err
	}
	if text, ok := storedReply(stored); ok {
		// The run ran before a restart and stored its reply: it goes on with that reply
		// (delivered, if it must be, under the same idempotency key) instead of a new one.
		s.log.Info("run goes on with the reply it stored before", "run_id", j.runID, "session_key", j.sessionKey)
		ev.output(output{Text: text}, time.Now())
		return s.afterReply(ctx, j, sess, text)
	}

	text, err := s.stream(ctx, t, ev)
	var notStarted *notStartedError
	// A turn the backend never started did not consume the events; neither did one that a
	// stopping service interrupts: the run goes back to the stream and runs again from the
	// start, and its next attempt must see them.
	consumed = !errors.As(err, &notStarted) && !handedBackRun(j, err)
	if err != nil {
		if aborted(ctx) {
			s.keepPartial(ctx, j, sess, ev.partial())
		}
		return "", err
	}
	if text != "" {
		// A reply that could not be stored fails the run (UNAVAILABLE, retryable when the
		// storage failure is): it never reports ok, and it is not delivered (SPEC §13).
		if _, err := s.appendTranscript(ctx, j, sess, assistantMessage(text, s.cfg.Now())); err != nil {
			return "", err
		}
	}
	return s.afterReply(ctx, j, sess, text)
}

// storedReply is the text of the reply a run stored in the transcript before it was
// interrupted, if it stored one (an aborted partial reply does not count).
func storedReply(m *schemas.ChatMessage) (string, bool) {
	if m == nil || m.Aborted {
		return "", false
	}
	var b strings.Builder
	for _, c := range m.Content {
		if c.Type == "text" {
			b.WriteString(c.Text)
		}
	}
	return b.String(), b.Len() > 0
}

// afterReply delivers the stored reply text of j when it must be and returns it.
func (s *Service) afterReply(ctx context.Context, j *job, sess wire.Session, text string) (string, error) {
	if j.kind == kindAgent && j.deliver {
		if err := s.deliver(ctx, j, sess, text); err != nil {
			return "", err
		}
	}
	return text, nil
}

// frameLimit is the largest event or final a run may publish: a client frame
// (Config.MaxPayload), and never more than the bus carries.
func (s *Service) frameLimit() int {
	if bus := s.nc.MaxPayload(); bus > 0 && bus < int64(s.cfg.MaxPayload) {
		return int(bus)
	}
	return s.cfg.MaxPayload
}

// inputMessage is the transcript message of the turn's input (without system lines); a
// message that came from a provider keeps its channel and sender.
func inputMessage(j *job, now time.Time) schemas.ChatMessage {
	content := []schemas.ChatContent{}
	if j.message != "" {
		content = append(content, schemas.ChatContent{Type: "text", Text: j.message})
	}
	content = append(content, j.images...)
	m := schemas.ChatMessage{Role: "user", Content: content, Timestamp: now.UnixMilli()}
	if j.origin != nil {
		m.Channel, m.Sender = j.origin.Channel, j.origin.Sender
	}
	return m
}

// keepPartial appends the text an aborted run produced to the transcript, marked aborted
// (nothing when there is none). The run's context has ended: the append gets its own
// bound. A failure is logged; the run ends aborted all the same.
func (s *Service) keepPartial(ctx context.Context, j *job, sess wire.Session, text string) {
	if text == "" {
		return
	}
	m := assistantMessage(text, s.cfg.Now())
	m.Aborted = true
	if _, err := s.appendTranscript(context.WithoutCancel(ctx), j, sess, m); err != nil {
		s.log.Warn("partial reply of an aborted run not stored", "run_id", j.runID, "session_key", j.sessionKey, "err", err)
	}
}

// updateSession stores a requested thinking level and the session's last route: for a
// direct agent turn with a provider channel and recipient, that route; for chat.send on
// the main key, webchat. A failure is logged; the run goes on.
func (s *Service) updateSession(ctx context.Context, j *job, sess wire.Session) {
	upd := wire.SessionUpdate{SessionKey: j.sessionKey}
	changed := false
	if j.thinking != "" && j.thinking != sess.ThinkingLevel {
		upd.ThinkingLevel, changed = &j.thinking, true
	}
	switch {
	case j.kind == kindAgent && (j.channel == channelWhatsApp || j.channel == channelTelegram) && j.to != "":
		if sess.LastChannel != j.channel || sess.LastTo != j.to {
			upd.LastChannel, upd.LastTo, changed = &j.channel, &j.to, true
		}
	case j.kind == kindChat && j.sessionKey == s.cfg.MainKey && sess.LastChannel != channelWebChat:
		ch := channelWebChat
		upd.LastChannel, changed = &ch, true
	}
	if !changed {
		return
	}
	if err := s.request(ctx, sessionsTimeout, subject.SessionsUpdate, upd, nil, "update session "+strconv.Quote(wire.Clip(j.sessionKey))); err != nil {
		s.log.Warn("session not updated", "run_id", j.runID, "session_key", j.sessionKey, "err", err)
	}
}

// drainSystemEvents takes the queued system events for a main-session turn, oldest first.
// Without a presence service there are none.
func (s *Service) drainSystemEvents(ctx context.Context, j *job) []string {
	if j.sessionKey != s.cfg.MainKey {
		return nil
	}
	var q wire.SystemEventQueue
	if err := s.request(ctx, drainTimeout, subject.PresenceDrain, struct{}{}, &q, "drain system events"); err != nil {
		s.log.Debug("no system events drained", "run_id", j.runID, "err", err)
		return nil
	}
	return q.Events
}

// requeueSystemEvents puts drained system events back at the front of the queue when the
// turn failed before they reached the agent, so the next turn gets them. A failure is
// logged: the events are lost then.
func (s *Service) requeueSystemEvents(ctx context.Context, j *job, events []string) {
	if len(events) == 0 {
		return
	}
	ctx = context.WithoutCancel(ctx)
	err := s.request(ctx, drainTimeout, subject.PresenceRequeue, wire.SystemEventQueue{Events: events}, nil, "requeue system events")
	if err != nil {
		s.log.Warn("drained system events lost", "run_id", j.runID, "events", len(events), "err", err)
		return
	}
	s.log.Debug("system events requeued", "run_id", j.runID, "events", len(events))
}

// systemLines returns one "System: <text>" line per system event, its whitespace folded.
func systemLines(events []string) string {
	var b strings.Builder
	for _, e := range events {
		e = strings.Join(strings.Fields(e), " ")
		if e != "" {
			b.WriteString("System: " + e + "\n")
		}
	}
	return b.String()
}

// appendTranscript appends m to the transcript of j's session under j's key: a run that runs
// again after a restart appends each of its messages once (wire.TranscriptAppend RunKey).
// It returns the reply the run stored before, if any.
func (s *Service) appendTranscript(ctx context.Context, j *job, sess wire.Session, m schemas.ChatMessage) (*schemas.ChatMessage, error) {
	req := wire.TranscriptAppend{SessionKey: j.sessionKey, SessionID: sess.SessionID, Messages: []schemas.ChatMessage{m}, RunKey: j.key}
	var res wire.TranscriptAppended
	err := s.request(ctx, sessionsTimeout, subject.SessionsAppend, req, &res, "append to the transcript of "+strconv.Quote(wire.Clip(j.sessionKey)))
	return res.RunReply, err
}

// deliver sends the reply through the provider of the run's route; a run without a
// provider route (webchat, or nothing known) delivers nothing.
func (s *Service) deliver(ctx context.Context, j *job, sess wire.Session, text string) error {
	provider, to := deliveryTarget(j.channel, j.to, sess)
	if provider == "" || text == "" {
		s.log.Info("reply not delivered: no provider route or no text", "run_id", j.runID,
			"channel", j.channel, "last_channel", sess.LastChannel)
		return nil
	}
	subj, err := subject.ProviderSend(provider)
	if err != nil {
		return wire.Unavailable(false, "deliver via %s: %s", provider, err.Error())
	}
	params := schemas.SendParams{To: to, Message: text, Provider: provider, IdempotencyKey: j.runID + ":deliver"}
	var res schemas.SendResult
	if err := s.request(ctx, deliverTimeout, subj, params, &res, "deliver via "+provider); err != nil {
		return err
	}
	s.log.Info("reply delivered", "run_id", j.runID, "provider", provider, "message_id", res.MessageID)
	return nil
}

// deliveryTarget picks the provider and recipient: the channel (the session's last one
// for "last"), and the explicit recipient, else the session's last one on that provider.
// It returns empty strings when there is nothing to deliver to.
func deliveryTarget(channel, to string, sess wire.Session) (provider, recipient string) {
	provider = channel
	if channel == "" || channel == channelLast {
		provider = sess.LastChannel
	}
	if provider != channelWhatsApp && provider != channelTelegram {
		return "", ""
	}
	if to == "" && sess.LastChannel == provider {
		to = sess.LastTo
	}
	if to == "" {
		return "", ""
	}
	return provider, to
}

// request makes a bus request bounded by limit and returns a failure as a *wire.Error
// whose message starts with op.
func (s *Service) request(ctx context.Context, limit time.Duration, subj string, in, out any, op string) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	err := wire.RequestJSON(ctx, s.nc, subj, in, out)
	if err == nil {
		return nil
	}
	var werr *wire.Error
	if !errors.As(err, &werr) {
		return wire.Unavailable(false, "%s: %s", op, err.Error())
	}
	return &wire.Error{Code: werr.Code, Message: op + ": " + werr.Message, Retryable: werr.Retryable}
}

// stream runs the backend and publishes its progress until it returns; held-back chat
// deltas go out when due.
func (s *Service) stream(ctx context.Context, t *turn, ev *emitter) (string, error) {
	type result struct {
		text string
		err  error
	}
	out := make(chan output, 64)
	res := make(chan result, 1)
	go func() {
		text, err := s.backend.run(ctx, t, out)
		res <- result{text, err}
	}()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	var due <-chan time.Time // timer.C while a chat delta is held back
	arm := func(wait time.Duration) {
		if wait > 0 && due == nil {
			timer.Reset(wait)
			due = timer.C
		}
	}
	for {
		select {
		case o := <-out:
			arm(ev.output(o, time.Now()))
		case <-due:
			due = nil
			arm(ev.flush(time.Now()))
		case r := <-res:
			for {
				select {
				case o := <-out:
					ev.output(o, time.Now())
				default:
					return r.text, r.err
				}
			}
		}
	}
}
