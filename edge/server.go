// Package edge is the gateway's WebSocket server: it enforces the handshake and every frame
// rule of the wire protocol, routes client requests onto bus subjects through an explicit
// route table, fans bus events out to connections with per-connection seq and bounded
// queues, and runs the shutdown sequence. It never imports services or provider SDKs.
package edge

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/clawdis/clawdis/bus/subject"
	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/schemas"
)

// Config configures the edge. Zero values take the defaults noted on each field.
type Config struct {
	// Listener is the bound gateway port (see Listen). Required.
	Listener net.Listener
	// Schemas are the compiled protocol schemas. Required.
	Schemas *schemas.Set

	Version, Commit, Host string

	Token          string        // required hello.auth.token; empty: none
	AuthRateLimit  AuthRateLimit // failed-auth throttle per client address; defaults on the type
	AllowedOrigins []string      // browser origins allowed besides loopback ones
	AllowedHosts   []string      // HTTP Host names allowed besides loopback names and the bind address
	MaxConnections int           // WebSocket connections at once; more get 503; default 1024
	// IdleTimeout closes a client that sent nothing (no frame, no pong) this long; default
	// IdleTimeout(TickInterval). Pings go every TickInterval.
	IdleTimeout      time.Duration
	MaxPayload       int64         // largest inbound message; default 524288
	MaxBufferedBytes int64         // per-connection outbound queue bound; default 1572864
	TickInterval     time.Duration // default 30s
	HandshakeTimeout time.Duration // default 10s
	MaxInFlight      int           // requests in flight per connection; default 32
	ShutdownTimeout  time.Duration // drain budget for in-flight requests; default 5s
	WriteTimeout     time.Duration // one frame write; default 10s
	// Routes is the route table; default DefaultRoutes().
	Routes []Route
	// Events lists the event names announced in hello-ok; default tick, presence, health, shutdown.
	Events []string
	// RunHeartbeat is the agent runs' heartbeat interval (wire.RunWaiter); default
	// wire.RunHeartbeat.
	RunHeartbeat time.Duration
	// WebChatURL is the WebChat page the gateway port's browser page links to; empty when
	// WebChat is off.
	WebChatURL string
	// Verbose logs every frame in and out at Debug level (never tokens).
	Verbose bool
	// Now is the clock; default time.Now.
	Now func() time.Time
}

