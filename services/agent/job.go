package agent

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/schemas"
	"github.com/clawdis/clawdis/services/internal/idem"
)

// kind tells agent runs from chat.send turns; they have separate idempotency keys.
type kind int

const (
	kindAgent kind = iota
	kindChat
)

// Idempotency key prefixes of the two kinds.
const (
	agentKeyPrefix = "agent:"
	chatKeyPrefix  = "chat:"
)

// Delivery channels.
const (
	channelLast     = "last"
	channelWhatsApp = "whatsapp"
	channelTelegram = "telegram"
	channelWebChat  = "webchat"
)

// errRunTimeout is the cause of a run context whose deadline passed.
var errRunTimeout = errors.New("agent run deadline exceeded")

// errAborted is the cause of a run context that chat.abort ended.
var errAborted = errors.New("agent run aborted")

// job is one accepted run.
type job struct {
	kind       kind
	key        string // idempotency key: kind prefix + runID
	runID      string
	sessionKey string
	sessionID  string // requested session id, or ""
	message    string
	images     []schemas.ChatContent
	thinking   string // requested level; "" when not given
	deliver    bool
	channel    string
	to         string
	timeout    time.Duration
	accepted   time.Time
	deadline   time.Time       // accepted plus timeout
	seq        uint64          // the stored run's stream sequence: acceptance order
	origin     *wire.RunOrigin // the provider message the run answers, or nil
	msg        jetstream.Msg   // the run's newest delivery from the stream (under Service.mu)

	ctx    context.Context
	cancel context.CancelFunc
	abort  context.CancelCauseFunc // ends ctx with errAborted (chat.abort)
	prev   <-chan struct{}         // closed when the previous run of the session left its turn
	turn   chan struct{}           // closed when this run left its turn
	done   chan struct{}           // closed once final is set
	acked  chan struct{}           // closed once the final delivery is acknowledged
	final  idem.Result
}

// agentJob validates agent params into a job; origin is the provider message it answers,
// or nil.
func (s *Service) agentJob(p schemas.AgentParams, origin *wire.RunOrigin) (*job, error) {
	if p.IdempotencyKey == "" {
		return nil, wire.Invalid("idempotencyKey required")
	}
	if strings.TrimSpace(p.Message) == "" {
		return nil, wire.Invalid("message required")
	}
	level, _, ok := normalizeThinking(p.Thinking)
	if !ok {
		return nil, wire.Invalid("invalid thinking level %q (use %s)", wire.Clip(p.Thinking), levelList)
	}
	switch p.Channel {
	case "", channelLast, channelWhatsApp, channelTelegram, channelWebChat:
	default:
		return nil, wire.Invalid("invalid channel %q (use last, whatsapp, telegram or webchat)", wire.Clip(p.Channel))
	}
	timeout := s.cfg.Timeout
	if p.Timeout != nil {
		// Checked before the conversion, which would overflow for huge values.
		if *p.Timeout < 1 || *p.Timeout > int64(MaxTimeout/time.Second) {
			return nil, wire.Invalid("timeout must be between 1 and %d seconds", int64(MaxTimeout/time.Second))
		}
		timeout = time.Duration(*p.Timeout) * time.Second
	}
	key := p.SessionKey
	if key == "" {
		key = s.cfg.MainKey
	}
	return &job{
		kind: kindAgent, key: agentKeyPrefix + p.IdempotencyKey, runID: p.IdempotencyKey,
		sessionKey: key, sessionID: p.SessionID, message: p.Message, thinking: level,
		deliver: p.Deliver, channel: p.Channel, to: strings.TrimSpace(p.To), timeout: timeout,
		origin: origin,
	}, nil
}

