package provider

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"

	"github.com/clawdis/clawdis/bus/subject"
	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/schemas"
	"github.com/clawdis/clawdis/services/internal/backoff"
	"github.com/clawdis/clawdis/services/internal/idem"
	"github.com/clawdis/clawdis/services/internal/jsstore"
)

// Version is the version the core registers with nats micro.
const Version = "1.0.0"

// Defaults of Config.
const (
	DefaultSendTimeout   = 2 * time.Minute
	DefaultTypingTimeout = 15 * time.Second
	// DefaultInboundTimeout bounds storing one inbound message.
	DefaultInboundTimeout = 10 * time.Second
	// maxInFlight bounds the send and typing requests served at once; further requests
	// wait in the bus subscription.
	maxInFlight = 32
)

// StateNamer is implemented by a Network whose state names differ from WhatsApp's. The
// core reports Initial (default schemas.WebConnecting) before the network reported
// anything and Retrying (default schemas.WebReconnecting) while it waits to call Run again
// or after it gave up.
type StateNamer interface {
	CoreStates() (initial, retrying string)
}

// Config configures a Core. Network is required; every other zero value works.
type Config struct {
	// Network is the adapter the core drives; its ID names the micro service and subjects.
	Network Network
	// DedupeDir is where an earlier version kept its records (<state>/dedupe): its
	// <id>-send.json is read once into the idempotency bucket and <id>-inbound.json retired
	// (the inbound stream dedupes now), both renamed *.migrated. Default "": nothing to
	// migrate.
	DedupeDir string
	// Replicas is the number of JetStream replicas of the inbound stream and the
	// idempotency bucket (bus.replicas). Default 1.
	Replicas int
	// InboundTimeout bounds the wait for the inbound stream's acknowledgement of one message.
	// Default DefaultInboundTimeout.
	InboundTimeout time.Duration
	// Reconnect is the restart policy for transient failures of Network.Run.
	Reconnect Policy
	// SendTimeout bounds one Network.Send (retries and rate-limit waits included).
	// Default 2 minutes.
	SendTimeout time.Duration
	// MediaDir is where adapters save inbound media (<state>/media/inbound); files older than
	// MediaMaxAge are removed at start and hourly. Default "": no pruning.
	MediaDir string
	// MediaMaxAge is how long inbound media is kept. Default DefaultMediaMaxAge (7 days).
	MediaMaxAge time.Duration
	// OwnerProbe is how long a starting core listens for other copies of the same provider
	// before it takes it (see claimOwnership). Default DefaultOwnerProbe.
	OwnerProbe time.Duration
	// PrivateBus says that no other process can reach the bus (the embedded bus without a
	// TCP listener): the core takes the provider without listening for other copies.
	PrivateBus bool
	// Metadata is registered as the micro service's metadata: the provider's static facts
	// (wire.Meta* keys) for whoever reads them (health). Default none.
	Metadata map[string]string
	// Now is the clock for timestamps and record ages. Default time.Now.
	Now func() time.Time
	// Rand returns the jitter fraction in [0,1). Default math/rand/v2.Float64.
	Rand func() float64
	// Sleep waits d or until ctx ends (returning ctx.Err()); the supervisor waits its
	// backoff with it. Default backoff.Sleep.
	Sleep func(ctx context.Context, d time.Duration) error
}

var serviceName = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// Core supervises one Network and serves its bus endpoints.
type Core struct {
	cfg      Config
	id       string
	nc       *nats.Conn
	log      *slog.Logger
	retrying string
	ready    chan struct{}
	setUp    *wire.SetUp // finished once the inbound stream and the records are open

	reconnect backoff.Policy // cfg.Reconnect with its defaults

	subjState, subjInbound, subjSend, subjStatus, subjTyping string

	mu        sync.Mutex // guards state and connected; held while a state is published
	state     wire.ProviderState
	connected bool // a state with Connected arrived during the current run

	js    jetstream.JetStream // stores inbound messages in the inbound stream
	sends *idem.Store

	workMu   sync.Mutex // guards stopping and the wg.Add calls
	stopping bool
	work     sync.WaitGroup
	slots    chan struct{}
	restart  chan struct{} // a request to supervise the network again (Host.Restart)
}

