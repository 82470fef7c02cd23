// Package webchat is the WebChat server (SPEC §10): it serves the embedded chat page on a
// loopback port (or, when the operator names trusted client networks in Config.AllowFrom, on
// any address, for a container whose published port arrives from the bridge) and relays the page's WebSocket (/ws, same origin) to the gateway over one
// upstream connection made with edge/client as a mode "webchat" client. The server holds the
// gateway token; browsers never see it. It answers each tab's hello itself from the upstream
// hello-ok (features and a current snapshot), keeps request ids of different tabs apart by
// sending every request upstream under the client's own ids, fans events out with a seq per
// tab through a bounded queue, and turns a lost gateway into UNAVAILABLE answers plus a
// shutdown event, followed by fresh presence and health events once it is back.
package webchat

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
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/clawdis/clawdis/edge"
	"github.com/clawdis/clawdis/edge/client"
	"github.com/clawdis/clawdis/schemas"
)

// Defaults of Config.
const (
	DefaultAddr             = "127.0.0.1:18788"
	DefaultMaxBufferedBytes = 1572864
	DefaultMaxPayload       = 524288
	DefaultInstanceID       = "clawdis-webchat"
	ClientName              = "clawdis-webchat"
	ClientMode              = "webchat"
)

// ErrNotLoopback is returned by New when Addr or Listener is not a loopback address and
// Config.AllowFrom is empty: the page and its relay hold the gateway token's power and must
// only be reachable locally unless the operator names the client networks to trust.
var ErrNotLoopback = errors.New("webchat: listen address must be loopback")

// Config configures the WebChat server. Zero values take the defaults noted per field.
type Config struct {
	// Listener is the bound HTTP listener. When nil, Run binds Addr.
	Listener net.Listener
	// Addr is bound by Run when Listener is nil. Default "127.0.0.1:18788". Must be loopback
	// (as must Listener's address) unless AllowFrom is non-empty; then any address, including
	// the unspecified 0.0.0.0 or ::, is accepted.
	Addr string
	// AllowFrom are client networks served like loopback (say the Docker bridge, whose
	// gateway address is where a host's published port arrives from). Empty (the default):
	// loopback clients only, on a loopback address only. A client address is unmapped
	// (IPv4-in-IPv6 to IPv4) before the check, and IPv4-in-IPv6 prefixes of /96 or longer
	// are taken as the IPv4 prefixes they spell; addresses with an IPv6 zone match no
	// prefix. The Host and Origin checks stay loopback-only: the browser must still address
	// the page as http://127.0.0.1:PORT (or localhost, [::1]).
	AllowFrom []netip.Prefix
	// GatewayURL is the gateway's WebSocket URL. Default "ws://127.0.0.1:18789".
	GatewayURL string
	// Token is the gateway token sent in the upstream hello. When set, every tab's hello must
	// carry it too (auth.token, compared in constant time, failures throttled per address):
	// WebChat is exactly as protected as the gateway port (SPEC §10). Never logged, never
	// sent to a browser.
	Token string
	// AuthRateLimit throttles failed tab authentication per client address; defaults on the
	// type.
	AuthRateLimit edge.AuthRateLimit
	// Version is reported as the upstream client version. Default "dev".
	Version string
	// InstanceID keys the upstream connection's presence entry, so reconnects update one
	// entry. Default "clawdis-webchat".
	InstanceID string
	// Log receives the server's logs. Default discards them.
	Log *slog.Logger
	// Schemas are the compiled protocol schemas used to check browser frames. Default
	// schemas.Load() in New.
	Schemas *schemas.Set
	// Backoff is the upstream reconnect policy (also used between failed first dials); see
	// client.Backoff for its defaults.
	Backoff client.Backoff
	// DialTimeout bounds one upstream connect plus handshake. Default 10s.
	DialTimeout time.Duration
	// MaxBufferedBytes bounds each tab's outbound queue. Default 1572864.
	MaxBufferedBytes int64
	// MaxInFlight bounds the requests one tab may have in flight. Default 32.
	MaxInFlight int
	// HandshakeTimeout is how long a tab may take to send its hello. Default 10s.
	HandshakeTimeout time.Duration
	// WriteTimeout bounds one frame write to a tab. Default 10s.
	WriteTimeout time.Duration
	// ShutdownTimeout bounds how long Run waits for tabs to close on shutdown. Default 5s.
	ShutdownTimeout time.Duration
	// MaxConnections bounds the tabs at once; more get 503 before the upgrade. Default 1024.
	MaxConnections int
	// PingInterval is how often tabs are pinged. Default 30s.
	PingInterval time.Duration
	// IdleTimeout closes a tab that sent nothing (no frame, no pong) this long. Default
	// edge.IdleTimeout(PingInterval).
	IdleTimeout time.Duration
}

