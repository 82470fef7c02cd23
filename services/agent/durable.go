package agent

// Durable runs (SPEC §13 "Runs"). An accepted agent run or chat turn is stored in the
// JetStream work-queue stream of accepted runs (jsstore.RunsStream) before the request is
// acknowledged; the service runs only what its durable consumer of that stream delivers,
// and acknowledges a delivery only once the run's final is stored in the idempotency
// records and published. A stopped service hands the runs it holds back to the stream (Nak,
// in acceptance order), and a crashed one's come back after the consumer's AckWait: either
// way the next instance runs them again from the start, or ends at once with the timeout
// final those whose deadline passed. The run's transcript entries are appended under its
// key (wire.TranscriptAppend RunKey), which the sessions service appends once per role, and
// its delivery to a provider uses an idempotency key derived from the run id: both happen
// once however often the run starts, and a rerun that finds its reply stored goes on with
// it instead of asking the backend again.
//
// A service that starts while no other answers a ping takes over at once what a crashed
// one held (takeOver): every stored run is delivered again in acceptance order, so the
// turns of a session keep their order. With another copy running, a crashed copy's runs come
// back after the AckWait instead, and may then run after later turns of their session.

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"

	"github.com/clawdis/clawdis/bus/subject"
	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/schemas"
	"github.com/clawdis/clawdis/services/internal/backoff"
	"github.com/clawdis/clawdis/services/internal/jsstore"
)

// ConsumerName is the agent service's durable consumer of the stream of accepted runs.
const ConsumerName = "agent"

// Methods whose runs are stored, as the message ids name them.
const (
	methodAgent = "agent"
	methodChat  = "chat.send"
)

// queuedPerSlot is how many runs the consumer may hold (running or waiting for their turn)
// per run slot (Config.MaxConcurrent): the consumer's MaxAckPending.
const queuedPerSlot = 64

// maxStoreAttempts bounds the message ids tried for one acceptance (see store).
const maxStoreAttempts = 8

// errServiceStopped is the cause of the run contexts a stop of the service ends: such a
// run is not final, it is handed back to the stream.
var errServiceStopped = errors.New("agent service stopped")

// acceptedRun is what the stream stores of one accepted run.
type acceptedRun struct {
	Method     string          `json:"method"` // methodAgent or methodChat
	Params     json.RawMessage `json:"params"` // the request's body as the service got it
	AcceptedAt int64           `json:"acceptedAt"`
	Deadline   int64           `json:"deadline"` // unix ms: acceptance plus the timeout
}

// method names the method of j's request.
func (j *job) method() string {
	if j.kind == kindChat {
		return methodChat
	}
	return methodAgent
}

// consumerConfig is the durable consumer of the stream of accepted runs: explicit acks of
// final outcomes only, kept alive by progress reports while a run waits or runs.
func (s *Service) consumerConfig() jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       ConsumerName,
		Description:   "agent: runs accepted runs; acknowledges final outcomes only",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       s.cfg.RunAckWait,
		MaxDeliver:    -1, // a run's deadline bounds its attempts
		MaxAckPending: s.cfg.MaxConcurrent * queuedPerSlot,
		FilterSubject: subject.RunsAcceptedAll,
	}
}

// openRuns creates or updates the stream of accepted runs and the service's consumer.
func (s *Service) openRuns(ctx context.Context) (jetstream.Stream, jetstream.Consumer, error) {
	stream, cons, err := jsstore.RunsConsumer(ctx, s.nc, jsstore.Config{Replicas: s.cfg.Replicas, Log: s.log}, s.consumerConfig())
	if err != nil {
		return nil, nil, fmt.Errorf("agent: %w", err)
	}
	return stream, cons, nil
}

// takeOverTimeout bounds the ping that tells whether another agent service runs.
const takeOverTimeout = time.Second

