// Package health is the health service: it keeps the gateway's HealthSummary current from
// liveness pings of the configured services, provider state events and the session store,
// answers the health and status requests from that state without probing on the request path,
// and publishes a health event when the summary changes (at most once per MinEventInterval,
// at least once per MaxEventInterval).
package health

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/clawdis/clawdis/bus/subject"
	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/schemas"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
)

// Version is the version the service registers with nats micro.
const Version = "1.0.0"

// queueTimeout bounds the request for the queued system events made by status.
const queueTimeout = 250 * time.Millisecond

// Config configures the health service. The zero value works: no services are pinged and
// every default below applies.
type Config struct {
	// Services are the micro service names pinged on $SRV.PING.<name>, listed in this order
	// in the summary, e.g. ["presence", "health"]. Default none (the summary is then ok).
	Services []string
	// ProbeInterval is the time between probe rounds (pings and the sessions refresh).
	// Default 2s.
	ProbeInterval time.Duration
	// PingTimeout bounds one liveness ping. Default 1s.
	PingTimeout time.Duration
	// MinEventInterval is the least time between two health events; changes within it are
	// coalesced into one event at its end. Default 1s.
	MinEventInterval time.Duration
	// MaxEventInterval is the most time between two health events, changed or not. Default 60s.
	MaxEventInterval time.Duration
	// HeartbeatSeconds is reported as heartbeatSeconds. Default 60.
	HeartbeatSeconds int
	// SessionsPath is the session store file, reported as sessions.path and read when the
	// sessions service does not answer. Default "" (nothing is read; count 0).
	SessionsPath string
	// AgentBackend and AgentModel are reported as status sessions.defaults. AgentBackend
	// default "none"; AgentModel default "" (omitted).
	AgentBackend, AgentModel string
	// WebChatEnabled and WebChatPort describe the WebChat server for status. Default
	// disabled; port 18788.
	WebChatEnabled bool
	WebChatPort    int
	// ProvidersDisabled means the gateway runs without providers: WhatsApp starts as
	// "disabled" instead of "unlinked". Default false.
	ProvidersDisabled bool
	// TelegramConfigured means a bot token is configured: Telegram starts as configured and
	// "starting" instead of "unconfigured". Default false.
	TelegramConfigured bool
	// Now is the clock for timestamps and ages. Default time.Now. Event scheduling and
	// probing use the real monotonic clock.
	Now func() time.Time
}

// withDefaults returns cfg with defaults applied, or an error naming the invalid field.
func (cfg Config) withDefaults() (Config, error) {
	durations := []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"ProbeInterval", &cfg.ProbeInterval, 2 * time.Second},
		{"PingTimeout", &cfg.PingTimeout, time.Second},
		{"MinEventInterval", &cfg.MinEventInterval, time.Second},
		{"MaxEventInterval", &cfg.MaxEventInterval, 60 * time.Second},
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
	if cfg.HeartbeatSeconds < 0 {
		return cfg, fmt.Errorf("health: HeartbeatSeconds %d is negative", cfg.HeartbeatSeconds)
	}
	if cfg.HeartbeatSeconds == 0 {
		cfg.HeartbeatSeconds = 60
	}
	if cfg.WebChatPort < 0 || cfg.WebChatPort > 65535 {
		return cfg, fmt.Errorf("health: WebChatPort %d out of range", cfg.WebChatPort)
	}
	if cfg.WebChatPort == 0 {
		cfg.WebChatPort = 18788
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
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
	cfg.Services = append([]string(nil), cfg.Services...)
	return cfg, nil
}

// Service is the health service.
type Service struct {
	cfg     Config
	nc      *nats.Conn
	log     *slog.Logger
	state   *state
	prober  *prober
	changed chan struct{} // poked (never blocking) whenever the state may have changed
	ready   chan struct{} // closed once the endpoints are subscribed on the server
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
	log = log.With("component", subject.ServiceHealth)
	p := &prober{
		nc:          nc,
		log:         log,
		names:       cfg.Services,
		pingSubj:    make([]string, len(cfg.Services)),
		pingTimeout: cfg.PingTimeout,
		file:        &sessionsFile{path: cfg.SessionsPath, log: log},
	}
	for i, name := range cfg.Services {
		if p.pingSubj[i], err = micro.ControlSubject(micro.PingVerb, name, ""); err != nil {
			return nil, fmt.Errorf("health: ping subject of %q: %w", name, err)
		}
		if name == providerWhatsApp || name == providerTelegram {
			subj, err := subject.ProviderStatus(name)
			if err != nil {
				return nil, fmt.Errorf("health: status subject of %q: %w", name, err)
			}
			p.statusSubj = append(p.statusSubj, subj)
		}
	}
	return &Service{
		cfg:     cfg,
		nc:      nc,
		log:     log,
		state:   newState(cfg),
		prober:  p,
		changed: make(chan struct{}, 1),
		ready:   make(chan struct{}),
	}, nil
}

