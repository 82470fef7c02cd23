// Package presence is the presence service: it keeps the list of present gateways, nodes and
// clients (SPEC §7) and the system-event queue (SPEC §6.4), answers requests for them over
// the bus, and publishes the full list on subject.PresenceChanged after every change,
// including expiries.
package presence

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/clawdis/clawdis/bus/subject"
	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/schemas"
)

// Version is the version the service registers with nats micro.
const Version = "1.0.0"

// Config configures the presence service. The zero value works.
type Config struct {
	// Host, IP and Version describe the gateway's own entry (mode "gateway", reason "self").
	// Empty values are left out of the entry.
	Host, IP, Version string
	// SelfKey is the key of the gateway's own entry. Default "gateway".
	SelfKey string
	// TTL is how long an entry stays after its last update. Default 5m.
	TTL time.Duration
	// MaxEntries caps the entries besides the gateway's own; the oldest are dropped.
	// Default 200.
	MaxEntries int
	// MaxQueue caps the system-event queue; the oldest texts are dropped. Default 20.
	MaxQueue int
	// MaxBytes is the largest frame the edge sends a client (gateway.maxPayload). The list
	// is kept within half of it, the oldest entries left out, so that the presence event,
	// the system-presence answer and a hello-ok (the list beside the health summary) all
	// fit. Default 524288.
	MaxBytes int
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Defaults of Config.
const (
	DefaultSelfKey    = "gateway"
	DefaultTTL        = 5 * time.Minute
	DefaultMaxEntries = 200
	DefaultMaxQueue   = 20
	DefaultMaxBytes   = 524288
)

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	if c.SelfKey == "" {
		c.SelfKey = DefaultSelfKey
	}
	if c.TTL == 0 {
		c.TTL = DefaultTTL
	}
	if c.MaxEntries == 0 {
		c.MaxEntries = DefaultMaxEntries
	}
	if c.MaxQueue == 0 {
		c.MaxQueue = DefaultMaxQueue
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = DefaultMaxBytes
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// errStopping answers requests that arrive while the service stops.
var errStopping = wire.Unavailable(true, "presence service stopping")

// Service is the presence service. Create it with New and serve with Run.
type Service struct {
	cfg Config
	nc  *nats.Conn
	log *slog.Logger

	mu      sync.Mutex // guards reg and stopped; held while a change is published
	reg     *registry
	ready   chan struct{} // closed once the endpoints are subscribed on the server
	stopped bool

	// ticks, when set (tests), replaces the expiry timer: each value sweeps.
	ticks <-chan time.Time
	// changed is signalled when the entries changed, so that Run re-arms its expiry timer.
	changed chan struct{}
}

// New validates cfg, applies its defaults and returns a service ready to Run. It does no
// I/O. A nil log discards.
func New(cfg Config, nc *nats.Conn, log *slog.Logger) (*Service, error) {
	if nc == nil {
		return nil, errors.New("presence: nil nats connection")
	}
	switch {
	case cfg.TTL < 0:
		return nil, fmt.Errorf("presence: TTL %s is negative", cfg.TTL)
	case cfg.MaxEntries < 0:
		return nil, fmt.Errorf("presence: MaxEntries %d is negative", cfg.MaxEntries)
	case cfg.MaxQueue < 0:
		return nil, fmt.Errorf("presence: MaxQueue %d is negative", cfg.MaxQueue)
	case cfg.MaxBytes < 0:
		return nil, fmt.Errorf("presence: MaxBytes %d is negative", cfg.MaxBytes)
	}
	cfg = cfg.withDefaults()
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Service{
		cfg:     cfg,
		nc:      nc,
		log:     log.With("component", "presence"),
		reg:     newRegistry(cfg),
		ready:   make(chan struct{}),
		changed: make(chan struct{}, 1),
	}, nil
}

// Ready is closed once Run has subscribed every endpoint on the server, so that a request
// sent after it is answered.
func (s *Service) Ready() <-chan struct{} { return s.ready }

// Run registers the service with nats micro, publishes the current list once (so
// subscribers that outlived an earlier copy of the service catch up), sweeps expired
// entries when they expire, and serves until ctx ends. It then stops the micro service
// and its own goroutines and returns nil. It returns an error only when registration fails.
func (s *Service) Run(ctx context.Context) error {
	h := func(name string, fn wire.HandlerFunc) micro.Handler { return wire.Handler("presence."+name, fn) }
	svc, err := wire.AddService(s.nc, micro.Config{
		Name:        subject.ServicePresence,
		Version:     Version,
		Description: "presence list and system-event queue",
	},
		wire.Endpoint{Name: "list", Subject: subject.PresenceList, Handler: h("list", s.handleList)},
		wire.Endpoint{Name: "event", Subject: subject.PresenceEvent, Handler: h("event", s.handleEvent)},
		wire.Endpoint{Name: "client", Subject: subject.PresenceClient, Handler: h("client", s.handleClient)},
		wire.Endpoint{Name: "queue", Subject: subject.PresenceQueue, Handler: h("queue", s.handleQueue)},
		wire.Endpoint{Name: "drain", Subject: subject.PresenceDrain, Handler: h("drain", s.handleDrain)},
		wire.Endpoint{Name: "requeue", Subject: subject.PresenceRequeue, Handler: h("requeue", s.handleRequeue)},
	)
	if err != nil {
		return err
	}
	close(s.ready)
	s.log.Info("presence service started", "self_key", s.cfg.SelfKey, "host", s.cfg.Host)

	s.mu.Lock()
	s.publishLocked(s.cfg.Now())
	s.mu.Unlock()

	// One timer, set to when the oldest entry expires (nothing to expire: no timer), not
	// a sweep on a period.
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	arm := func() {
		s.mu.Lock()
		next, ok := s.reg.nextExpiry()
		s.mu.Unlock()
		if s.ticks == nil && ok {
			timer.Reset(max(next.Sub(s.cfg.Now()), time.Millisecond))
		}
	}
	arm()
	for {
		select {
		case <-ctx.Done():
			return s.stop(svc)
		case <-s.ticks:
			s.sweep()
		case <-timer.C:
			s.sweep()
			arm()
		case <-s.changed:
			arm()
		}
	}
}

// stop stops the micro service and makes handlers still draining answer UNAVAILABLE
// without touching the registry or publishing.
func (s *Service) stop(svc micro.Service) error {
	if err := svc.Stop(); err != nil {
		s.log.Warn("presence service stop", "err", err)
	}
	s.mu.Lock()
	s.stopped = true
	s.mu.Unlock()
	s.log.Info("presence service stopped")
	return nil
}

// sweep removes expired entries and publishes the list when any were removed.
func (s *Service) sweep() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return
	}
	now := s.cfg.Now()
	if s.reg.expire(now) {
		s.log.Debug("presence entries expired")
		s.publishLocked(now)
	}
}