// anotherAgent reports whether another agent service answers a ping. Run asks before it
// subscribes its own endpoints (after that, it would answer itself). A ping that fails for
// another reason than no responders counts as an answer: then nothing is taken over.
func (s *Service) anotherAgent(ctx context.Context) (bool, error) {
	ping, err := micro.ControlSubject(micro.PingVerb, subject.ServiceAgent, "")
	if err != nil {
		return false, fmt.Errorf("agent: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, takeOverTimeout)
	defer cancel()
	_, err = s.nc.RequestWithContext(pctx, ping, nil)
	return err == nil || !errors.Is(err, nats.ErrNoResponders), nil
}

// takeOver makes the runs that a crashed agent service held deliverable at once, in
// acceptance order, instead of after the consumer's AckWait: when the consumer has
// deliveries pending and no other agent service answered the ping before this one started
// (another is false; so none holds them), the consumer is created anew. Its pending
// deliveries are forgotten; the stream still holds every unfinished run, and the new
// consumer delivers them all from the first. It returns the consumer to use.
func (s *Service) takeOver(ctx context.Context, stream jetstream.Stream, cons jetstream.Consumer, another bool) (jetstream.Consumer, error) {
	info := cons.CachedInfo()
	if info == nil || info.NumAckPending == 0 {
		return cons, nil
	}
	if another {
		s.log.Info("runs held by another agent service; they come back after the ack wait if it is gone",
			"held", info.NumAckPending, "ack_wait", s.cfg.RunAckWait)
		return cons, nil
	}
	if err := stream.DeleteConsumer(ctx, ConsumerName); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil, fmt.Errorf("agent: take over the runs of a stopped agent service: %w", err)
	}
	s.log.Info("taking over the runs of an agent service that is gone", "held", info.NumAckPending)
	_, cons, err := s.openRuns(ctx)
	return cons, err
}

// consume hands the consumer's deliveries to take until stop is closed; then it drains the
// deliveries already pulled (take hands them back) and returns. When the consumer is lost
// (the stream or the consumer was deleted) it is created again, until stop is closed.
// started is closed once it consumes and watches for deletions.
func (s *Service) consume(ctx context.Context, stop <-chan struct{}, started chan<- struct{}) {
	lost := make(chan error, 1)
	report := func(err error) {
		select {
		case lost <- err:
		default:
		}
	}
	defer s.watchDeletion(report)()
	retry := backoff.Policy{Initial: 100 * time.Millisecond, Max: 5 * time.Second}
	for attempt := 1; ; attempt++ {
		cc, err := s.cons.Consume(s.take, jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			if errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrConsumerNotFound) ||
				errors.Is(err, jetstream.ErrNoHeartbeat) {
				report(err)
			}
		}))
		if started != nil {
			close(started)
			started = nil
		}
		if err == nil {
			if err = s.awaitLoss(ctx, stop, lost); err == nil {
				cc.Drain()
				<-cc.Closed()
				return
			}
			cc.Stop()
			attempt = 1
		}
		s.log.Warn("consuming the accepted runs failed; consuming again", "err", err)
		cons, ok := s.reopen(ctx, stop, retry.Delay(attempt, nil))
		if !ok {
			return
		}
		s.cons = cons
	}
}

// awaitLoss waits until stop is closed (it returns nil) or the consumer is lost (it returns
// why). A deletion is reported twice, by the advisory and by the pull, and the second report
// may come after the consumer was created again: a report while the consumer in use is on
// the server, as created, is stale. Restarting the pull then would strand the deliveries the
// stopped pull had fetched until the ack wait.
func (s *Service) awaitLoss(ctx context.Context, stop <-chan struct{}, lost <-chan error) error {
	created := s.cons.CachedInfo().Created
	for {
		select {
		case <-stop:
			return nil
		case err := <-lost:
			ictx, cancel := context.WithTimeout(ctx, storeTimeout)
			info, ierr := s.cons.Info(ictx)
			cancel()
			if ierr == nil && info.Created.Equal(created) {
				s.log.Debug("the consumer of accepted runs is there; report ignored", "err", err)
				continue
			}
			return err
		}
	}
}

// errDeleted reports the server's advisory that the stream or the consumer was deleted.
var errDeleted = errors.New("the stream of accepted runs or its consumer was deleted")

// watchDeletion calls report when the server advises that the stream of accepted runs or
// the service's consumer was deleted: a pull in progress may learn it only when its
// heartbeats stop. It returns the function that stops watching.
func (s *Service) watchDeletion(report func(error)) (stop func()) {
	var subs []*nats.Subscription
	for _, subj := range []string{subject.JetStreamConsumerDeleted(jsstore.RunsStream, ConsumerName), subject.JetStreamStreamDeleted(jsstore.RunsStream)} {
		sub, err := s.nc.Subscribe(subj, func(*nats.Msg) { report(errDeleted) })
		if err != nil {
			s.log.Warn("deletions of the stream of accepted runs not watched", "err", err)
			continue
		}
		subs = append(subs, sub)
	}
	if err := s.nc.Flush(); err != nil {
		s.log.Warn("deletions of the stream of accepted runs may go unnoticed", "err", err)
	}
	return func() {
		for _, sub := range subs {
			_ = sub.Unsubscribe()
		}
	}
}

// reopen waits wait, then creates the stream and the consumer again and returns the
// consumer; false when stop was closed first.
func (s *Service) reopen(ctx context.Context, stop <-chan struct{}, wait time.Duration) (jetstream.Consumer, bool) {
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-stop:
		return nil, false
	case <-t.C:
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	_, cons, err := s.openRuns(ctx)
	return cons, err == nil
}