func (c Config) withDefaults() (Config, error) {
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	if c.GatewayURL == "" {
		c.GatewayURL = client.DefaultURL
	}
	if c.Version == "" {
		c.Version = "dev"
	}
	if c.InstanceID == "" {
		c.InstanceID = DefaultInstanceID
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = client.DefaultDialTimeout
	}
	if c.MaxBufferedBytes <= 0 {
		c.MaxBufferedBytes = DefaultMaxBufferedBytes
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = 32
	}
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = 10 * time.Second
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = 5 * time.Second
	}
	if c.MaxConnections <= 0 {
		c.MaxConnections = 1024
	}
	if c.PingInterval <= 0 {
		c.PingInterval = 30 * time.Second
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = edge.IdleTimeout(c.PingInterval)
	}
	addr := c.Addr
	if c.Listener != nil {
		addr = c.Listener.Addr().String()
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return c, fmt.Errorf("webchat: address %q: %w", addr, err)
	}
	allow, err := normalizePrefixes(c.AllowFrom)
	if err != nil {
		return c, err
	}
	c.AllowFrom = allow
	if !edge.IsLoopbackHost(host) && len(c.AllowFrom) == 0 {
		return c, fmt.Errorf("%w: %s; to serve other client networks set AllowFrom "+
			"(--allow-from, or --webchat-allow-from for clawdis service webchat)", ErrNotLoopback, addr)
	}
	return c, nil
}