// chatJob validates chat.send params into a job.
func (s *Service) chatJob(p schemas.ChatSendParams) (*job, error) {
	if p.IdempotencyKey == "" {
		return nil, wire.Invalid("idempotencyKey required")
	}
	if p.SessionKey == "" {
		return nil, wire.Invalid("sessionKey required")
	}
	level, _, ok := normalizeThinking(p.Thinking)
	if !ok {
		return nil, wire.Invalid("invalid thinking level %q (use %s)", wire.Clip(p.Thinking), levelList)
	}
	images, err := imageParts(p.Attachments)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(p.Message) == "" && len(images) == 0 {
		return nil, wire.Invalid("message or an attachment required")
	}
	timeout := s.cfg.Timeout
	if p.TimeoutMs != nil {
		if *p.TimeoutMs < 1 || *p.TimeoutMs > MaxTimeout.Milliseconds() {
			return nil, wire.Invalid("timeoutMs must be between 1 and %d", MaxTimeout.Milliseconds())
		}
		timeout = time.Duration(*p.TimeoutMs) * time.Millisecond
	}
	return &job{
		kind: kindChat, key: chatKeyPrefix + p.IdempotencyKey, runID: p.IdempotencyKey,
		sessionKey: p.SessionKey, message: p.Message, images: images, thinking: level,
		timeout: timeout,
	}, nil
}

// startLocked queues the delivered run j behind the newest run of its session and starts
// its goroutine. s.mu must be held and the service not stopped.
func (s *Service) startLocked(j *job) {
	base, abort := context.WithCancelCause(s.runCtx)
	ctx, cancel := context.WithDeadlineCause(base, j.deadline, errRunTimeout)
	j.ctx, j.abort = ctx, abort
	j.cancel = func() { cancel(); abort(context.Canceled) }
	j.turn, j.done, j.acked = make(chan struct{}), make(chan struct{}), make(chan struct{})
	if prev, ok := s.lanes[j.sessionKey]; ok {
		j.prev = prev
	} else {
		closed := make(chan struct{})
		close(closed)
		j.prev = closed
	}
	s.lanes[j.sessionKey] = j.turn
	s.runs[j.key] = j
	select {
	case s.holding <- struct{}{}:
	default:
	}
	s.deliveredLocked(j.key)
	s.wg.Add(1)
	go s.execute(j)
	if j.kind == kindAgent {
		s.wg.Add(1)
		go s.heartbeat(j)
	}
	s.log.Debug("run started", "run_id", j.runID, "session_key", j.sessionKey, "timeout", j.timeout)
}

// execute runs j to its final, stores it and then publishes the run's closing events (so
// that a repeat which saw them finds the final remembered) and acknowledges its delivery,
// then leaves its session's turn once the previous run did, so that a later run never
// overtakes an earlier one of the same session. A run the service's stop ended has no
// final: it stays held, for Run to hand it back to the stream.
func (s *Service) execute(j *job) {
	defer s.wg.Done()
	r, closing, ok := s.perform(j)
	if ok {
		r = s.finish(j, r)
		closing()
		if j.kind == kindAgent {
			s.publishFinal(j, r)
		}
		s.ack(j)
		s.release(j)
	}
	j.cancel()
	<-j.prev
	s.mu.Lock()
	close(j.turn)
	if s.lanes[j.sessionKey] == (<-chan struct{})(j.turn) {
		delete(s.lanes, j.sessionKey)
	}
	s.mu.Unlock()
}

// perform waits for j's turn and a free slot, runs it and returns its final and the
// function that publishes its closing events; ok is false when the service's stop ended the
// run (it has no final then).
func (s *Service) perform(j *job) (r idem.Result, closing func(), ok bool) {
	ev := s.newEmitter(j)
	select {
	case <-j.prev:
	case <-j.ctx.Done():
		return s.conclude(j, ev, "", j.ctx.Err())
	}
	select {
	case s.sem <- struct{}{}:
	case <-j.ctx.Done():
		return s.conclude(j, ev, "", j.ctx.Err())
	}
	ev.jobStarted()
	text, err := s.pipeline(j, ev)
	r, publish, ok := s.conclude(j, ev, text, err)
	if !ok {
		<-s.sem
		return r, nil, false
	}
	// The slot is the run's until its closing events are out: the next run starts after.
	return r, func() { publish(); <-s.sem }, true
}