// store stores the accepted run j, whose request body is params, in the stream and waits
// for the stream's acknowledgement. The message id is method:idempotency key, so that two
// acceptances of one key store one run. A duplicate whose run is no longer stored (it
// finished with a failure that is not remembered, and this is its retry) is stored again
// under the id chained to the earlier message's sequence, the same for every concurrent
// retry. A failure is UNAVAILABLE, retryable: nothing was stored, nothing runs.
func (s *Service) store(ctx context.Context, j *job, params []byte) error {
	now := time.Now()
	body, err := json.Marshal(acceptedRun{Method: j.method(), Params: params,
		AcceptedAt: now.UnixMilli(), Deadline: now.Add(j.timeout).UnixMilli()})
	if err != nil {
		return fmt.Errorf("encode accepted run: %w", err)
	}
	subj := subject.RunsAccepted(j.key)
	id := j.method() + ":" + j.runID
	for range maxStoreAttempts {
		ack, err := s.js.Publish(ctx, subj, body, jetstream.WithMsgID(id), jetstream.WithExpectStream(jsstore.RunsStream))
		if err != nil {
			s.log.Warn("accepted run not stored; refused", "run_id", j.runID, "err", err)
			return wire.Unavailable(true, "the run could not be stored: %s", err.Error())
		}
		if !ack.Duplicate {
			s.log.Debug("run stored", "run_id", j.runID, "seq", ack.Sequence)
			return nil
		}
		if _, stored, err := s.storedRun(ctx, j.key); err != nil || stored {
			return err // stored before: the same run
		}
		if _, found, err := s.idem.Get(ctx, j.key); err != nil {
			return wire.Unavailable(true, "%s", err.Error())
		} else if found {
			return nil // it finished since accept looked: its final is out
		}
		id = j.method() + ":" + j.runID + "@" + strconv.FormatUint(ack.Sequence, 10)
	}
	return wire.Unavailable(true, "the run could not be stored: too many earlier attempts")
}

// storedRun returns the stored run of key, if the stream holds it (it has not finished).
func (s *Service) storedRun(ctx context.Context, key string) (acceptedRun, bool, error) {
	m, err := s.runsStream.GetLastMsgForSubject(ctx, subject.RunsAccepted(key))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return acceptedRun{}, false, nil
	}
	if err != nil {
		return acceptedRun{}, false, wire.Unavailable(true, "the stored runs could not be read: %s", err.Error())
	}
	var ar acceptedRun
	if err := json.Unmarshal(m.Data, &ar); err != nil {
		return acceptedRun{}, false, wire.Unavailable(false, "stored run %s is malformed: %s", key, err.Error())
	}
	return ar, true, nil
}

// jobOf rebuilds the job of a stored run, validated again.
func (s *Service) jobOf(ar acceptedRun) (*job, error) {
	var j *job
	var err error
	switch ar.Method {
	case methodAgent:
		var p schemas.AgentParams
		var o struct {
			Origin *wire.RunOrigin `json:"origin"`
		}
		if err = decode(ar.Params, &p); err == nil {
			if err = decode(ar.Params, &o); err == nil {
				j, err = s.agentJob(p, o.Origin)
			}
		}
	case methodChat:
		var p schemas.ChatSendParams
		if err = decode(ar.Params, &p); err == nil {
			j, err = s.chatJob(p)
		}
	default:
		err = fmt.Errorf("unknown method %q", ar.Method)
	}
	if err != nil {
		return nil, err
	}
	j.accepted, j.deadline = time.UnixMilli(ar.AcceptedAt), time.UnixMilli(ar.Deadline)
	return j, nil
}

// take takes one delivery of the consumer: a run to start, a run it already holds
// (delivered again: its newest delivery is the one to acknowledge), or a run that finished
// but whose acknowledgement was lost (acknowledged now). Deliveries while the service stops
// are handed back.
func (s *Service) take(m jetstream.Msg) {
	var ar acceptedRun
	j, err := func() (*job, error) {
		if err := json.Unmarshal(m.Data(), &ar); err != nil {
			return nil, err
		}
		return s.jobOf(ar)
	}()
	if err != nil {
		s.log.Error("stored run cannot run; dropped", "subject", m.Subject(), "err", err)
		_ = m.Term()
		return
	}
	if meta, err := m.Metadata(); err == nil {
		j.seq = meta.Sequence.Stream
	}
	j.msg = m
	if s.holds(j) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	r, found, err := s.idem.Get(ctx, j.key)
	cancel()
	switch {
	case err != nil:
		s.log.Warn("idempotency records unavailable; run handed back", "run_id", j.runID, "err", err)
		_ = m.NakWithDelay(time.Second)
		return
	case found:
		s.log.Debug("finished run delivered again; acknowledged", "run_id", j.runID)
		if j.kind == kindAgent {
			s.publishFinal(j, r)
		}
		s.ack(j)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		s.handedBack = append(s.handedBack, m)
		return
	}
	s.startLocked(j)
}

