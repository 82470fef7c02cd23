// Package autoreply turns inbound provider messages into agent turns and sends the replies
// back to the same chat (SPEC §3 inbound.*, §6.6, §9, §13). It consumes the inbound stream
// with a durable consumer, decides who may be answered (direct chats: allowlisted senders;
// groups: when mentioned), runs the agent over the bus with a key derived from the message,
// shows "typing" while the run goes on, and sends the reply through the provider. A message
// is acknowledged to the stream only when its outcome is final: answered, or not answered
// with the reason logged. A message whose outcome is not final (the agent or provider
// unavailable, the service stopping or crashing) is delivered again, to this service when
// it returns or to another copy; the agent's and the provider's idempotency keys make a
// second delivery harmless, so every stored message is answered exactly once.
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
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"

	"github.com/clawdis/clawdis/bus/subject"
	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/services/internal/backoff"
	"github.com/clawdis/clawdis/services/internal/jsstore"
)

// Version is the version the service registers with nats micro.
const Version = "1.0.0"

// ConsumerName is the durable consumer of the inbound stream that this service (every copy
// of it) consumes from.
const ConsumerName = "autoreply"

// Bounds of the pulls from the inbound stream: a pull waits this long for a message,
// with the server's heartbeats in between showing the consumer is alive.
const (
	pullWait      = 2 * time.Minute
	pullHeartbeat = 30 * time.Second
	maxAckPending = 1000
)

// Service is the autoreply service.
type Service struct {
	cfg       settings
	nc        *nats.Conn
	log       *slog.Logger
	echo      *echoGuard
	sem       chan struct{} // one token per message worked on
	ready     chan struct{}
	consuming chan struct{} // closed once the inbound consumer exists, after ready
	// Subjects per provider id.
	inbound map[string]string // inbound subject -> provider id
	send    map[string]string
	typing  map[string]string

	mu       sync.Mutex
	inflight map[string]bool // run keys being worked on
	runs     *wire.Runs      // set by Run before any worker starts
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
		cfg:       st,
		nc:        nc,
		log:       log.With("component", subject.ServiceAutoreply),
		echo:      newEchoGuard(st.Now),
		sem:       make(chan struct{}, st.MaxConcurrent),
		ready:     make(chan struct{}),
		consuming: make(chan struct{}),
		inbound:   map[string]string{},
		send:      map[string]string{},
		typing:    map[string]string{},
		inflight:  map[string]bool{},
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

// Ready is closed once Run answers on the bus; it consumes the inbound stream soon after.
func (s *Service) Ready() <-chan struct{} { return s.ready }

// consumerConfig is the durable consumer of the inbound stream: explicit acks, redelivery
// after AckWait without word, and one delivery more than MaxDeliveries, which only logs
// the message as given up.
func (s *Service) consumerConfig() jetstream.ConsumerConfig {
	filters := make([]string, 0, len(s.inbound))
	for subj := range s.inbound {
		filters = append(filters, subj)
	}
	slices.Sort(filters)
	return jetstream.ConsumerConfig{
		Durable:        ConsumerName,
		Description:    "autoreply: answers inbound messages; acknowledges final outcomes only",
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        s.cfg.AckWait,
		MaxDeliver:     s.cfg.MaxDeliveries + 1,
		MaxAckPending:  maxAckPending,
		FilterSubjects: filters,
	}
}

// Run creates or updates the consumer, moves the earlier version's pending messages into
// the stream, and answers the messages of the stream until ctx ends; then it stops every
// worker (their messages are handed back to the stream) and returns nil. It returns an error
// only when the service cannot be set up. Run must not be called twice.
func (s *Service) Run(ctx context.Context) error {
	// The service is ready once it answers on the bus; the consumer is created after.
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
	if err := s.nc.Flush(); err != nil {
		return fmt.Errorf("autoreply: flush subscriptions: %w", err)
	}
	close(s.ready)
	store := jsstore.Config{Replicas: s.cfg.Replicas, Log: s.log}
	cons, err := jsstore.InboundConsumer(ctx, s.nc, store, s.consumerConfig())
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped while JetStream was not ready
		}
		return fmt.Errorf("autoreply: %w", err)
	}
	if s.cfg.LegacyJournalPath != "" {
		s.migrate(ctx)
	}
	close(s.consuming)
	s.log.Info("autoreply service started", "providers", strings.Join(s.cfg.Providers, ","),
		"consumer", ConsumerName, "stream", jsstore.InboundStream)
	s.consume(ctx, cons, store)
	s.log.Info("autoreply service stopped")
	return nil
}

// consume pulls one message whenever a worker slot is free and hands it to a worker, until
// ctx ends; then it waits for the workers. A message is pulled only when it can be worked
// on at once, so none waits in this process while its AckWait runs.
func (s *Service) consume(ctx context.Context, cons jetstream.Consumer, store jsstore.Config) {
	var wg sync.WaitGroup
	defer wg.Wait()
	failures := 0
	retry := backoff.Policy{Initial: 100 * time.Millisecond, Max: 5 * time.Second}
	for {
		select {
		case s.sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		m, err := s.next(ctx, cons)
		if err != nil {
			<-s.sem
			if ctx.Err() != nil {
				return
			}
			if errors.Is(err, nats.ErrTimeout) {
				continue // nothing came within pullWait
			}
			failures++
			d := retry.Delay(failures, nil)
			s.log.Warn("pulling from the inbound stream failed; retrying", "retry_in", d, "err", err)
			if backoff.Sleep(ctx, d) != nil {
				return
			}
			// The consumer (or the stream) may be gone: ensure it again.
			if c, err := jsstore.InboundConsumer(ctx, s.nc, store, s.consumerConfig()); err == nil {
				cons = c
			}
			continue
		}
		failures = 0
		wg.Go(func() {
			defer func() { <-s.sem }()
			s.handle(ctx, m)
		})
	}
}

// next pulls the next message, waiting up to pullWait or until ctx ends.
func (s *Service) next(ctx context.Context, cons jetstream.Consumer) (jetstream.Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, pullWait)
	defer cancel()
	m, err := cons.Next(jetstream.FetchContext(ctx), jetstream.FetchHeartbeat(pullHeartbeat))
	if err != nil && errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("%w: %w", nats.ErrTimeout, err)
	}
	return m, err
}

// claim marks the run key as worked on; false when it already is (a redelivery while the
// first delivery is still being answered).
func (s *Service) claim(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inflight[key] {
		return false
	}
	s.inflight[key] = true
	return true
}

func (s *Service) release(key string) {
	s.mu.Lock()
	delete(s.inflight, key)
	s.mu.Unlock()
}

// inProgress tells the stream every AckWait/3 that m is still worked on, until the
// returned stop is called.
func (s *Service) inProgress(m jetstream.Msg, log *slog.Logger) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(s.cfg.AckWait / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if err := m.InProgress(); err != nil {
					log.Debug("progress report failed", "err", err)
				}
			}
		}
	}()
	return func() { close(done); <-finished }
}