// conclude turns the outcome of a run into its final and the function that publishes its
// closing events: the chat final, error or aborted event, then the job event, always a run's
// last. A chat turn's final carries that chat event, which a repeat replays. A run that
// failed because chat.abort ended it is aborted: ok, with the text so far. A run that failed
// because the service stops has no final (ok false): it runs again from the start.
func (s *Service) conclude(j *job, ev *emitter, text string, err error) (idem.Result, func(), bool) {
	d := time.Since(j.accepted)
	if handedBackRun(j, err) {
		s.log.Info("run interrupted by the service's stop; it runs again", "run_id", j.runID, "session_key", j.sessionKey)
		return idem.Result{}, nil, false
	}
	if err == nil {
		ev.chatFinal(text)
		s.log.Info("run done", "run_id", j.runID, "session_key", j.sessionKey, "duration_ms", d.Milliseconds())
		return s.withChat(j, ev, okResult(j.runID, text)), func() { ev.publishLastChat(); ev.jobDone(d) }, true
	}
	if aborted(j.ctx) {
		text := ev.partial()
		ev.chatAborted(text)
		s.log.Info("run aborted", "run_id", j.runID, "session_key", j.sessionKey, "chars", len(text),
			"duration_ms", d.Milliseconds())
		return s.withChat(j, ev, abortedResult(j.runID, text)), func() { ev.publishLastChat(); ev.jobAborted(d) }, true
	}
	var r idem.Result
	switch {
	case errors.Is(context.Cause(j.ctx), errRunTimeout):
		r = timeoutResult(j.runID, j.timeout)
	default:
		// Every other failure is UNAVAILABLE (SPEC §6.6), retryable when its cause was, but
		// for a delivery to an unlinked WhatsApp, which stays NOT_LINKED (SPEC §6.5).
		werr := wire.Unavailable(false, "%s", err.Error())
		var cause *wire.Error
		if errors.As(err, &cause) {
			werr = wire.Unavailable(cause.Retryable, "%s", cause.Message)
			if cause.Code == wire.CodeNotLinked {
				werr.Code = wire.CodeNotLinked
			}
		}
		r = errorResult(j.runID, werr)
	}
	msg := r.Error.Message
	ev.chatError(msg)
	s.log.Warn("run failed", "run_id", j.runID, "session_key", j.sessionKey, "code", r.Error.Code,
		"err", msg, "duration_ms", d.Milliseconds())
	return s.withChat(j, ev, r), func() { ev.publishLastChat(); ev.jobError(msg, d) }, true
}

// withChat makes a chat turn's final carry its final or error chat event.
func (s *Service) withChat(j *job, ev *emitter, r idem.Result) idem.Result {
	if j.kind == kindChat {
		r.Payload = ev.lastChat
	}
	return r
}

// maxRecent caps the finals kept in memory that idem does not remember.
const maxRecent = 1000

// finish records j's final: in the idempotency records (unless it is a retryable failure),
// else, and when the records could not be written, in memory for agent.status; it returns
// the final. The run stays held until release.
func (s *Service) finish(j *job, r idem.Result) idem.Result {
	if r.At == 0 {
		r.At = s.cfg.Now().UnixMilli()
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	err := s.idem.Finish(ctx, j.key, r)
	cancel()
	if err != nil {
		s.log.Error("idempotency record not stored: a repeat of this run will run it again", "run_id", j.runID, "err", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !r.Remembered() || err != nil {
		s.recent.Put(j.key, r, s.cfg.Now())
	}
	j.final = r
	close(j.done)
	return r
}

// aborted reports whether chat.abort ended the run context ctx.
func aborted(ctx context.Context) bool { return errors.Is(context.Cause(ctx), errAborted) }

// recentTTL is how long a final idem does not remember stays available to agent.status.
const recentTTL = 5 * time.Minute
