// Package whatsapp is the WhatsApp adapter: it drives whatsmeow (the only package that
// imports it) behind provider.Network — the linked-device store on the pure-Go SQLite
// driver, one connection per Run with whatsmeow's own reconnects disabled (the provider core
// supervises), inbound message conversion with media downloads, sends with media, typing and
// read receipts — and provides the QR login and the logout for the CLI.
package whatsapp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/clawdis/clawdis/bus/subject"
	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/schemas"
	"github.com/clawdis/clawdis/services/provider"
	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/store/sqlstore"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
)

// ID is the provider id.
const ID = subject.ServiceWhatsApp

// maxQueuedEvents bounds the queued connection events: more are dropped (and logged)
// rather than blocking whatsmeow.
const maxQueuedEvents = 1024

// inboundTimeout bounds the handling of one inbound message in whatsmeow's event handler
// (media downloads and storing it); past it the message is not acknowledged and WhatsApp
// delivers it again.
const inboundTimeout = 2 * time.Minute

// Config configures the adapter. The zero value of every field but StoreDir works.
type Config struct {
	// StoreDir holds the whatsmeow SQLite store (whatsmeow.db), created 0700:
	// <state>/whatsapp. Without it Run reports "disabled" and ends with
	// provider.ErrNotConfigured.
	StoreDir string
	// MediaDir receives inbound media (mode 0600 files): <state>/media/inbound. Default ""
	// = attachments are reported without a path.
	MediaDir string
	// Log is the logger; nil discards logs.
	Log *slog.Logger
	// Now is the clock for read receipts and keepalive ages. Default time.Now.
	Now func() time.Time
	// MediaFetchTimeout bounds reading one outbound media URL or file. Default 60s.
	MediaFetchTimeout time.Duration
	// HTTPClient fetches outbound media URLs. Default a client without a global timeout
	// (MediaFetchTimeout applies).
	HTTPClient *http.Client
	// DialLogin, when set, makes the connection of a web login instead of dialling
	// WhatsApp's servers: tests put a fake WhatsApp here (package whatsapptest).
	DialLogin LoginDialer
}

// linkState is what the last look at the store said.
type linkState int

const (
	linkUnknown linkState = iota // Run has not looked yet
	linkNo
	linkYes
)

// Client is the WhatsApp provider.Network.
type Client struct {
	cfg    Config
	log    *slog.Logger
	loader *mediaLoader

	// storeMu makes this client's store opens one at a time: whatsmeow's schema upgrade
	// fails when two connections create a new store at once (Run and web.login.start).
	storeMu sync.Mutex

	mu      sync.Mutex
	running bool
	linked  linkState
	wa      *whatsmeow.Client // the connection while Run serves, else nil
	reads   *readTracker
	typing  map[string]bool // chats with the typing indicator on
	selfLID types.JID       // the account's LID, set on Connected

	// paused stops Run from connecting while a client links WhatsApp (web.login.start);
	// stopRun ends the running Run's connection and runDone is closed when that Run returned.
	paused  bool
	stopRun context.CancelFunc
	runDone chan struct{}

	configure func(*whatsmeow.Client) // test hook: adjusts the connection before it dials
	// loginReach bounds reaching WhatsApp in a web login; default DefaultReachTimeout.
	loginReach time.Duration
	// remoteLogout tells WhatsApp to remove a device before a forced web login.
	remoteLogout func(context.Context, *store.Device) bool
	// dialLogin makes a web login's connection (tests fake WhatsApp here).
	dialLogin func(ctx context.Context, dev *store.Device, log *slog.Logger) LoginConn
}

var _ provider.Network = (*Client)(nil)

// New validates cfg and returns a client; it does no I/O.
func New(cfg Config) (*Client, error) {
	if cfg.MediaFetchTimeout < 0 {
		return nil, fmt.Errorf("whatsapp: MediaFetchTimeout %s is negative", cfg.MediaFetchTimeout)
	}
	if cfg.MediaFetchTimeout == 0 {
		cfg.MediaFetchTimeout = 60 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{}
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Client{
		cfg:          cfg,
		log:          log.With("component", ID),
		loader:       &mediaLoader{http: cfg.HTTPClient, timeout: cfg.MediaFetchTimeout},
		reads:        newReadTracker(),
		typing:       make(map[string]bool),
		remoteLogout: remoteLogout,
	}
	c.dialLogin = func(ctx context.Context, dev *store.Device, log *slog.Logger) LoginConn {
		wa := dialWhatsApp(ctx, dev, log)
		if c.configure != nil {
			c.configure(wa)
		}
		return waLogin{wa}
	}
	if cfg.DialLogin != nil {
		c.dialLogin = cfg.DialLogin
	}
	return c, nil
}

// ID is "whatsapp".
func (c *Client) ID() string { return ID }

// errLinking ends Run while a client links WhatsApp; the link runs it again.
var errLinking = errors.New("a client is linking WhatsApp (web.login)")

// Run opens the store, connects and serves until ctx ends (nil) or the connection fails:
// a *provider.TerminalError when retrying cannot help (unlinked, logged out, replaced,
// banned, client outdated, a client linking WhatsApp), any other error when the supervisor
// should reconnect.
func (c *Client) Run(ctx context.Context, sink provider.Sink) error {
	c.mu.Lock()
	if c.running {
		c.mu.Unlock()
		return errors.New("whatsapp: Run called while already running")
	}
	if c.paused {
		c.mu.Unlock()
		return c.linking(sink)
	}
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	c.running, c.stopRun, c.runDone = true, stop, make(chan struct{})
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.running = false
		clear(c.typing)
		c.selfLID = types.EmptyJID
		close(c.runDone)
		c.stopRun, c.runDone = nil, nil
		c.mu.Unlock()
	}()
	err := c.run(ctx, sink)
	c.mu.Lock()
	paused := c.paused
	c.mu.Unlock()
	if paused {
		return c.linking(sink)
	}
	return err
}