func (c *Config) setDefaults() {
	if c.MaxPayload <= 0 {
		c.MaxPayload = 524288
	}
	if c.MaxBufferedBytes <= 0 {
		c.MaxBufferedBytes = 1572864
	}
	if c.TickInterval <= 0 {
		c.TickInterval = 30 * time.Second
	}
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = 10 * time.Second
	}
	if c.MaxConnections <= 0 {
		c.MaxConnections = 1024
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = IdleTimeout(c.TickInterval)
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = 32
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = 5 * time.Second
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.Routes == nil {
		c.Routes = DefaultRoutes()
	}
	if c.Events == nil {
		c.Events = []string{schemas.EventTick, schemas.EventPresence, schemas.EventHealth, schemas.EventShutdown}
		seen := map[string]bool{}
		for _, r := range c.Routes {
			if !seen[r.Service] {
				seen[r.Service] = true
				c.Events = append(c.Events, serviceEvents[r.Service]...)
			}
		}
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Server is the WebSocket edge: the gateway's protocol server. It is the Backend of its
// hub's connections: it admits hellos, answers hello-ok from the state it holds, and routes
// requests onto the bus.
type Server struct {
	cfg     Config
	nc      *nats.Conn
	log     *slog.Logger
	hub     *Hub
	conn    ConnConfig
	routes  map[string]Route
	methods []string
	// absent maps the methods of DefaultRoutes that this gateway does not route to the
	// service they need, so a client asking for one learns why it is missing.
	absent map[string]string
	// paramsNilOK says, per method, whether absent params pass the params schema: decided
	// once, so a request without params costs no schema walk.
	paramsNilOK map[string]bool
	started     time.Time
	// helloPrefix is hello-ok up to the connection id: type, protocol, features, policy and
	// the server's own fields, encoded once.
	helloPrefix []byte

	// Guarded by the hub's lock (it orders the fan-out of the events that change them):
	presence     []byte // last presence list (a JSON array), nil until known
	health       []byte // last HealthSummary, nil until known
	stateVersion schemas.StateVersion

	runs  *wire.Runs // follows every run: broadcasts its events, ends two-stage waits
	calls *busCalls  // the bus requests of clients under way

	metrics *Metrics // the gateway's Prometheus metrics, served on /metrics
}

// New prepares an edge; it does no I/O.
func New(cfg Config, nc *nats.Conn, log *slog.Logger) (*Server, error) {
	if cfg.Listener == nil {
		return nil, errors.New("edge: Config.Listener is required")
	}
	if cfg.Schemas == nil {
		return nil, errors.New("edge: Config.Schemas is required")
	}
	cfg.setDefaults()
	var salt [4]byte
	_, _ = rand.Read(salt[:])
	s := &Server{
		cfg:         cfg,
		nc:          nc,
		log:         log.With("component", "edge"),
		hub:         NewHub(hex.EncodeToString(salt[:])),
		routes:      make(map[string]Route, len(cfg.Routes)),
		paramsNilOK: make(map[string]bool, len(cfg.Routes)),
	}
	s.conn = ConnConfig{
		Schemas: cfg.Schemas, Token: cfg.Token, MaxPayload: cfg.MaxPayload, MaxBufferedBytes: cfg.MaxBufferedBytes,
		MaxInFlight: cfg.MaxInFlight, HandshakeTimeout: cfg.HandshakeTimeout, WriteTimeout: cfg.WriteTimeout,
		Verbose: cfg.Verbose, Throttle: NewAuthThrottle(cfg.AuthRateLimit, cfg.Now),
	}
	for _, r := range cfg.Routes {
		if !cfg.Schemas.HasMethod(r.Method) {
			return nil, fmt.Errorf("edge: route %q has no params schema", r.Method)
		}
		s.routes[r.Method] = r
		s.methods = append(s.methods, r.Method)
		s.paramsNilOK[r.Method] = cfg.Schemas.Params(r.Method, nil) == nil
	}
	s.absent = make(map[string]string)
	for _, r := range DefaultRoutes() {
		if _, ok := s.routes[r.Method]; !ok {
			s.absent[r.Method] = r.Service
		}
	}
	s.helloPrefix = s.encodeHelloPrefix()
	s.metrics = NewMetrics(s.hub.Count, cfg.Now)
	s.conn.Metrics = s.metrics
	return s, nil
}

// encodeHelloPrefix encodes the parts of hello-ok that never change.
func (s *Server) encodeHelloPrefix() []byte {
	server := mustJSON(struct {
		Version string `json:"version"`
		Commit  string `json:"commit,omitempty"`
		Host    string `json:"host,omitempty"`
	}{s.cfg.Version, s.cfg.Commit, s.cfg.Host})
	b := []byte(`{"type":"hello-ok","protocol":` + strconv.Itoa(schemas.ProtocolVersion) + `,"features":`)
	b = append(b, mustJSON(schemas.Features{Methods: s.Methods(), Events: s.cfg.Events})...)
	b = append(b, `,"policy":`...)
	b = append(b, mustJSON(schemas.Policy{MaxPayload: s.cfg.MaxPayload, MaxBufferedBytes: s.cfg.MaxBufferedBytes,
		TickIntervalMs: s.cfg.TickInterval.Milliseconds()})...)
	b = append(b, `,"server":`...)
	b = append(b, server[:len(server)-1]...) // without its closing brace
	return append(b, `,"connId":`...)
}

// Methods lists the methods this edge serves, in route-table order.
func (s *Server) Methods() []string { return append([]string(nil), s.methods...) }

// Run serves until ctx ends, then runs the shutdown sequence: stop accepting, broadcast
// shutdown, finish or fail in-flight requests within the drain budget, close every
// connection with 1012, and return nil.
func (s *Server) Run(ctx context.Context) error {
	s.started = s.cfg.Now()
	subs, err := s.subscribe()
	if err != nil {
		return err
	}
	if s.calls, err = followReplies(s.nc, s.answerCall); err != nil {
		return fmt.Errorf("edge: %w", err)
	}
	subs = append(subs, s.calls.sub)
	defer func() {
		for _, sub := range subs {
			_ = sub.Unsubscribe()
		}
	}()
	msubs, err := s.metrics.follow(s.nc, s.log)
	if err != nil {
		return fmt.Errorf("edge: metrics: %w", err)
	}
	subs = append(subs, msubs...)
	if s.runs, err = wire.FollowRuns(s.nc, wire.RunsConfig{OnEvent: s.onRunEvent, Heartbeat: s.cfg.RunHeartbeat}); err != nil {
		return fmt.Errorf("edge: %w", err)
	}
	defer s.runs.Close()

	hs := &http.Server{
		Handler:           http.HandlerFunc(s.serveHTTP),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- hs.Serve(s.cfg.Listener) }()

	tickDone := make(chan struct{})
	tickCtx, stopTicks := context.WithCancel(ctx)
	go func() {
		defer close(tickDone)
		s.hub.Keepalive(tickCtx, s.cfg.TickInterval, s.cfg.IdleTimeout, s.tick)
	}()

	var runErr error
	select {
	case <-ctx.Done():
	case err := <-serveErr:
		if !errors.Is(err, http.ErrServerClosed) {
			runErr = fmt.Errorf("edge: serve: %w", err)
		}
	}
	stopTicks()
	<-tickDone
	s.shutdown(hs)
	return runErr
}

func (s *Server) shutdown(hs *http.Server) {
	s.hub.Stop()
	// Stop accepting: closes the listener; upgraded connections are ours to close.
	shutCtx, cancel := context.WithTimeout(context.Background(), time.Second)
	_ = hs.Shutdown(shutCtx)
	cancel()
	s.hub.Broadcast(schemas.EventShutdown, mustJSON(schemas.ShutdownPayload{Reason: "gateway stopping"}), nil, false)
	s.hub.Shutdown(s.cfg.ShutdownTimeout, s.cfg.ShutdownTimeout, s.log.Warn)
	s.log.Info("edge stopped")
}

// subscribe follows presence and health changes to keep the snapshot current and fan them out.
func (s *Server) subscribe() ([]*nats.Subscription, error) {
	var subs []*nats.Subscription
	for _, sp := range []struct {
		subj string
		fn   func(data []byte)
	}{
		{subject.PresenceChanged, s.onPresence},
		{subject.HealthChanged, s.onHealth},
	} {
		fn := sp.fn
		sub, err := s.nc.Subscribe(sp.subj, func(m *nats.Msg) { fn(m.Data) })
		if err != nil {
			for _, prev := range subs {
				_ = prev.Unsubscribe()
			}
			return nil, fmt.Errorf("edge: subscribe %s: %w", sp.subj, err)
		}
		subs = append(subs, sub)
	}
	if err := s.nc.Flush(); err != nil {
		return nil, fmt.Errorf("edge: flush subscriptions: %w", err)
	}
	return subs, nil
}

func (s *Server) onPresence(data []byte) {
	var p struct {
		Presence json.RawMessage `json:"presence"`
	}
	if json.Unmarshal(data, &p) != nil || len(p.Presence) == 0 || p.Presence[0] != '[' {
		s.log.Warn("ignoring malformed presence event")
		return
	}
	s.hub.Lock()
	s.presence = p.Presence
	s.stateVersion.Presence++
	sv := s.stateVersion
	s.hub.BroadcastLocked(schemas.EventPresence, data, &sv, true)
	s.hub.Unlock()
}

func (s *Server) onHealth(data []byte) {
	if !json.Valid(data) {
		s.log.Warn("ignoring malformed health event")
		return
	}
	data = bytes.Clone(data)
	s.hub.Lock()
	s.health = data
	s.stateVersion.Health++
	sv := s.stateVersion
	s.hub.BroadcastLocked(schemas.EventHealth, data, &sv, true)
	s.hub.Unlock()
}

// onRunEvent broadcasts the agent and chat events of every run. Agent events and chat
// finals are not droppable: a client that cannot keep up with a run it watches is closed as
// a slow consumer rather than shown a gap in the reply. Chat deltas are droppable (each
// carries the whole text so far).
func (s *Server) onRunEvent(kind string, data []byte) {
	if kind != wire.RunEventHeartbeat && kind != wire.RunEventFinal && !json.Valid(data) {
		s.log.Warn("ignoring malformed run event", "kind", kind)
		return
	}
	switch kind {
	case wire.RunEventAgent:
		s.hub.Broadcast(schemas.EventAgent, data, nil, false)
	case wire.RunEventChat:
		s.hub.Broadcast(schemas.EventChat, data, nil, false)
	case wire.RunEventChatDelta:
		s.hub.Broadcast(schemas.EventChat, data, nil, true)
	}
}

// tick sends the tick event; it runs every TickInterval, after the keepalive pings.
func (s *Server) tick() {
	s.hub.Broadcast(schemas.EventTick, mustJSON(schemas.TickPayload{Ts: s.cfg.Now().UnixMilli()}), nil, true)
}

// ensureState fetches presence and health once when no event has brought them yet, so the
// first hello-ok has a real snapshot even if it races the services' first events.
func (s *Server) ensureState() {
	s.hub.Lock()
	needPresence, needHealth := s.presence == nil, s.health == nil
	s.hub.Unlock()
	if !needPresence && !needHealth {
		return
	}
	ctx, cancel := context.WithTimeout(s.hub.reqCtx, 2*time.Second)
	defer cancel()
	if needPresence {
		if data, err := wire.Request(ctx, s.nc, subject.PresenceList, nil, nil); err == nil && len(data) > 0 && data[0] == '[' && json.Valid(data) {
			s.hub.Lock()
			if s.presence == nil {
				s.presence = data
			}
			s.hub.Unlock()
		}
	}
	if needHealth {
		if data, err := wire.Request(ctx, s.nc, subject.HealthGet, nil, nil); err == nil && json.Valid(data) {
			s.hub.Lock()
			if s.health == nil {
				s.health = data
			}
			s.hub.Unlock()
		}
	}
}

// fallbackHealth is a complete HealthSummary for when the health service has not answered.
func (s *Server) fallbackHealth() schemas.HealthSummary {
	return schemas.HealthSummary{
		OK:               false,
		Ts:               s.cfg.Now().UnixMilli(),
		Web:              schemas.WebHealth{State: schemas.WebUnlinked},
		Telegram:         schemas.TelegramHealth{State: schemas.TelegramUnconfigured},
		HeartbeatSeconds: 60,
		Sessions:         schemas.SessionsHealth{Recent: []schemas.SessionRecent{}},
		Services:         []schemas.ServiceHealth{{Name: subject.ServiceHealth, OK: false}},
	}
}
