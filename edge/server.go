// Package edge is the gateway's WebSocket server: it enforces the handshake and every frame
// rule of the wire protocol, routes client requests onto bus subjects through an explicit
// route table, fans bus events out to connections with per-connection seq and bounded
// queues, and runs the shutdown sequence. It never imports services or provider SDKs.
package edge

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
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

	Token            string        // required hello.auth.token; empty: none
	AllowedOrigins   []string      // browser origins allowed besides loopback ones
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

// Server is the WebSocket edge.
type Server struct {
	cfg     Config
	nc      *nats.Conn
	log     *slog.Logger
	routes  map[string]Route
	methods []string
	started time.Time
	// connAdded, when set (tests), is called with each connection once it is registered.
	connAdded atomic.Pointer[func()]

	mu           sync.Mutex         // guards conns and the cached state below, and orders fan-out
	conns        map[*conn]struct{} // connections past hello-ok (receive events)
	all          map[*conn]struct{} // every open connection, for shutdown
	presence     json.RawMessage    // last presence list ({"presence":[...]}), nil until known
	health       json.RawMessage    // last HealthSummary, nil until known
	stateVersion schemas.StateVersion

	runs      *wire.Runs // follows every run: broadcasts its events, ends two-stage waits
	stopping  atomic.Bool
	drain     drainTracker
	reqCtx    context.Context // parent of every bus request; canceled when the drain budget ends
	reqCancel context.CancelFunc
	connWG    sync.WaitGroup // connection handlers
	nextConn  atomic.Uint64
	connSalt  string
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
	s := &Server{
		cfg:    cfg,
		nc:     nc,
		log:    log.With("component", "edge"),
		routes: make(map[string]Route, len(cfg.Routes)),
		conns:  make(map[*conn]struct{}),
		all:    make(map[*conn]struct{}),
	}
	for _, r := range cfg.Routes {
		if !cfg.Schemas.HasMethod(r.Method) {
			return nil, fmt.Errorf("edge: route %q has no params schema", r.Method)
		}
		s.routes[r.Method] = r
		s.methods = append(s.methods, r.Method)
	}
	var salt [4]byte
	_, _ = rand.Read(salt[:])
	s.connSalt = hex.EncodeToString(salt[:])
	return s, nil
}

// Methods lists the methods this edge serves, in route-table order.
func (s *Server) Methods() []string { return append([]string(nil), s.methods...) }

// Run serves until ctx ends, then runs the shutdown sequence: stop accepting, broadcast
// shutdown, finish or fail in-flight requests within the drain budget, close every
// connection with 1012, and return nil.
func (s *Server) Run(ctx context.Context) error {
	s.started = s.cfg.Now()
	s.reqCtx, s.reqCancel = context.WithCancel(context.Background())
	defer s.reqCancel()

	subs, err := s.subscribe()
	if err != nil {
		return err
	}
	defer func() {
		for _, sub := range subs {
			_ = sub.Unsubscribe()
		}
	}()
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
		s.tickLoop(tickCtx)
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
	s.stopping.Store(true)
	// Stop accepting: closes the listener; upgraded connections are ours to close.
	shutCtx, cancel := context.WithTimeout(context.Background(), time.Second)
	_ = hs.Shutdown(shutCtx)
	cancel()

	s.broadcast(schemas.EventShutdown, mustJSON(schemas.ShutdownPayload{Reason: "gateway stopping"}), false, false)

	drained := s.drain.stop()
	timer := time.NewTimer(s.cfg.ShutdownTimeout)
	select {
	case <-drained:
	case <-timer.C:
		s.log.Warn("shutdown: in-flight requests did not finish in time; failing them", "budget", s.cfg.ShutdownTimeout)
		s.reqCancel()
		<-drained
	}
	timer.Stop()

	conns := s.snapshotConns()
	for _, c := range conns {
		c.queue.CloseAfterFlush(1012, "service restart")
	}
	waited := make(chan struct{})
	go func() { s.connWG.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(s.cfg.ShutdownTimeout):
		for _, c := range s.snapshotConns() {
			_ = c.ws.CloseNow()
		}
		<-waited
	}
	s.log.Info("edge stopped")
}

// snapshotConns lists every open connection, handshake done or not.
func (s *Server) snapshotConns() []*conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*conn, 0, len(s.all))
	for c := range s.all {
		out = append(out, c)
	}
	return out
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
	if json.Unmarshal(data, &p) != nil || len(p.Presence) == 0 {
		s.log.Warn("ignoring malformed presence event")
		return
	}
	s.mu.Lock()
	s.presence = append(json.RawMessage(nil), data...)
	s.stateVersion.Presence++
	s.fanOutLocked(schemas.EventPresence, s.presence, true, true)
	s.mu.Unlock()
}