// linking reports that Run stands aside while a client links WhatsApp.
func (c *Client) linking(sink provider.Sink) error {
	sink.State(wire.ProviderState{State: schemas.WebUnlinked, LastError: "linking WhatsApp from a client"})
	return &provider.TerminalError{State: schemas.WebUnlinked, Err: errLinking}
}

// pause stops the running connection, if any, and keeps Run from connecting until resume;
// it returns once that Run returned, or ctx's error when ctx ends first.
func (c *Client) pause(ctx context.Context) error {
	c.mu.Lock()
	c.paused = true
	stop, done := c.stopRun, c.runDone
	c.mu.Unlock()
	if stop == nil {
		return nil
	}
	stop()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		c.resume()
		return ctx.Err()
	}
}

// resume lets Run connect again (the provider core calls it again when asked).
func (c *Client) resume() {
	c.mu.Lock()
	c.paused = false
	c.mu.Unlock()
}

// run is Run's connection: open the store, connect, serve.
func (c *Client) run(ctx context.Context, sink provider.Sink) error {

	if c.cfg.StoreDir == "" {
		sink.State(wire.ProviderState{State: schemas.WebDisabled, LastError: "no WhatsApp store directory configured"})
		return &provider.TerminalError{State: schemas.WebDisabled, Err: provider.ErrNotConfigured}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	container, err := c.openStore(ctx)
	if err != nil {
		return c.transientStart(ctx, sink, err)
	}
	defer func() {
		if err := container.Close(); err != nil {
			c.log.Warn("closing whatsapp store failed", "err", err)
		}
	}()
	dev, err := linkedDevice(ctx, container)
	if err != nil {
		return c.transientStart(ctx, sink, err)
	}
	if dev == nil {
		c.setLinked(linkNo)
		sink.State(wire.ProviderState{State: schemas.WebUnlinked, LastError: "not linked: run `clawdis login`"})
		return &provider.TerminalError{State: schemas.WebUnlinked, Err: provider.ErrNotLinked}
	}
	c.setLinked(linkYes)
	base := wire.ProviderState{Linked: true, Self: e164(dev.ID.ToNonAD())}
	if at := authTime(dev); !at.IsZero() {
		base.AuthAtMs = at.UnixMilli()
	}

	wa := whatsmeow.NewClient(dev, newWALogger(c.log, "client"))
	wa.EnableAutoReconnect = false // the provider core reconnects with the configured policy
	wa.InitialAutoReconnect = false
	wa.BackgroundEventCtx = ctx
	// A message is acknowledged (its receipt sent) only after the handler stored it; one
	// redelivered after its signal session moved on can still be decrypted from the buffer.
	wa.SynchronousAck = true
	wa.EnableDecryptedEventBuffer = true
	if c.configure != nil {
		c.configure(wa)
	}

	ctrl := newQueue[any](maxQueuedEvents)
	conv := c.newConverter(wa, dev)
	handlerID := wa.AddEventHandlerWithSuccessStatus(c.eventHandler(ctx, ctrl, conv, sink))
	defer wa.RemoveEventHandler(handlerID)

	defer func() {
		cancel()
		c.mu.Lock()
		c.wa = nil
		c.mu.Unlock()
		wa.Disconnect()
	}()

	st := base
	st.State = schemas.WebConnecting
	sink.State(st)
	if err := wa.ConnectContext(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, store.ErrDeviceDeleted) {
			c.setLinked(linkNo)
			sink.State(wire.ProviderState{State: schemas.WebUnlinked, LastError: "not linked: run `clawdis login`"})
			return &provider.TerminalError{State: schemas.WebUnlinked, Err: provider.ErrNotLinked}
		}
		cerr := &connectError{err: err}
		st.State, st.LastError = schemas.WebReconnecting, cerr.Error()
		sink.State(st)
		return cerr
	}
	c.mu.Lock()
	c.wa = wa
	c.mu.Unlock()

	return c.serve(ctx, ctrl, base, sink, func() types.JID { return wa.Store.GetLID() })
}

