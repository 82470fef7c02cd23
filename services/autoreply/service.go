// Package autoreply turns inbound provider messages into agent turns and sends the replies
// back to the same chat (SPEC §3 inbound.*, §6.6, §9). It follows each provider's inbound
// events, decides who may be answered (direct chats: allowlisted senders; groups: when
// mentioned), runs the agent over the bus with a key derived from the message, shows
// "typing" while the run goes on, and sends the reply through the provider. Messages are
// journaled from acceptance until their reply was sent, and resumed when the service starts
// again; the agent's and the provider's idempotency keys make a resumed message harmless, so
// every accepted message is answered exactly once.
//
// Who is answered: in direct chats, senders in the provider's allowlist (WhatsApp numbers
// are compared as "+<digits>"; the owner, writing to themselves, always); in groups, anyone
// who mentions the linked account or bot (or matches a mention pattern), unless the
// provider's mention requirement is off. Group senders are not checked against the
// allowlist. Direct chats share the main session and become its last route; each group has
// its own session "group:<chatId>".
//
// A run that fails (the agent's error, its timeout) sends nothing to the chat: error texts
// are for the operator's log (a warning), not for the person who wrote the message.
package autoreply

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/clawdis/clawdis/bus/subject"
	"github.com/clawdis/clawdis/bus/wire"
)

// Version is the version the service registers with nats micro.
const Version = "1.0.0"

// maxResumes is how many starts of the service may find a message still pending before it
// is dropped, so that a message that crashes the gateway cannot do so forever.
const maxResumes = 5

// Service is the autoreply service.
type Service struct {
	cfg     settings
	nc      *nats.Conn
	log     *slog.Logger
	journal *journal
	echo    *echoGuard
	sem     chan struct{} // one token per message worked on
	ready   chan struct{}
	// Subjects per provider id.
	inbound map[string]string // inbound subject -> provider id
	send    map[string]string
	typing  map[string]string

	mu       sync.Mutex
	ctx      context.Context // Run's context, for the workers
	stopping bool            // set before wg.Wait: no worker starts after it
	inflight map[string]bool // run keys being worked on
	wg       sync.WaitGroup
	runs     *wire.Runs // set by Run before any worker starts
}

// New prepares the service; it does no I/O. A nil log discards logging.
func New(cfg Config, nc *nats.Conn, log *slog.Logger) (*Service, error) {
	if nc == nil {
		return nil, errors.New("autoreply: nil bus connection")
	}
	st, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Service{
		cfg:      st,
		nc:       nc,
		log:      log.With("component", subject.ServiceAutoreply),
		journal:  newJournal(st.JournalPath),
		echo:     newEchoGuard(st.Now),
		sem:      make(chan struct{}, st.MaxConcurrent),
		ready:    make(chan struct{}),
		inbound:  map[string]string{},
		send:     map[string]string{},
		typing:   map[string]string{},
		inflight: map[string]bool{},
	}
	for _, p := range st.Providers {
		in, err1 := subject.ProviderInbound(p)
		send, err2 := subject.ProviderSend(p)
		typing, err3 := subject.ProviderTyping(p)
		if err := errors.Join(err1, err2, err3); err != nil {
			return nil, fmt.Errorf("autoreply: subjects of %q: %w", p, err)
		}
		s.inbound[in], s.send[p], s.typing[p] = p, send, typing
	}
	return s, nil
}

// Ready is closed once Run has subscribed to the inbound events on the server.
func (s *Service) Ready() <-chan struct{} { return s.ready }

// Run loads the journal, follows the inbound events and resumes the journaled messages,
// until ctx ends; then it stops every worker (messages not finished stay journaled) and
// returns nil. It returns an error only when the service cannot be set up. Run must not be
// called twice.
func (s *Service) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := s.journal.load(s.cfg.Now()); err != nil {
		if !errors.Is(err, ErrJournalCorrupt) {
			return err
		}
		s.log.Error("pending messages lost: journal unreadable", "err", err)
	}
	s.mu.Lock()
	s.ctx = ctx
	s.mu.Unlock()

	svc, err := micro.AddService(s.nc, micro.Config{
		Name:        subject.ServiceAutoreply,
		Version:     Version,
		Description: "inbound provider messages to agent turns and replies",
	})
	if err != nil {
		return fmt.Errorf("autoreply: add micro service: %w", err)
	}
	defer func() {
		if err := svc.Stop(); err != nil {
			s.log.Warn("stopping micro service failed", "err", err)
		}
	}()
	runs, err := wire.FollowRuns(s.nc, wire.RunsConfig{Heartbeat: s.cfg.RunHeartbeat})
	if err != nil {
		return fmt.Errorf("autoreply: %w", err)
	}
	defer runs.Close()
	s.runs = runs
	var subs []*nats.Subscription
	defer s.stop(cancel, &subs)
	for subj := range s.inbound {
		// A queue group: copies of this service split the messages instead of doubling them.
		sub, err := s.nc.QueueSubscribe(subj, subject.ServiceAutoreply, s.onInbound)
		if err != nil {
			return fmt.Errorf("autoreply: subscribe %s: %w", subj, err)
		}
		subs = append(subs, sub)
	}
	if err := s.nc.Flush(); err != nil {
		return fmt.Errorf("autoreply: flush subscriptions: %w", err)
	}
	close(s.ready)
	s.log.Info("autoreply service started", "providers", strings.Join(s.cfg.Providers, ","),
		"journal", s.cfg.JournalPath)
	s.resume()
	<-ctx.Done()
	return nil
}