// New validates cfg and prepares a core; it does no I/O. A nil log discards.
func New(cfg Config, nc *nats.Conn, log *slog.Logger) (*Core, error) {
	if nc == nil {
		return nil, errors.New("provider: nil bus connection")
	}
	if cfg.Network == nil {
		return nil, errors.New("provider: nil Network")
	}
	id := cfg.Network.ID()
	if !subject.ValidToken(id) || !serviceName.MatchString(id) {
		return nil, fmt.Errorf("provider: invalid network id %q", id)
	}
	reconnect, err := cfg.Reconnect.backoff()
	if err != nil {
		return nil, fmt.Errorf("provider %s: %w", id, err)
	}
	if cfg.SendTimeout < 0 {
		return nil, fmt.Errorf("provider %s: SendTimeout %s is negative", id, cfg.SendTimeout)
	}
	if cfg.OwnerProbe < 0 {
		return nil, fmt.Errorf("provider %s: OwnerProbe %s is negative", id, cfg.OwnerProbe)
	}
	if cfg.OwnerProbe == 0 {
		cfg.OwnerProbe = DefaultOwnerProbe
	}
	if cfg.SendTimeout == 0 {
		cfg.SendTimeout = DefaultSendTimeout
	}
	if cfg.InboundTimeout < 0 {
		return nil, fmt.Errorf("provider %s: InboundTimeout %s is negative", id, cfg.InboundTimeout)
	}
	if cfg.InboundTimeout == 0 {
		cfg.InboundTimeout = DefaultInboundTimeout
	}
	if cfg.MediaMaxAge < 0 {
		return nil, fmt.Errorf("provider %s: MediaMaxAge %s is negative", id, cfg.MediaMaxAge)
	}
	if cfg.MediaMaxAge == 0 {
		cfg.MediaMaxAge = DefaultMediaMaxAge
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Float64
	}
	if cfg.Sleep == nil {
		cfg.Sleep = backoff.Sleep
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	initial, retrying := schemas.WebConnecting, schemas.WebReconnecting
	if n, ok := cfg.Network.(StateNamer); ok {
		initial, retrying = n.CoreStates()
	}
	c := &Core{
		cfg:       cfg,
		reconnect: reconnect,
		id:        id,
		nc:        nc,
		log:       log.With("component", id),
		retrying:  retrying,
		ready:     make(chan struct{}),
		setUp:     wire.NewSetUp(),
		state:     wire.ProviderState{Provider: id, State: initial},
		slots:     make(chan struct{}, maxInFlight),
		restart:   make(chan struct{}, 1),
	}
	for _, s := range []struct {
		dst *string
		fn  func(string) (string, error)
	}{
		{&c.subjState, subject.ProviderState},
		{&c.subjInbound, subject.ProviderInbound},
		{&c.subjSend, subject.ProviderSend},
		{&c.subjStatus, subject.ProviderStatus},
		{&c.subjTyping, subject.ProviderTyping},
	} {
		if *s.dst, err = s.fn(id); err != nil {
			return nil, fmt.Errorf("provider %s: %w", id, err)
		}
	}
	return c, nil
}

// Ready is closed once Run has subscribed every endpoint on the server.
func (c *Core) Ready() <-chan struct{} { return c.ready }

// State returns the latest provider state.
func (c *Core) State() wire.ProviderState {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

// Run opens the inbound stream and the records, serves the endpoints and supervises the network until
// ctx ends; then it stops the network and every goroutine it started and returns nil. It
// returns an error only when it cannot be set up. Run must not be called twice.
func (c *Core) Run(ctx context.Context) error {
	owner, err := c.claimOwnership(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped while claiming
		}
		return err
	}
	defer func() { _ = owner.Unsubscribe() }()
	// The endpoints are subscribed first, so that the provider is ready at once; a send
	// waits until the stream and the records are open (setUp), the network starts after.
	svc, err := c.serve(ctx)
	if err != nil {
		return fmt.Errorf("provider %w", err)
	}
	close(c.ready)
	if err := c.open(ctx); err != nil {
		c.setUp.Finish(err)
		if err := svc.Stop(); err != nil {
			c.log.Warn("stopping micro service failed", "err", err)
		}
		if ctx.Err() != nil {
			return nil // stopped while JetStream was not ready
		}
		return err
	}
	c.setUp.Finish(nil)
	c.log.Info("provider started")

	superCtx, stopSuper := context.WithCancel(context.Background())
	superDone := make(chan struct{})
	go func() {
		defer close(superDone)
		c.superviseAgain(superCtx)
	}()
	mediaCtx, stopMedia := context.WithCancel(context.Background())
	mediaDone := make(chan struct{})
	go func() {
		defer close(mediaDone)
		if c.cfg.MediaDir != "" {
			c.mediaLoop(mediaCtx)
		}
	}()

	<-ctx.Done()
	if err := svc.Stop(); err != nil {
		c.log.Warn("stopping micro service failed", "err", err)
	}
	c.workMu.Lock()
	c.stopping = true
	c.workMu.Unlock()
	stopSuper()
	<-superDone
	c.work.Wait()
	stopMedia()
	<-mediaDone
	c.log.Info("provider stopped")
	return nil
}

// open creates or opens the inbound stream and the send idempotency records, and migrates
// the earlier version's record files.
func (c *Core) open(ctx context.Context) error {
	store := jsstore.Config{Replicas: c.cfg.Replicas, Log: c.log}
	if _, err := jsstore.Inbound(ctx, c.nc, store); err != nil {
		return fmt.Errorf("provider %s: %w", c.id, err)
	}
	js, err := jetstream.New(c.nc)
	if err != nil {
		return fmt.Errorf("provider %s: jetstream: %w", c.id, err)
	}
	c.js = js
	kv, err := jsstore.Idem(ctx, c.nc, store)
	if err != nil {
		return fmt.Errorf("provider %s: %w", c.id, err)
	}
	if c.sends, err = idem.New(kv, idem.Config{Prefix: "send." + c.id, Now: c.cfg.Now}); err != nil {
		return fmt.Errorf("provider %s: %w", c.id, err)
	}
	if c.cfg.DedupeDir != "" {
		c.migrate(ctx)
	}
	return nil
}

// migrate moves the earlier version's record files out of the way: the send results into
// the idempotency bucket, the inbound dedupe records nowhere (the network was acknowledged
// for those messages, so it does not deliver them again, and the inbound stream dedupes
// what comes now). A failure is logged and retried at the next start.
func (c *Core) migrate(ctx context.Context) {
	legacy := filepath.Join(c.cfg.DedupeDir, c.id+"-send.json")
	if n, err := c.sends.Migrate(ctx, legacy); err != nil {
		c.log.Warn("send idempotency records of the earlier version not migrated", "err", err)
	} else if n > 0 {
		c.log.Info("send idempotency records migrated", "count", n, "from", legacy)
	}
	seen := filepath.Join(c.cfg.DedupeDir, c.id+"-inbound.json")
	switch err := os.Rename(seen, seen+idem.MigratedSuffix); {
	case err == nil:
		c.log.Info("inbound dedupe records of the earlier version retired: the inbound stream dedupes now", "file", seen)
	case !errors.Is(err, os.ErrNotExist):
		c.log.Warn("inbound dedupe records of the earlier version not retired", "err", err)
	}
}

// serve registers the micro service and its endpoints.
func (c *Core) serve(ctx context.Context) (micro.Service, error) {
	send := func(_ context.Context, data []byte, _ nats.Header) (any, error) {
		if err := c.setUp.Wait(c.id+" provider", wire.SetUpWait); err != nil {
			return nil, err
		}
		return c.handleSend(ctx, data)
	}
	status := func(context.Context, []byte, nats.Header) (any, error) { return c.State(), nil }
	typing := func(_ context.Context, data []byte, _ nats.Header) (any, error) { return c.handleTyping(ctx, data) }
	endpoints := []wire.Endpoint{
		{Name: "send", Subject: c.subjSend, Handler: c.worker(ctx, wire.Handler(c.id+".send", send))},
		{Name: "status", Subject: c.subjStatus, Handler: wire.Handler(c.id+".status", status)},
		{Name: "typing", Subject: c.subjTyping, Handler: c.worker(ctx, wire.Handler(c.id+".typing", typing))},
	}
	description := c.id + " provider: send, status, typing"
	if n, ok := c.cfg.Network.(Endpointer); ok {
		for _, e := range n.Endpoints(Host{Go: c.goWork, Restart: c.requestRestart}) {
			handle := e.Handle
			fn := func(_ context.Context, data []byte, _ nats.Header) (any, error) { return handle(ctx, data) }
			endpoints = append(endpoints, wire.Endpoint{Name: e.Name, Subject: e.Subject,
				Handler: c.worker(ctx, wire.Handler(c.id+"."+e.Name, fn))})
			description += ", " + e.Name
		}
	}
	return wire.AddService(c.nc, micro.Config{
		Name:        c.id,
		Version:     Version,
		Description: description,
		Metadata:    c.cfg.Metadata,
	}, endpoints...)
}

// goWork runs fn on a goroutine that Run waits for (Host.Go); false when stopping.
func (c *Core) goWork(fn func()) bool {
	c.workMu.Lock()
	defer c.workMu.Unlock()
	if c.stopping {
		return false
	}
	c.work.Add(1)
	go func() {
		defer c.work.Done()
		fn()
	}()
	return true
}

// requestRestart asks for the network to be supervised again (Host.Restart).
func (c *Core) requestRestart() {
	select {
	case c.restart <- struct{}{}:
	default: // one pending request is enough
	}
}

// worker runs h on its own goroutine so that slow network calls do not hold the bus
// subscription; at most maxInFlight run at once.
func (c *Core) worker(ctx context.Context, h micro.Handler) micro.Handler {
	return micro.HandlerFunc(func(req micro.Request) {
		select {
		case c.slots <- struct{}{}:
		case <-ctx.Done():
			wire.RespondError(req, c.id, wire.Unavailable(true, "%s provider stopping", c.id))
			return
		}
		c.workMu.Lock()
		if c.stopping {
			c.workMu.Unlock()
			<-c.slots
			wire.RespondError(req, c.id, wire.Unavailable(true, "%s provider stopping", c.id))
			return
		}
		c.work.Add(1)
		c.workMu.Unlock()
		d := wire.Detach(c.nc, req) // answered after this handler returned
		go func() {
			defer c.work.Done()
			defer func() { <-c.slots }()
			h.Handle(d)
		}()
	})
}