// serve follows the connection events until one ends the connection or ctx ends (nil),
// reporting every state change. ownLID reads the account's LID; whatsmeow stores it before
// it reports Connected.
func (c *Client) serve(ctx context.Context, ctrl *queue[any], base wire.ProviderState, sink provider.Sink, ownLID func() types.JID) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ctrl.wait():
		}
		for _, evt := range ctrl.drain() {
			if ctx.Err() != nil {
				return nil
			}
			o := classify(evt, c.cfg.Now())
			if o.State == "" {
				continue
			}
			if _, ok := evt.(*events.Connected); ok {
				lid := ownLID().ToNonAD()
				c.mu.Lock()
				c.selfLID = lid
				c.mu.Unlock()
			}
			st := base
			st.State, st.Connected, st.LastError = o.State, o.Connected, o.LastError
			if o.Unlinked {
				c.setLinked(linkNo)
				st.Linked, st.AuthAtMs = false, 0
			}
			sink.State(st)
			switch {
			case o.Terminal:
				c.log.Warn("whatsapp stopped", "state", o.State, "err", o.Err)
				return &provider.TerminalError{State: o.State, Err: o.Err}
			case o.Transient:
				c.log.Info("whatsapp connection lost", "err", o.Err)
				return o.Err
			}
		}
	}
}

// openStore opens the store, one open at a time (a storeOpener).
func (c *Client) openStore(ctx context.Context) (*sqlstore.Container, error) {
	c.storeMu.Lock()
	defer c.storeMu.Unlock()
	return openStore(ctx, c.cfg.StoreDir, c.log)
}

// transientStart reports a failure to open the store and returns it as transient.
func (c *Client) transientStart(ctx context.Context, sink provider.Sink, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	sink.State(wire.ProviderState{State: schemas.WebReconnecting, LastError: err.Error()})
	return fmt.Errorf("whatsapp: %w", err)
}

// eventHandler is the whatsmeow event handler. A message is converted (its media
// downloaded) and stored before it returns, and its success status says whether it was:
// with SynchronousAck whatsmeow sends the receipt only after true, and after false it does
// not, so WhatsApp delivers the message again. Every other event is only queued for serve.
func (c *Client) eventHandler(ctx context.Context, ctrl *queue[any], conv *converter, sink provider.Sink) func(any) bool {
	return func(evt any) bool {
		if m, ok := evt.(*events.Message); ok {
			return c.handleMessage(ctx, conv, sink, m)
		}
		if !ctrl.push(evt) {
			c.log.Error("event queue full, event dropped", "event", fmt.Sprintf("%T", evt))
		}
		return true
	}
}

// handleMessage converts evt and hands it to sink; it reports whether the message is
// stored (or is not one the gateway reports, which is as good).
func (c *Client) handleMessage(ctx context.Context, base *converter, sink provider.Sink, evt *events.Message) bool {
	ctx, cancel := context.WithTimeout(ctx, inboundTimeout)
	defer cancel()
	conv := *base // handlers may run concurrently; the LID is per call
	if lid := c.ownLID(); !lid.IsEmpty() {
		conv.self.LID = lid // learnt at connect when the store did not have it
	}
	msg, ok := conv.convert(ctx, evt)
	if !ok {
		return true
	}
	if err := sink.Inbound(ctx, msg); err != nil {
		c.log.Warn("inbound message not stored; no receipt, WhatsApp delivers it again",
			"message_id", evt.Info.ID, "err", err)
		return false
	}
	if !evt.Info.IsFromMe {
		c.reads.note(msg.ChatID, evt.Info.Chat, evt.Info.Sender, evt.Info.ID)
	}
	return true
}

// newConverter builds the inbound converter for a connection.
func (c *Client) newConverter(wa *whatsmeow.Client, dev *store.Device) *converter {
	return &converter{
		self:  self{PN: dev.ID.ToNonAD(), LID: dev.LID.ToNonAD()},
		lids:  dev.LIDs,
		media: &mediaDir{dir: c.cfg.MediaDir, dl: wa},
		warn:  func(msg string, args ...any) { c.log.Warn(msg, args...) },
	}
}

// ownLID is the linked account's LID as the last Connected event left it.
func (c *Client) ownLID() types.JID {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.selfLID
}

func (c *Client) setLinked(s linkState) {
	c.mu.Lock()
	c.linked = s
	c.mu.Unlock()
}

// conn returns the connection when it can send: ErrNotLinked when the store has no linked
// device, ErrNotConnected when it is not logged in (yet).
func (c *Client) conn() (*whatsmeow.Client, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.linked == linkNo {
		return nil, provider.ErrNotLinked
	}
	if c.wa == nil || !c.wa.IsLoggedIn() {
		return nil, provider.ErrNotConnected
	}
	return c.wa, nil
}