// stop cancels the workers, unsubscribes, keeps new messages from starting workers and
// waits for the workers.
func (s *Service) stop(cancel context.CancelFunc, subs *[]*nats.Subscription) {
	cancel()
	for _, sub := range *subs {
		if err := sub.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			s.log.Warn("unsubscribe failed", "subject", sub.Subject, "err", err)
		}
	}
	s.mu.Lock()
	s.stopping = true
	s.mu.Unlock()
	s.wg.Wait()
	s.log.Info("autoreply service stopped", "pending", len(s.journal.list()))
}

// resume starts a worker for every journaled message.
func (s *Service) resume() {
	pending := s.journal.list()
	if len(pending) == 0 {
		return
	}
	var keep []entry
	for _, e := range pending {
		e.Resumes++
		if e.Resumes > maxResumes {
			s.log.Error("pending message dropped: it did not finish in several starts",
				"run_id", e.Key, "provider", e.Msg.Provider, "chat_id", e.Msg.ChatID, "starts", e.Resumes)
			if err := s.journal.remove(e.Key); err != nil {
				s.log.Error("journal update failed", "err", err)
			}
			continue
		}
		keep = append(keep, e)
	}
	if err := s.journal.putAll(keep); err != nil {
		s.log.Error("journal update failed", "err", err)
	}
	s.log.Info("resuming pending messages", "count", len(keep))
	for _, e := range keep {
		s.start(e, false)
	}
}

// onInbound handles one inbound event: it decides whether the message gets an answer and
// hands it to a worker. It never blocks on the network.
func (s *Service) onInbound(m *nats.Msg) {
	id := s.inbound[m.Subject]
	var msg wire.InboundMessage
	if err := json.Unmarshal(m.Data, &msg); err != nil {
		s.log.Warn("bad inbound message", "subject", m.Subject, "err", err)
		return
	}
	if msg.Provider != id {
		if msg.Provider != "" {
			s.log.Warn("inbound message names another provider than its subject",
				"subject", m.Subject, "provider", msg.Provider)
		}
		msg.Provider = id
	}
	log := s.log.With("provider", id, "chat_id", msg.ChatID, "message_id", msg.MessageID)
	if msg.ChatID == "" || msg.MessageID == "" {
		log.Warn("inbound message without chat or message id ignored")
		return
	}
	if s.echo.isEcho(msg) {
		log.Debug("own reply echoed back; ignored")
		return
	}
	if why := s.cfg.allow(msg); why != "" {
		log.Info("inbound not answered", "reason", why, "chat_type", msg.ChatType)
		return
	}
	s.start(entry{Key: runKey(msg), Msg: msg, AddedAt: s.cfg.Now().UnixMilli()}, true)
}

// start hands e to a new worker. A fresh message is journaled first (by the worker, off the
// subscription's callback); one arriving while the service stops is only journaled, to be
// resumed by the next start.
func (s *Service) start(e entry, fresh bool) {
	log := s.log.With("run_id", e.Key, "provider", e.Msg.Provider, "chat_id", e.Msg.ChatID)
	s.mu.Lock()
	if s.stopping {
		s.mu.Unlock()
		if fresh {
			if err := s.journal.put(e); err != nil {
				log.Error("message lost: journal update failed while stopping", "err", err)
			}
		}
		return
	}
	if s.inflight[e.Key] {
		s.mu.Unlock()
		log.Debug("message already being answered; duplicate ignored")
		return
	}
	if fresh && len(s.inflight) >= s.cfg.MaxPending {
		s.mu.Unlock()
		log.Warn("message dropped: too many pending messages", "max_pending", s.cfg.MaxPending)
		return
	}
	s.inflight[e.Key] = true
	ctx := s.ctx
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		defer func() {
			s.mu.Lock()
			delete(s.inflight, e.Key)
			s.mu.Unlock()
		}()
		if fresh {
			if err := s.journal.put(e); err != nil {
				log.Error("journal update failed; the message is answered but not kept across a restart", "err", err)
			}
		}
		log.Debug("message accepted", "resumed", !fresh)
		select {
		case s.sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		defer func() { <-s.sem }()
		s.process(ctx, log, e)
	}()
}
