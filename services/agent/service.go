// Package agent is the agent service: it accepts agent runs (the two-stage agent method)
// and chat.send turns over the bus, stores them in the JetStream stream of accepted runs
// before acknowledging them, runs what its durable consumer of that stream delivers (again
// after a crash or a stop, see durable.go), queues them per session (one turn of a session
// at a time, at most Config.MaxConcurrent runs at once), runs them on a backend (a local command
// or an OpenAI-compatible chat completions server), streams their progress as agent and
// chat events, keeps the session store and transcript current through the sessions
// service, delivers replies through the providers, and remembers finished runs for
// idempotency. It stops runs on chat.abort and, as the owner of run state, tells the
// sessions service which runs of a session are in progress (agent.busy).
package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"

	"github.com/clawdis/clawdis/bus/subject"
	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/schemas"
	"github.com/clawdis/clawdis/services/internal/idem"
	"github.com/clawdis/clawdis/services/internal/jsstore"
	"github.com/clawdis/clawdis/services/internal/ttlmap"
)

// Version is the version the service registers with nats micro.
const Version = "1.0.0"

// errStopping answers requests that arrive while the service stops.
var errStopping = wire.Unavailable(true, "agent service stopping")

// Service is the agent service. Create it with New and serve with Run.
type Service struct {
	cfg     Config
	nc      *nats.Conn
	log     *slog.Logger
	backend backend // nil when none is configured
	ready   chan struct{}
	setUp   *wire.SetUp   // finished once the records and the stream are open
	sem     chan struct{} // one token per executing run

	js         jetstream.JetStream
	runsStream jetstream.Stream   // of accepted runs
	cons       jetstream.Consumer // the service's durable consumer of runsStream

	mu         sync.Mutex
	stopped    bool
	runCtx     context.Context // parent of every run; ends when Run stops
	idem       *idem.Store
	runs       map[string]*job                  // runs held (waiting or running) by idempotency key
	holding    chan struct{}                    // poked when a run is held, for keepAlive
	recent     *ttlmap.Map[string, idem.Result] // finals idem does not remember (retryable failures)
	lanes      map[string]<-chan struct{}       // session key -> turn of its newest run
	handedBack []jetstream.Msg                  // deliveries that came while the service stopped
	expected   map[string]chan struct{}         // accepted runs by key, closed once delivered
	wg         sync.WaitGroup                   // runs and pending waits
}