func (s *Server) onHealth(data []byte) {
	if !json.Valid(data) {
		s.log.Warn("ignoring malformed health event")
		return
	}
	s.mu.Lock()
	s.health = append(json.RawMessage(nil), data...)
	s.stateVersion.Health++
	s.fanOutLocked(schemas.EventHealth, s.health, true, true)
	s.mu.Unlock()
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
		s.broadcast(schemas.EventAgent, data, false, false)
	case wire.RunEventChat:
		s.broadcast(schemas.EventChat, data, false, false)
	case wire.RunEventChatDelta:
		s.broadcast(schemas.EventChat, data, true, false)
	}
}

func (s *Server) tickLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.TickInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.broadcast(schemas.EventTick, mustJSON(schemas.TickPayload{Ts: s.cfg.Now().UnixMilli()}), true, false)
		}
	}
}

// broadcast sends an event to every connection that completed its handshake.
func (s *Server) broadcast(event string, payload []byte, droppable, withState bool) {
	s.mu.Lock()
	s.fanOutLocked(event, payload, droppable, withState)
	s.mu.Unlock()
}

// fanOutLocked encodes the event once and appends each connection's seq. s.mu is held, so
// events reach every connection in the same order.
func (s *Server) fanOutLocked(event string, payload []byte, droppable, withState bool) {
	if len(s.conns) == 0 {
		return
	}
	prefix := make([]byte, 0, len(payload)+96)
	prefix = append(prefix, `{"type":"event","event":`...)
	prefix = appendJSONString(prefix, event)
	prefix = append(prefix, `,"payload":`...)
	prefix = append(prefix, payload...)
	if withState {
		prefix = fmt.Appendf(prefix, `,"stateVersion":{"presence":%d,"health":%d}`, s.stateVersion.Presence, s.stateVersion.Health)
	}
	prefix = append(prefix, `,"seq":`...)
	for c := range s.conns {
		c.sendEvent(event, prefix, droppable)
	}
}

// snapshotLocked builds the hello-ok snapshot; s.mu is held.
func (s *Server) snapshotLocked() (presence []schemas.PresenceEntry, health json.RawMessage) {
	if s.presence != nil {
		var p schemas.PresencePayload
		if json.Unmarshal(s.presence, &p) == nil {
			presence = p.Presence
		}
	}
	if presence == nil {
		presence = []schemas.PresenceEntry{}
	}
	health = s.health
	if health == nil {
		health = mustJSON(s.fallbackHealth())
	}
	return presence, health
}

// ensureState fetches presence and health once when no event has brought them yet, so the
// first hello-ok has a real snapshot even if it races the services' first events.
func (s *Server) ensureState() {
	ctx, cancel := context.WithTimeout(s.reqCtx, 2*time.Second)
	defer cancel()
	s.mu.Lock()
	needPresence, needHealth := s.presence == nil, s.health == nil
	s.mu.Unlock()
	if needPresence {
		if data, err := wire.Request(ctx, s.nc, subject.PresenceList, nil, nil); err == nil && len(data) > 0 && data[0] == '[' {
			s.mu.Lock()
			if s.presence == nil { // kept in the presence event's shape
				s.presence = append(append([]byte(`{"presence":`), data...), '}')
			}
			s.mu.Unlock()
		}
	}
	if needHealth {
		if data, err := wire.Request(ctx, s.nc, subject.HealthGet, nil, nil); err == nil && json.Valid(data) {
			s.mu.Lock()
			if s.health == nil {
				s.health = data
			}
			s.mu.Unlock()
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

func (s *Server) newConnID() string {
	return fmt.Sprintf("%s-%d", s.connSalt, s.nextConn.Add(1))
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("edge: encode %T: %v", v, err))
	}
	return b
}

func appendJSONString(dst []byte, s string) []byte {
	b, _ := json.Marshal(s)
	return append(dst, b...)
}

// drainTracker counts requests in flight across all connections so shutdown can wait for
// them; once stopped it refuses new ones.
type drainTracker struct {
	mu      sync.Mutex
	n       int
	stopped bool
	idle    chan struct{}
}

// start registers a request; false once shutdown began.
func (d *drainTracker) start() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopped {
		return false
	}
	d.n++
	return true
}

func (d *drainTracker) done() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.n--
	if d.n == 0 && d.idle != nil {
		close(d.idle)
		d.idle = nil
	}
}

// stop refuses new requests and returns a channel closed when none is in flight.
func (d *drainTracker) stop() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stopped = true
	ch := make(chan struct{})
	if d.n == 0 {
		close(ch)
	} else {
		d.idle = ch
	}
	return ch
}
