// Package health is the health service: it keeps the gateway's HealthSummary current from
// what the other services publish when something changes (provider state events, the
// sessions changed events), from the bus's client connect and disconnect advisories, and
// from a slow liveness ping ($SRV.PING, every PingInterval); static facts (agent backend,
// store path, WebChat port, …) come from each service's micro metadata, read when the
// service (re)appears. It answers the health and status requests from that state without
// asking anyone on the request path (status asks presence for the queued system events),
// and publishes a health event when the summary changes (at most once per
// MinEventInterval, at least once per MaxEventInterval). It never asks a service the same
// question on a timer, and never reads another service's files.
package health

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/clawdis/clawdis/bus/subject"
	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/schemas"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
)

// Version is the version the service registers with nats micro.
const Version = "1.0.0"

// Config configures the health service. The zero value works: no services are watched and
// every default below applies.
type Config struct {
	// Services are the micro service names the gateway runs, listed in this order in the
	// summary; ok means every one of them answers. Default none (the summary is then ok).
	// The WebChat facts service (subject.ServiceWebChat) is watched besides them, unlisted.
	Services []string
	// PingInterval is the time between two slow liveness pings of every watched service.
	// Between them a service's going and coming is learnt from the bus's connect and
	// disconnect advisories, where the bus provides them (package bus does; another NATS
	// deployment may not, and then the ping alone tells). Default 30s.
	PingInterval time.Duration
	// PingTimeout bounds one liveness ping or catch-up request. Default 1s.
	PingTimeout time.Duration
	// MinEventInterval is the least time between two health events; changes within it are
	// coalesced into one event at its end. Default 1s.
	MinEventInterval time.Duration
	// MaxEventInterval is the most time between two health events, changed or not. Default 60s.
	MaxEventInterval time.Duration
	// Now is the clock for timestamps and ages. Default time.Now.
	Now func() time.Time
	// MaxBytes is the largest frame the edge sends a client (gateway.maxPayload). The
	// health summary is kept within a quarter of it (a hello-ok carries it beside the
	// presence list) and the status answer within it, the oldest recent sessions and
	// queued system events left out. Default 524288.
	MaxBytes int
	// QueueWait bounds status's request for the queued system events; past it status lists
	// none. Default 250ms.
	QueueWait time.Duration
	// ReadyWait bounds how long Ready waits for every listed service to answer once, so
	// that the first status after start-up is complete. Default 3s.
	ReadyWait time.Duration
	// ConfigPath is the config file the gateway loaded (or a phrase saying there is none),
	// shown by status.
	ConfigPath string
}