// New validates cfg and returns a service ready to Run. It does no I/O. A nil log discards.
func New(cfg Config, nc *nats.Conn, log *slog.Logger) (*Service, error) {
	if nc == nil {
		return nil, errors.New("agent: nil bus connection")
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Service{
		cfg:     cfg,
		nc:      nc,
		log:     log.With("component", subject.ServiceAgent),
		ready:   make(chan struct{}),
		setUp:   wire.NewSetUp(),
		sem:     make(chan struct{}, cfg.MaxConcurrent),
		runs:    map[string]*job{},
		holding: make(chan struct{}, 1),
		recent:  ttlmap.New[string, idem.Result](recentTTL, maxRecent),
		lanes:   map[string]<-chan struct{}{},

		expected: map[string]chan struct{}{},
	}
	switch cfg.Backend {
	case BackendCommand:
		s.backend = &commandBackend{argv: cfg.Command}
	case BackendOpenAI:
		s.backend = newOpenAIBackend(cfg)
	}
	return s, nil
}

// Ready is closed once Run has subscribed every endpoint on the server, so that a request
// sent after it is answered (once the records and the stream are open; see Run).
func (s *Service) Ready() <-chan struct{} { return s.ready }

// Run opens the idempotency records and the stream of accepted runs, serves the agent.run,
// agent.status, agent.busy, chat.send and chat.abort requests and runs what the stream
// delivers until ctx ends; then it stops accepting and consuming, cancels the runs it holds
// and hands them back to the stream unfinished (the next instance runs them again), and
// returns nil. It returns an error only when the service cannot be set up. Run must not be
// called twice.
func (s *Service) Run(ctx context.Context) error {
	// The endpoints are subscribed first, so that the service is ready at once; a request
	// waits in its handler until the records and the stream are open (setUp).
	another, err := s.anotherAgent(ctx)
	if err != nil {
		return err
	}
	setUp := s.setUp
	gate := func(h micro.Handler) micro.Handler { return setUp.Gate("agent service", wire.SetUpWait, h) }
	svc, err := wire.AddService(s.nc, micro.Config{
		Name:        subject.ServiceAgent,
		Version:     Version,
		Description: "agent runs and chat turns",
		Metadata:    map[string]string{wire.MetaBackend: backendName(s.cfg.Backend), wire.MetaModel: s.cfg.OpenAI.Model},
	},
		wire.Endpoint{Name: "run", Subject: subject.AgentRun, Handler: gate(wire.Handler("agent.run", s.handleRun))},
		wire.Endpoint{Name: "status", Subject: subject.AgentStatus, Handler: gate(wire.Handler("agent.status", s.handleStatus))},
		wire.Endpoint{Name: "chat_send", Subject: subject.ChatSend, Handler: gate(replayHandler("chat.send", s.handleChatSend))},
		wire.Endpoint{Name: "chat_abort", Subject: subject.ChatAbort, Handler: gate(wire.Handler("chat.abort", s.handleAbort))},
		wire.Endpoint{Name: "busy", Subject: subject.AgentBusy, Handler: gate(wire.Handler("agent.busy", s.handleBusy))},
	)
	if err != nil {
		return err
	}
	close(s.ready)
	store, err := s.openIdem(ctx)
	if err == nil {
		s.runsStream, s.cons, err = s.openRuns(ctx)
	}
	if err == nil {
		s.cons, err = s.takeOver(ctx, s.runsStream, s.cons, another)
	}
	if err == nil {
		s.js, err = jetstream.New(s.nc)
	}
	if err != nil {
		setUp.Finish(err)
		if err := svc.Stop(); err != nil {
			s.log.Warn("stopping micro service failed", "err", err)
		}
		if ctx.Err() != nil {
			return nil // stopped while JetStream was not ready
		}
		return err
	}
	// Runs outlive ctx until the consumer stopped: then they end errServiceStopped.
	runCtx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	defer cancel(errServiceStopped)
	s.mu.Lock()
	s.idem, s.runCtx = store, runCtx
	s.mu.Unlock()

	stopConsuming, consuming, consumed := make(chan struct{}), make(chan struct{}), make(chan struct{})
	go func() {
		defer close(consumed)
		s.consume(ctx, stopConsuming, consuming)
	}()
	<-consuming
	s.wg.Go(func() { s.keepAlive(runCtx) })
	setUp.Finish(nil)
	s.log.Info("agent service started", "backend", backendName(s.cfg.Backend),
		"max_concurrent", s.cfg.MaxConcurrent, "timeout", s.cfg.Timeout)

	<-ctx.Done()
	if err := svc.Stop(); err != nil {
		s.log.Warn("stopping micro service failed", "err", err)
	}
	s.mu.Lock()
	s.stopped = true
	s.mu.Unlock()
	close(stopConsuming)
	<-consumed
	cancel(errServiceStopped)
	s.wg.Wait()
	n := s.handBack()
	s.log.Info("agent service stopped", "runs_handed_back", n)
	return nil
}

func backendName(b string) string {
	if b == BackendNone {
		return "none"
	}
	return b
}

// handleRun accepts an agent run: it answers {runId, status:"accepted"} at once (also for
// a key that is running, without a second run) or INVALID_REQUEST. For a key whose run
// already finished it answers that run's final, marked with wire.HeaderRunFinal, so the
// client gets exactly one res, the remembered final (SPEC §6.5).
func (s *Service) handleRun(_ context.Context, data []byte, _ nats.Header) (any, error) {
	var p schemas.AgentParams
	if err := decode(data, &p); err != nil {
		return nil, err
	}
	var o struct {
		Origin *wire.RunOrigin `json:"origin"` // wire.AgentRunRequest, from autoreply
	}
	if err := decode(data, &o); err != nil {
		return nil, err
	}
	j, err := s.agentJob(p, o.Origin)
	if err != nil {
		return nil, err
	}
	done, err := s.accept(j, data)
	if err != nil {
		return nil, err
	}
	if done != nil {
		body, err := json.Marshal(finalOf(*done))
		if err != nil {
			return nil, fmt.Errorf("encode final: %w", err)
		}
		return wire.Reply{Data: body, Header: nats.Header{wire.HeaderRunFinal: []string{"1"}}}, nil
	}
	return schemas.AgentResult{RunID: j.runID, Status: "accepted"}, nil
}

// handleChatSend accepts a chat turn: it answers {runId, status:"started"} at once (also
// for a key that is running, without a second run) or an error. For a key whose turn
// already finished it answers {runId, status:"ok"} ("error" for a remembered failure) and
// publishes the turn's final chat event again, carrying the remembered reply (SPEC §6.5).
func (s *Service) handleChatSend(_ context.Context, data []byte, _ nats.Header) (any, error) {
	var p schemas.ChatSendParams
	if err := decode(data, &p); err != nil {
		return nil, err
	}
	j, err := s.chatJob(p)
	if err != nil {
		return nil, err
	}
	if s.backend == nil {
		return nil, wire.Unavailable(false, "%s", noBackendMessage)
	}
	done, err := s.accept(j, data)
	if err != nil {
		return nil, err
	}
	if done != nil {
		status := "ok"
		if !done.OK {
			status = "error"
		}
		return replay{
			answer: schemas.ChatSendResult{RunID: j.runID, Status: status},
			after:  func() { s.replayChat(j, *done) },
		}, nil
	}
	return schemas.ChatSendResult{RunID: j.runID, Status: "started"}, nil
}

// accept stores the run j, whose request body is params, in the stream of accepted runs
// (the consumer runs it), unless it is held or remembered; for a remembered key it returns
// the remembered final. A run stored already is not stored again. Without a backend the run
// ends at once with the no-backend error, published as its final. When the records or the
// stream cannot be read or written it fails UNAVAILABLE, retryable, and nothing runs.
func (s *Service) accept(j *job, params []byte) (*idem.Result, error) {
	s.mu.Lock()
	stopped := s.stopped || s.runCtx == nil
	s.mu.Unlock()
	if stopped {
		return nil, errStopping
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	held, err := s.heldRun(ctx, j.key)
	if err != nil {
		return nil, err
	}
	if held {
		s.log.Debug("repeated run key", "run_id", j.runID, "running", true)
		return nil, nil
	}
	r, found, err := s.idem.Get(ctx, j.key)
	if err != nil {
		s.log.Warn("idempotency records unavailable; run refused", "run_id", j.runID, "err", err)
		return nil, wire.Unavailable(true, "%s", err.Error())
	}
	if found {
		s.log.Debug("repeated run key", "run_id", j.runID, "running", false)
		return &r, nil
	}
	if s.backend == nil {
		r := errorResult(j.runID, wire.Unavailable(false, "%s", noBackendMessage))
		if err := s.idem.Finish(ctx, j.key, r); err != nil {
			s.log.Warn("idempotency record not stored", "run_id", j.runID, "err", err)
		}
		if j.kind == kindAgent {
			s.publishFinal(j, r)
		}
		return nil, nil
	}
	s.recent.Delete(j.key)
	delivered, forget := s.expect(j.key)
	defer forget()
	if err := s.store(ctx, j, params); err != nil {
		return nil, err
	}
	// Answered once the run is held here, so that whoever knows of it from the answer
	// (chat.abort, agent.busy, agent.status) finds it; with a bound, for a run another
	// copy of the service took or that waits in the stream.
	t := time.NewTimer(heldWait)
	defer t.Stop()
	select {
	case <-delivered:
	case <-t.C:
		s.log.Debug("accepted run not delivered here yet", "run_id", j.runID)
	}
	return nil, nil
}

// heldWait bounds how long accept waits for the stored run's delivery.
const heldWait = time.Second

// storeTimeout bounds one read or write of the idempotency records.
const storeTimeout = 5 * time.Second

// openIdem creates or opens the idempotency bucket and migrates the records file of an
// earlier version into it. A migration that fails is logged and retried at the next start.
func (s *Service) openIdem(ctx context.Context) (*idem.Store, error) {
	kv, err := jsstore.Idem(ctx, s.nc, jsstore.Config{Replicas: s.cfg.Replicas, Log: s.log})
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	store, err := idem.New(kv, idem.Config{Prefix: subject.ServiceAgent, Timeout: storeTimeout, Now: s.cfg.Now})
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	if s.cfg.LegacyDedupePath != "" {
		n, err := store.Migrate(ctx, s.cfg.LegacyDedupePath)
		if err != nil {
			s.log.Warn("idempotency records of the earlier version not migrated", "err", err)
		} else if n > 0 {
			s.log.Info("idempotency records migrated", "count", n, "from", s.cfg.LegacyDedupePath)
		}
	}
	return store, nil
}

// decode unmarshals request params into v.
func decode(data []byte, v any) error {
	if len(data) == 0 {
		return wire.Invalid("params required")
	}
	return wire.DecodeParams(data, v, "params")
}

// Results of a run, as remembered and as the agent method's final res.

func okResult(runID, text string) idem.Result {
	return idem.Result{OK: true, Payload: mustJSON(schemas.AgentResult{RunID: runID, Status: "ok", Summary: "completed", Text: text})}
}

func timeoutResult(runID string, d time.Duration) idem.Result {
	return idem.Result{
		Payload: mustJSON(schemas.AgentResult{RunID: runID, Status: "timeout"}),
		Error:   &wire.Error{Code: wire.CodeAgentTimeout, Message: fmt.Sprintf("agent run timed out after %s", d)},
	}
}

// abortedResult is the final of a run that chat.abort ended: ok, with the text so far.
func abortedResult(runID, text string) idem.Result {
	return idem.Result{OK: true, Payload: mustJSON(schemas.AgentResult{RunID: runID, Status: schemas.RunAborted, Text: text})}
}

func errorResult(runID string, werr *wire.Error) idem.Result {
	return idem.Result{
		Payload: mustJSON(schemas.AgentResult{RunID: runID, Status: "error", Summary: werr.Message}),
		Error:   werr,
	}
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("agent: encode %T: %v", v, err))
	}
	return b
}