// holds reports whether the run of j is held already (a delivery again while it waits or
// runs) or the service stops (then the delivery is handed back); it takes j's delivery.
func (s *Service) holds(j *job) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		s.handedBack = append(s.handedBack, j.msg)
		return true
	}
	if held, ok := s.runs[j.key]; ok {
		held.msg = j.msg
		return true
	}
	return false
}

// ack acknowledges j's delivery: its outcome is final and remembered. A lost
// acknowledgement makes the stream deliver it again; deliver then finds it remembered.
func (s *Service) ack(j *job) {
	s.mu.Lock()
	m := j.msg
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	if err := m.DoubleAck(ctx); err != nil {
		s.log.Warn("finished run not acknowledged; it will be delivered again", "run_id", j.runID, "err", err)
	}
}

// expect registers the run key as accepted: the channel is closed once it is delivered
// here (delivered). forget ends the registration.
func (s *Service) expect(key string) (<-chan struct{}, func()) {
	ch := make(chan struct{})
	s.mu.Lock()
	s.expected[key] = ch
	s.mu.Unlock()
	return ch, func() {
		s.mu.Lock()
		if s.expected[key] == ch {
			delete(s.expected, key)
		}
		s.mu.Unlock()
	}
}

// deliveredLocked tells accept that the run key was delivered here. s.mu must be held.
func (s *Service) deliveredLocked(key string) {
	if ch, ok := s.expected[key]; ok {
		close(ch)
		delete(s.expected, key)
	}
}

// release forgets the finished run j once its delivery is acknowledged: a repeat of its key
// that waited for that (acceptHeld) may store it again.
func (s *Service) release(j *job) {
	s.mu.Lock()
	if s.runs[j.key] == j {
		delete(s.runs, j.key)
	}
	s.mu.Unlock()
	close(j.acked)
}

// heldRun reports whether the run of key is held: running (or waiting for its turn) is
// true; a held run that has its final is waited for until its delivery is acknowledged
// (the stream no longer holds it), and then reported not held.
func (s *Service) heldRun(ctx context.Context, key string) (bool, error) {
	s.mu.Lock()
	j := s.runs[key]
	s.mu.Unlock()
	if j == nil {
		return false, nil
	}
	select {
	case <-j.done:
	default:
		return true, nil
	}
	select {
	case <-j.acked:
		return false, nil
	case <-ctx.Done():
		return false, wire.Unavailable(true, "the run's earlier attempt is still finishing")
	}
}

// keepAlive reports progress on every held run every AckWait/3 until ctx ends, so that the
// stream does not deliver a run again while it waits for its turn or runs. While no run is
// held it sleeps until one is (an idle gateway wakes for nothing here).
func (s *Service) keepAlive(ctx context.Context) {
	t := time.NewTicker(s.cfg.RunAckWait / 3)
	defer t.Stop()
	for {
		s.mu.Lock()
		idle := len(s.runs) == 0
		s.mu.Unlock()
		if idle {
			t.Stop()
			select {
			case <-ctx.Done():
				return
			case <-s.holding:
			}
			t.Reset(s.cfg.RunAckWait / 3)
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.mu.Lock()
		msgs := make([]jetstream.Msg, 0, len(s.runs))
		for _, j := range s.runs {
			msgs = append(msgs, j.msg)
		}
		s.mu.Unlock()
		for _, m := range msgs {
			if err := m.InProgress(); err != nil {
				s.log.Debug("progress report failed", "err", err)
			}
		}
	}
}

// handBack returns to the stream, in acceptance order, every run the stopped service holds
// unfinished and every delivery that came while it stopped, so that the next instance
// runs them again in that order.
func (s *Service) handBack() int {
	s.mu.Lock()
	msgs := s.handedBack
	for _, j := range s.runs {
		msgs = append(msgs, j.msg)
	}
	s.handedBack, s.runs = nil, map[string]*job{}
	s.mu.Unlock()
	seq := func(m jetstream.Msg) uint64 {
		if meta, err := m.Metadata(); err == nil {
			return meta.Sequence.Stream
		}
		return 0
	}
	slices.SortFunc(msgs, func(a, b jetstream.Msg) int { return cmp.Compare(seq(a), seq(b)) })
	for _, m := range msgs {
		if err := m.Nak(); err != nil {
			s.log.Warn("run not handed back; it comes back after the ack wait", "subject", m.Subject(), "err", err)
		}
	}
	return len(msgs)
}

// handedBackRun reports whether the run j ended only because the service stopped: it is
// not final and goes back to the stream.
func handedBackRun(j *job, err error) bool {
	return err != nil && errors.Is(context.Cause(j.ctx), errServiceStopped) && !aborted(j.ctx)
}