// withDefaults returns cfg with defaults applied, or an error naming the invalid field.
func (cfg Config) withDefaults() (Config, error) {
	durations := []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"PingInterval", &cfg.PingInterval, 30 * time.Second},
		{"PingTimeout", &cfg.PingTimeout, time.Second},
		{"MinEventInterval", &cfg.MinEventInterval, time.Second},
		{"MaxEventInterval", &cfg.MaxEventInterval, 60 * time.Second},
		{"ReadyWait", &cfg.ReadyWait, 3 * time.Second},
		{"QueueWait", &cfg.QueueWait, 250 * time.Millisecond},
	}
	for _, d := range durations {
		if *d.v < 0 {
			return cfg, fmt.Errorf("health: %s %s is negative", d.name, *d.v)
		}
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if cfg.MinEventInterval > cfg.MaxEventInterval {
		return cfg, fmt.Errorf("health: MinEventInterval %s exceeds MaxEventInterval %s",
			cfg.MinEventInterval, cfg.MaxEventInterval)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxBytes < 0 {
		return cfg, fmt.Errorf("health: MaxBytes %d is negative", cfg.MaxBytes)
	}
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	seen := make(map[string]bool, len(cfg.Services))
	for _, name := range cfg.Services {
		if !subject.ValidToken(name) {
			return cfg, fmt.Errorf("health: invalid service name %q", name)
		}
		if seen[name] {
			return cfg, fmt.Errorf("health: service %q listed twice", name)
		}
		seen[name] = true
	}
	cfg.Services = slices.Clone(cfg.Services)
	return cfg, nil
}

// Service is the health service.
type Service struct {
	cfg        Config
	nc         *nats.Conn
	log        *slog.Logger
	clock      clock             // schedules; replaced by tests before Run
	names      []string          // watched services: Config.Services, then the WebChat facts
	pingSubj   map[string]string // $SRV.PING.<name> of every watched service
	statusSubj map[string]string // the providers' status subjects, by provider
	state      *state
	changed    chan struct{}                // poked (never blocking) whenever the state may have changed
	cached     atomic.Pointer[cachedHealth] // the last health answer (healthReply)
	ready      chan struct{}                // closed once the endpoints are subscribed and every listed service answered (or ReadyWait passed)
}

// New prepares the service; it does no I/O. A nil log discards logging.
func New(cfg Config, nc *nats.Conn, log *slog.Logger) (*Service, error) {
	if nc == nil {
		return nil, errors.New("health: nil bus connection")
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var extra []string
	if !slices.Contains(cfg.Services, subject.ServiceWebChat) {
		extra = append(extra, subject.ServiceWebChat)
	}
	s := &Service{
		cfg:        cfg,
		nc:         nc,
		log:        log.With("component", subject.ServiceHealth),
		clock:      realClock{},
		names:      append(slices.Clone(cfg.Services), extra...),
		pingSubj:   map[string]string{},
		statusSubj: map[string]string{},
		state:      newState(cfg.Services, extra),
		changed:    make(chan struct{}, 1),
		ready:      make(chan struct{}),
	}
	for _, name := range s.names {
		if s.pingSubj[name], err = micro.ControlSubject(micro.PingVerb, name, ""); err != nil {
			return nil, fmt.Errorf("health: ping subject of %q: %w", name, err)
		}
	}
	for _, name := range []string{providerWhatsApp, providerTelegram} {
		if s.statusSubj[name], err = subject.ProviderStatus(name); err != nil {
			return nil, fmt.Errorf("health: status subject of %q: %w", name, err)
		}
	}
	return s, nil
}

// Ready is closed once Run has subscribed every endpoint on the server, so that a request
// sent after it is answered, and every listed service has answered once (or ReadyWait
// passed), so that the answer is complete.
func (s *Service) Ready() <-chan struct{} { return s.ready }

// Run serves the health and status requests, follows the services and publishes health
// events until ctx ends, then stops everything it started and returns nil. It returns an
// error only when the service cannot be set up. Run must not be called twice.
func (s *Service) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	advisories := make(chan *nats.Msg, advisoryBuffer)
	subs, err := s.subscribe(advisories)
	defer func() {
		for _, sub := range subs {
			_ = sub.Unsubscribe()
		}
	}()
	if err != nil {
		return err
	}
	reconnected := s.nc.StatusChanged(nats.CONNECTED)
	defer s.nc.RemoveStatusListener(reconnected)

	get := func(context.Context, []byte, nats.Header) (any, error) { return s.healthReply() }
	status := func(context.Context, []byte, nats.Header) (any, error) { return s.status(ctx), nil }
	svc, err := wire.AddService(s.nc, micro.Config{
		Name:        subject.ServiceHealth,
		Version:     Version,
		Description: "gateway health and status summaries",
	},
		wire.Endpoint{Name: "get", Subject: subject.HealthGet, Handler: wire.Handler("health.get", get)},
		wire.Endpoint{Name: "status", Subject: subject.HealthStatus, Handler: wire.Handler("health.status", status)},
	)
	if err != nil {
		return err
	}
	defer func() {
		if err := svc.Stop(); err != nil {
			s.log.Warn("stopping micro service failed", "err", err)
		}
	}()
	go func() {
		wait := time.NewTimer(s.cfg.ReadyWait)
		defer wait.Stop()
		select {
		case <-s.state.allAnswered:
		case <-wait.C:
		case <-ctx.Done():
		}
		close(s.ready)
	}()
	s.log.Info("health service started", "services", strings.Join(s.cfg.Services, ","),
		"ping_interval", s.cfg.PingInterval)

	publishDone := make(chan struct{})
	go func() {
		defer close(publishDone)
		s.publishLoop(ctx)
	}()
	s.watch(ctx, advisories, reconnected)
	<-publishDone
	s.log.Info("health service stopped")
	return nil
}

// subscribe subscribes to the events health follows; the advisories go to advisories. On
// error it returns the subscriptions made so far, for the caller to remove.
func (s *Service) subscribe(advisories chan *nats.Msg) ([]*nats.Subscription, error) {
	var subs []*nats.Subscription
	for _, e := range []struct {
		subj string
		cb   nats.MsgHandler
	}{
		{subject.ProviderStateAll, s.onProviderState},
		{subject.SessionsChanged, s.onSessionsChanged},
	} {
		sub, err := s.nc.Subscribe(e.subj, e.cb)
		if err != nil {
			return subs, fmt.Errorf("health: subscribe %s: %w", e.subj, err)
		}
		subs = append(subs, sub)
	}
	for _, subj := range []string{subject.BusConnect, subject.BusDisconnect} {
		sub, err := s.nc.ChanSubscribe(subj, advisories)
		if err != nil {
			return subs, fmt.Errorf("health: subscribe %s: %w", subj, err)
		}
		subs = append(subs, sub)
	}
	return subs, nil
}

// health encodes the HealthSummary of snap at now, within its byte budget: once, unless it
// is over the budget (then the summary is trimmed and encoded again). start is when the
// request began (durationMs).
func (s *Service) health(snap snapshot, now, start time.Time) ([]byte, error) {
	sum := snap.health(now)
	sum.Ts = now.UnixMilli()
	sum.DurationMs = time.Since(start).Milliseconds()
	budget := healthBudget(s.cfg.MaxBytes)
	data, err := json.Marshal(sum)
	if err != nil || len(data) <= budget {
		return data, err
	}
	boundHealth(&sum, budget)
	sum.DurationMs = time.Since(start).Milliseconds()
	return json.Marshal(sum)
}

// cachedHealth is an encoded health answer: of the state at version, in millisecond ms.
type cachedHealth struct {
	version uint64
	ms      int64
	answer  wire.Encoded
}

// healthReply answers health.get. The answers within one millisecond to an unchanged state
// are the same bytes (the summary's ages and ts count milliseconds), so they share one
// encoding: under load many requests arrive per millisecond, and building and encoding the
// summary for each was ~6 % of the gateway's CPU.
func (s *Service) healthReply() (*wire.Encoded, error) {
	start := time.Now()
	now := s.cfg.Now()
	version := s.state.currentVersion()
	if c := s.cached.Load(); c != nil && c.version == version && c.ms == now.UnixMilli() {
		return &c.answer, nil
	}
	data, err := s.health(s.state.get(), now, start)
	if err != nil {
		return nil, err
	}
	// The state may have changed since version was read; the answer is then newer than
	// its key, which only the next change's requests (another key) could tell.
	c := &cachedHealth{version: version, ms: now.UnixMilli(), answer: wire.Encoded{Data: data}}
	s.cached.Store(c)
	return &c.answer, nil
}

// status builds the StatusSummary; it asks the presence service for the queued system
// events and lists none when presence does not answer within QueueWait.
func (s *Service) status(ctx context.Context) schemas.StatusSummary {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.QueueWait)
	defer cancel()
	var q wire.SystemEventQueue
	if err := wire.RequestJSON(ctx, s.nc, subject.PresenceQueue, struct{}{}, &q); err != nil {
		s.log.Debug("queued system events unavailable", "err", err)
		q.Events = nil
	}
	sum := s.state.get().status(s.cfg.Now(), q.Events)
	sum.ConfigPath = s.cfg.ConfigPath
	boundStatus(&sum, s.cfg.MaxBytes-statusReserve)
	return sum
}

// poke tells the publish loop that the state may have changed.
func (s *Service) poke() {
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

// publishLoop publishes health events as the schedule decides until ctx ends. Nothing is
// published before every service was checked once.
func (s *Service) publishLoop(ctx context.Context) {
	sched := schedule{min: s.cfg.MinEventInterval, max: s.cfg.MaxEventInterval}
	var last fingerprint
	t := s.clock.NewTimer(s.cfg.MaxEventInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.changed:
		case <-t.C():
		}
		if !s.state.isProbed() {
			continue
		}
		now := s.clock.Now()
		snap := s.state.get()
		fp := snap.fingerprint()
		publish, wait := sched.decide(now, fp != last)
		if publish {
			s.publish(s.health(snap, s.cfg.Now(), time.Now()))
			last = fp
			sched.published(now)
			_, wait = sched.decide(now, false)
		}
		t.Reset(wait)
	}
}

// publish sends the encoded summary data as a health event.
func (s *Service) publish(data []byte, err error) {
	if err != nil {
		s.log.Error("encode health event", "err", err)
		return
	}
	if err := s.nc.Publish(subject.HealthChanged, data); err != nil {
		s.log.Warn("publish health event", "err", err)
	}
}