// publishLocked publishes the full list on subject.PresenceChanged. s.mu must be held, so
// changes are published in the order they were made.
func (s *Service) publishLocked(now time.Time) {
	select {
	case s.changed <- struct{}{}:
	default:
	}
	data, err := json.Marshal(schemas.PresencePayload{Presence: s.reg.list(now)})
	if err != nil {
		s.log.Error("encode presence list", "err", err)
		return
	}
	if err := s.nc.Publish(subject.PresenceChanged, data); err != nil {
		s.log.Warn("publish presence change", "subject", subject.PresenceChanged, "err", err)
	}
}

// change runs apply on the registry under the lock and, when it succeeds, expires old
// entries and publishes the list.
func (s *Service) change(apply func(r *registry, now time.Time) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return errStopping
	}
	now := s.cfg.Now()
	if err := apply(s.reg, now); err != nil {
		return err
	}
	s.reg.expire(now)
	s.publishLocked(now)
	return nil
}

func (s *Service) handleList(context.Context, []byte, nats.Header) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return nil, errStopping
	}
	now := s.cfg.Now()
	if s.reg.expire(now) {
		s.publishLocked(now)
	}
	return s.reg.list(now), nil // system-presence answers the bare list (SPEC §6.3)
}

func (s *Service) handleEvent(_ context.Context, data []byte, _ nats.Header) (any, error) {
	var p schemas.SystemEventParams
	if err := decode(data, &p); err != nil {
		return nil, err
	}
	err := s.change(func(r *registry, now time.Time) error { return r.systemEvent(p, now) })
	if err != nil {
		return nil, err
	}
	s.log.Debug("system event", "instance_id", p.InstanceID, "host", p.Host)
	return schemas.OKPayload{OK: true}, nil
}

func (s *Service) handleClient(_ context.Context, data []byte, _ nats.Header) (any, error) {
	var cp wire.ClientPresence
	if err := decode(data, &cp); err != nil {
		return nil, err
	}
	err := s.change(func(r *registry, now time.Time) error { return r.client(cp, now) })
	if err != nil {
		return nil, err
	}
	s.log.Debug("client presence", "event", cp.Event, "key", cp.Key, "mode", cp.Mode)
	return schemas.OKPayload{OK: true}, nil
}

func (s *Service) handleQueue(context.Context, []byte, nats.Header) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return nil, errStopping
	}
	return wire.SystemEventQueue{Events: s.reg.peekQueue()}, nil
}

func (s *Service) handleDrain(context.Context, []byte, nats.Header) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return nil, errStopping
	}
	return wire.SystemEventQueue{Events: s.reg.drainQueue()}, nil
}

// handleRequeue puts system events drained by a turn that failed before reaching the
// agent back at the front of the queue.
func (s *Service) handleRequeue(_ context.Context, data []byte, _ nats.Header) (any, error) {
	var q wire.SystemEventQueue
	if err := decode(data, &q); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return nil, errStopping
	}
	s.reg.requeue(q.Events)
	return schemas.OKPayload{OK: true}, nil
}

// decode unmarshals a request body into v; an empty body is an empty object. Unknown keys
// are ignored. An error names the field, never the value.
func decode(data []byte, v any) error {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	return wire.DecodeParams(data, v, "params")
}