// normalizePrefixes returns a copy of allow with IPv4-in-IPv6 prefixes (::ffff:a.b.c.d/96+)
// turned into IPv4 prefixes, so that they match the unmapped client addresses; an invalid
// (zero) prefix is an error.
func normalizePrefixes(allow []netip.Prefix) ([]netip.Prefix, error) {
	if len(allow) == 0 {
		return nil, nil
	}
	out := make([]netip.Prefix, 0, len(allow))
	for i, p := range allow {
		if !p.IsValid() {
			return nil, fmt.Errorf("webchat: AllowFrom[%d] %q is not a valid network prefix", i, p)
		}
		if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// Server is the WebChat HTTP server and relay.
type Server struct {
	cfg   Config
	log   *slog.Logger
	set   *schemas.Set
	ready chan struct{}
	addr  atomic.Pointer[net.Addr]
	cl    atomic.Pointer[client.Client] // nil until the first upstream connection

	hub       *edge.Hub       // the tabs; its lock guards everything below and orders the fan-out
	conn      edge.ConnConfig // every tab's limits
	up        bool            // the upstream connection is established
	firstUp   chan struct{}   // closed when the upstream connection is first established
	firstTry  chan struct{}   // closed when the first upstream dial has succeeded or failed
	everUp    bool            // some upstream connection was established before
	announced bool            // tabs were told the gateway is gone (shutdown event)
	lastErr   string          // why the last upstream dial or connection failed; "" while up
	hello     schemas.HelloOK // of the current (or last) upstream connection
	helloAt   time.Time
	presence  json.RawMessage // current presence list (JSON array)
	health    json.RawMessage // current HealthSummary
	sv        schemas.StateVersion
	// upHook, when set (tests), is called under the hub's lock with each change of the
	// upstream state.
	upHook func(up bool)
}

// New validates cfg and prepares a server; it does no I/O.
func New(cfg Config) (*Server, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	set := cfg.Schemas
	if set == nil {
		if set, err = schemas.Load(); err != nil {
			return nil, fmt.Errorf("webchat: protocol schemas: %w", err)
		}
	}
	var salt [4]byte
	_, _ = rand.Read(salt[:])
	s := &Server{
		cfg:      cfg,
		log:      cfg.Log.With("component", "webchat"),
		set:      set,
		ready:    make(chan struct{}),
		firstUp:  make(chan struct{}),
		firstTry: make(chan struct{}),
		hub:      edge.NewHub("wc" + hex.EncodeToString(salt[:])),
	}
	s.conn = edge.ConnConfig{
		Schemas: set, Token: cfg.Token, Throttle: edge.NewAuthThrottle(cfg.AuthRateLimit, nil), MaxPayload: DefaultMaxPayload, MaxBufferedBytes: cfg.MaxBufferedBytes,
		MaxInFlight: cfg.MaxInFlight, HandshakeTimeout: cfg.HandshakeTimeout, WriteTimeout: cfg.WriteTimeout,
		MaxPayloadAfter: func() int64 {
			s.hub.Lock()
			defer s.hub.Unlock()
			return s.maxPayloadLocked()
		},
	}
	return s, nil
}

// Ready is closed once the HTTP listener is bound and served. The upstream connection may
// still be coming up: until it is, tabs get a hello-error and retry.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Addr is the bound HTTP address; nil before Ready.
func (s *Server) Addr() net.Addr {
	if a := s.addr.Load(); a != nil {
		return *a
	}
	return nil
}

// Run serves until ctx ends, then closes every tab (1012 service restart), closes the
// upstream connection and returns nil once every goroutine it started has stopped. It
// returns an error when the listener cannot be bound or fails.
func (s *Server) Run(ctx context.Context) error {
	ln := s.cfg.Listener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", s.cfg.Addr); err != nil {
			return fmt.Errorf("webchat: listen on %s: %w", s.cfg.Addr, err)
		}
	}
	addr := ln.Addr()
	s.addr.Store(&addr)
	hs := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- hs.Serve(ln) }()

	upCtx, stopUpstream := context.WithCancel(ctx)
	defer stopUpstream()
	upDone := make(chan struct{}, 2)
	go func() {
		defer func() { upDone <- struct{}{} }()
		s.upstream(upCtx)
	}()
	go func() {
		defer func() { upDone <- struct{}{} }()
		s.hub.Keepalive(upCtx, s.cfg.PingInterval, s.cfg.IdleTimeout, nil)
	}()
	close(s.ready)
	attrs := []any{"url", "http://" + addr.String(), "gateway", s.cfg.GatewayURL}
	if len(s.cfg.AllowFrom) > 0 {
		attrs = append(attrs, "allow_from", prefixStrings(s.cfg.AllowFrom))
	}
	s.log.Info("webchat listening", attrs...)

	var runErr error
	select {
	case <-ctx.Done():
	case err := <-serveErr:
		if !errors.Is(err, http.ErrServerClosed) {
			runErr = fmt.Errorf("webchat: serve: %w", err)
		}
	}
	s.shutdown(hs)
	stopUpstream()
	<-upDone
	<-upDone
	s.log.Info("webchat stopped")
	return runErr
}

// shutdown stops accepting, fails relayed requests at once (the tabs are told nothing more),
// and closes every tab within ShutdownTimeout.
func (s *Server) shutdown(hs *http.Server) {
	s.hub.Stop()
	shutCtx, cancel := context.WithTimeout(context.Background(), time.Second)
	_ = hs.Shutdown(shutCtx) // closes the listener; upgraded connections are ours
	cancel()
	s.hub.Shutdown(0, s.cfg.ShutdownTimeout, nil)
}

// prefixStrings renders prefixes for the logs.
func prefixStrings(ps []netip.Prefix) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}