// Ready is closed once Run has subscribed every endpoint on the server, so that a request
// sent after it is answered.
func (s *Service) Ready() <-chan struct{} { return s.ready }

// Run serves the health and status requests, probes and publishes health events until ctx
// ends, then stops everything it started and returns nil. It returns an error only when the
// service cannot be set up. Run must not be called twice.
func (s *Service) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	sub, err := s.nc.Subscribe(subject.ProviderStateAll, s.onProviderState)
	if err != nil {
		return fmt.Errorf("health: subscribe %s: %w", subject.ProviderStateAll, err)
	}
	defer func() { _ = sub.Unsubscribe() }()

	get := func(context.Context, []byte, nats.Header) (any, error) {
		return s.health(s.state.get(), time.Now()), nil
	}
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
	close(s.ready)
	s.log.Info("health service started", "services", strings.Join(s.cfg.Services, ","),
		"probe_interval", s.cfg.ProbeInterval)

	probeDone := make(chan struct{})
	go func() {
		defer close(probeDone)
		s.probeLoop(ctx)
	}()
	s.publishLoop(ctx)
	<-probeDone
	s.log.Info("health service stopped")
	return nil
}

// health returns the HealthSummary of snap at the current time.
func (s *Service) health(snap snapshot, start time.Time) schemas.HealthSummary {
	now := s.cfg.Now()
	sum := snap.health(s.cfg, now)
	sum.Ts = now.UnixMilli()
	sum.DurationMs = time.Since(start).Milliseconds()
	return sum
}

// status builds the StatusSummary; it asks the presence service for the queued system
// events and lists none when presence does not answer within queueTimeout.
func (s *Service) status(ctx context.Context) schemas.StatusSummary {
	ctx, cancel := context.WithTimeout(ctx, queueTimeout)
	defer cancel()
	var q wire.SystemEventQueue
	if err := wire.RequestJSON(ctx, s.nc, subject.PresenceQueue, struct{}{}, &q); err != nil {
		s.log.Debug("queued system events unavailable", "err", err)
		q.Events = nil
	}
	return s.state.get().status(s.cfg, s.cfg.Now(), q.Events)
}

// onProviderState applies a provider state event.
func (s *Service) onProviderState(msg *nats.Msg) {
	var ps wire.ProviderState
	if err := json.Unmarshal(msg.Data, &ps); err != nil {
		s.log.Warn("bad provider state event", "subject", msg.Subject, "err", err)
		return
	}
	if ps.Provider == "" {
		// gw.v1.evt.provider.<provider>.state
		if parts := strings.Split(msg.Subject, "."); len(parts) == 5 {
			ps.Provider = parts[3]
		}
	}
	if !s.state.setProvider(ps) {
		s.log.Debug("provider state event ignored", "subject", msg.Subject, "provider", ps.Provider)
		return
	}
	s.log.Debug("provider state", "provider", ps.Provider, "state", ps.State)
	s.poke()
}

// poke tells the publish loop that the state may have changed.
func (s *Service) poke() {
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

// probeLoop runs a probe round at once and then every ProbeInterval until ctx ends.
func (s *Service) probeLoop(ctx context.Context) {
	ticker := time.NewTicker(s.cfg.ProbeInterval)
	defer ticker.Stop()
	for {
		results, sessions, providers := s.prober.round(ctx)
		if ctx.Err() != nil {
			return // results of a cancelled round are not the services' fault
		}
		for _, ps := range providers {
			s.state.setProvider(ps)
		}
		for _, r := range s.state.setRound(results, sessions) {
			if r.ok {
				s.log.Info("service answers its ping", "service", r.name, "latency_ms", r.latency.Milliseconds())
			} else {
				s.log.Warn("service does not answer its ping", "service", r.name)
			}
		}
		s.poke()
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// publishLoop publishes health events as the schedule decides until ctx ends. Nothing is
// published before the first probe round finished.
func (s *Service) publishLoop(ctx context.Context) {
	sched := schedule{min: s.cfg.MinEventInterval, max: s.cfg.MaxEventInterval}
	var last fingerprint
	timer := time.NewTimer(s.cfg.MaxEventInterval)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.changed:
		case <-timer.C:
		}
		if !s.state.isProbed() {
			continue
		}
		now := time.Now()
		snap := s.state.get()
		fp := snap.fingerprint()
		publish, wait := sched.decide(now, fp != last)
		if publish {
			s.publish(s.health(snap, now))
			last = fp
			sched.published(now)
			_, wait = sched.decide(now, false)
		}
		timer.Reset(wait)
	}
}

// publish sends sum as a health event.
func (s *Service) publish(sum schemas.HealthSummary) {
	data, err := json.Marshal(sum)
	if err != nil {
		s.log.Error("encode health event", "err", err)
		return
	}
	if err := s.nc.Publish(subject.HealthChanged, data); err != nil {
		s.log.Warn("publish health event", "err", err)
	}
}
