package whatsapp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"syscall"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/socket"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/store/sqlstore"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
)

// Login errors.
var (
	// ErrAlreadyLinked: the store already holds a linked device.
	ErrAlreadyLinked = errors.New("whatsapp is already linked")
	// ErrLoginTimeout: no QR code was scanned in time.
	ErrLoginTimeout = errors.New("no QR code scanned")
	// ErrUnreachable: WhatsApp could not be reached, or sent no login code, within
	// DefaultReachTimeout.
	ErrUnreachable = errors.New("cannot reach WhatsApp")
)

// DefaultLoginTimeout bounds a login when LoginOptions.Timeout is zero. WhatsApp offers six
// QR codes over about 160 s before it closes the connection.
const DefaultLoginTimeout = 3 * time.Minute

// DefaultReachTimeout bounds the time from the start of a login to WhatsApp's first QR code
// (connecting, and WhatsApp sending the code), so that an unreachable WhatsApp is reported
// quickly instead of after the whole login timeout.
const DefaultReachTimeout = 15 * time.Second

// LoginOptions configures Login.
type LoginOptions struct {
	StoreDir string        // <state>/whatsapp; required
	Out      io.Writer     // where QR codes and progress go; nil discards
	Timeout  time.Duration // default DefaultLoginTimeout
	// ReachTimeout bounds connecting and the wait for the first code; default
	// DefaultReachTimeout.
	ReachTimeout time.Duration
	Log          *slog.Logger // nil discards

	// dial makes the connection a login uses (default dialWhatsApp); the web login sets
	// its own, and tests fake WhatsApp there.
	dial func(ctx context.Context, dev *store.Device, log *slog.Logger) LoginConn
	// open opens the store; default openStore on StoreDir. The web login opens it as its
	// Client does, one open at a time.
	open storeOpener
}

// LoginResult is the linked account.
type LoginResult struct {
	Number string // E.164
	JID    string // the account's JID, without the device part
}

// LoginDialer makes the connection of a web login for the device dev (Config.DialLogin).
type LoginDialer func(ctx context.Context, dev *store.Device, log *slog.Logger) LoginConn

// LoginConn is what a login needs of a whatsmeow connection: the QR channel, connecting,
// the Connected event that follows pairing, and the JID it paired as. It is WhatsApp at
// the network boundary of a login: tests put a fake here (package whatsapptest).
type LoginConn interface {
	GetQRChannel(ctx context.Context) (<-chan whatsmeow.QRChannelItem, error)
	ConnectContext(ctx context.Context) error
	Disconnect()
	AddEventHandler(handler whatsmeow.EventHandler) uint32
	RemoveEventHandler(id uint32) bool
	// PairedJID is the account the device was linked to (empty before pairing).
	PairedJID() types.JID
}

// waLogin is a whatsmeow connection as a LoginConn.
type waLogin struct{ *whatsmeow.Client }

func (w waLogin) PairedJID() types.JID { return w.Store.GetJID() }

// dialWhatsApp is a whatsmeow connection for linking dev: no automatic reconnects (a login
// is one attempt), its background events bounded by ctx.
func dialWhatsApp(ctx context.Context, dev *store.Device, log *slog.Logger) *whatsmeow.Client {
	wa := whatsmeow.NewClient(dev, newWALogger(log, "login"))
	wa.EnableAutoReconnect = false
	wa.BackgroundEventCtx = ctx
	return wa
}

// loginStages hears what a login goes through, on the login's goroutine. Login prints each
// stage for a terminal; the web login keeps the codes for its clients.
type loginStages interface {
	connecting()     // dialling WhatsApp
	waitingForCode() // connected; WhatsApp is about to send the first code
	// code is the n-th QR code (from 1); WhatsApp sends the next one after valid.
	code(code string, n int, valid time.Duration)
	scanned()             // paired; the connection that follows is coming up
	linked(number string) // done
	end()                 // the login returns, successfully or not
}

// spinner is implemented by stages that redraw a progress line while the login waits;
// tick is called every spinnerInterval then.
type spinner interface {
	tick(what string)
}

// spinnerInterval is how often a spinner is redrawn.
const spinnerInterval = 250 * time.Millisecond

// Login links this machine as a WhatsApp device. It says what it does, one line per stage:
// connecting, waiting for WhatsApp's code, each QR code shown (refreshed as they rotate,
// with a progress line), scanned, linked; it waits for the connection that follows pairing
// and returns the linked number. When WhatsApp cannot be reached or sends no code within
// ReachTimeout it fails with an ErrUnreachable error whose text is one plain sentence.
func Login(ctx context.Context, opts LoginOptions) (LoginResult, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return LoginResult{}, err
	}
	opts.Log = opts.Log.With("component", ID)
	return link(ctx, opts, newTerminalStages(opts.Out, time.Now().Add(opts.Timeout)))
}

// withDefaults checks opts and fills in the defaults.
func (opts LoginOptions) withDefaults() (LoginOptions, error) {
	if opts.Out == nil {
		opts.Out = io.Discard
	}
	if opts.Timeout < 0 || opts.ReachTimeout < 0 {
		return opts, fmt.Errorf("whatsapp login: negative timeout %s", min(opts.Timeout, opts.ReachTimeout))
	}
	if opts.Timeout == 0 {
		opts.Timeout = DefaultLoginTimeout
	}
	if opts.ReachTimeout == 0 {
		opts.ReachTimeout = DefaultReachTimeout
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.open == nil {
		dir, log := opts.StoreDir, opts.Log
		opts.open = func(ctx context.Context) (*sqlstore.Container, error) { return openStore(ctx, dir, log) }
	}
	if opts.dial == nil {
		opts.dial = func(ctx context.Context, dev *store.Device, log *slog.Logger) LoginConn {
			return waLogin{dialWhatsApp(ctx, dev, log)}
		}
	}
	return opts, nil
}

// link is the one login flow, of `clawdis login` and of web.login.start: it refuses a store
// that is already linked (an *alreadyLinkedError), connects within ReachTimeout, reports
// each QR code to st until one is scanned, and waits for the connection that follows
// pairing. opts must have its defaults.
func link(ctx context.Context, opts LoginOptions, st loginStages) (LoginResult, error) {
	defer st.end()
	log := opts.Log
	container, err := opts.open(ctx)
	if err != nil {
		return LoginResult{}, fmt.Errorf("whatsapp login: %w", err)
	}
	defer func() { _ = container.Close() }()
	if dev, err := linkedDevice(ctx, container); err != nil {
		return LoginResult{}, fmt.Errorf("whatsapp login: %w", err)
	} else if dev != nil {
		return LoginResult{}, &alreadyLinkedError{number: e164(dev.ID.ToNonAD())}
	}

	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	wa := opts.dial(ctx, container.NewDevice(), log)
	connected := make(chan struct{}, 1)
	handlerID := wa.AddEventHandler(func(evt any) {
		if _, ok := evt.(*events.Connected); ok {
			select {
			case connected <- struct{}{}:
			default:
			}
		}
	})
	defer wa.RemoveEventHandler(handlerID)
	qrs, err := wa.GetQRChannel(ctx) // before Connect, or the first codes are missed
	if err != nil {
		return LoginResult{}, fmt.Errorf("whatsapp login: QR channel: %w", err)
	}
	reach := time.NewTimer(opts.ReachTimeout)
	defer reach.Stop()
	st.connecting()
	if err := connectWithin(ctx, cancel, wa, reach.C, min(opts.ReachTimeout, opts.Timeout)); err != nil {
		return LoginResult{}, err
	}
	defer wa.Disconnect()
	st.waitingForCode()
	if err := awaitPairing(ctx, opts, qrs, reach.C, st); err != nil {
		return LoginResult{}, err
	}
	st.scanned()
	jid, err := awaitConnected(ctx, opts.Timeout, wa, connected, st)
	if err != nil {
		return LoginResult{}, err
	}
	number := e164(jid)
	st.linked(number)
	return LoginResult{Number: number, JID: jid.String()}, nil
}

// awaitPairing reports each QR code WhatsApp sends to st until one is scanned (nil) or the
// login fails: no code before noCode fires (unreachable), ctx's end, or a final QR event
// other than success.
func awaitPairing(ctx context.Context, opts LoginOptions, qrs <-chan whatsmeow.QRChannelItem, noCode <-chan time.Time, st loginStages) error {
	tick, stop := spinnerTicks(st)
	defer stop()
	codes := 0
	for {
		select {
		case <-ctx.Done():
			if codes == 0 && errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return &unreachableError{reason: fmt.Sprintf("it sent no login code within %s", opts.Timeout)}
			}
			return loginCtxErr(ctx, opts.Timeout, ctx.Err())
		case <-noCode:
			return &unreachableError{reason: fmt.Sprintf("it sent no login code within %s", opts.ReachTimeout)}
		case <-tick:
			if codes > 0 {
				st.(spinner).tick("waiting for the QR code to be scanned")
			}
		case item, ok := <-qrs:
			if !ok {
				return errors.New("whatsapp login: QR channel closed")
			}
			if item.Event != whatsmeow.QRChannelEventCode {
				return qrResult(item)
			}
			noCode = nil
			codes++
			st.code(item.Code, codes, item.Timeout)
		}
	}
}

// awaitConnected waits for the Connected event after pairing: pairing is followed by a
// server-requested restart of the connection (whatsmeow reconnects by itself), and the
// device is usable once it is up. It returns the account's JID.
func awaitConnected(ctx context.Context, timeout time.Duration, wa LoginConn, connected <-chan struct{}, st loginStages) (types.JID, error) {
	tick, stop := spinnerTicks(st)
	defer stop()
	for {
		select {
		case <-ctx.Done():
			return types.EmptyJID, fmt.Errorf("%w within %s; "+
				"run `clawdis gateway health` to check or `clawdis logout` and try again: %w", errPairedNotConnected, timeout, ctx.Err())
		case <-tick:
			st.(spinner).tick("connecting")
		case <-connected:
			return wa.PairedJID().ToNonAD(), nil
		}
	}
}

// errPairedNotConnected: the code was scanned but the connection did not come up.
var errPairedNotConnected = errors.New("whatsapp login: paired, but the connection did not come up")

// spinnerTicks ticks every spinnerInterval when st draws a spinner; otherwise it never
// fires (a login for a client has nothing to redraw).
func spinnerTicks(st loginStages) (<-chan time.Time, func()) {
	if _, ok := st.(spinner); !ok {
		return nil, func() {}
	}
	t := time.NewTicker(spinnerInterval)
	return t.C, t.Stop
}

// alreadyLinkedError is ErrAlreadyLinked with the linked number.
type alreadyLinkedError struct{ number string }

func (e *alreadyLinkedError) Error() string {
	return ErrAlreadyLinked.Error() + " as " + e.number + ": run `clawdis logout` first to link another account"
}

func (e *alreadyLinkedError) Unwrap() error { return ErrAlreadyLinked }

// connectWithin connects wa within the reach timer (limit is its duration, for the
// message). Past it, or past ctx's deadline, the connect is cancelled (cancel ends ctx,
// which the dial follows), waited for, and reported as unreachable; a caller that cancels
// ctx gets ctx.Err().
func connectWithin(ctx context.Context, cancel context.CancelFunc, wa LoginConn, reach <-chan time.Time, limit time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- wa.ConnectContext(ctx) }()
	select {
	case err := <-done:
		switch {
		case err == nil:
			return nil
		case errors.Is(ctx.Err(), context.Canceled):
			return ctx.Err()
		case ctx.Err() != nil:
			return &unreachableError{reason: fmt.Sprintf("no answer within %s", limit), err: err}
		}
		return &unreachableError{reason: unreachableReason(err), err: err}
	case <-reach:
	case <-ctx.Done():
	}
	callerCancelled := errors.Is(ctx.Err(), context.Canceled)
	cancel()
	if err := <-done; err == nil {
		wa.Disconnect()
	}
	if callerCancelled {
		return context.Canceled
	}
	return &unreachableError{reason: fmt.Sprintf("no answer within %s", limit), err: context.DeadlineExceeded}
}

// connectError is a failed connection of the running provider, in a few words (shown in
// health and WebChat) rather than the chain of library errors; the cause stays available
// to errors.Is and errors.As.
type connectError struct{ err error }

func (e *connectError) Error() string { return "cannot reach WhatsApp: " + unreachableReason(e.err) }

func (e *connectError) Unwrap() error { return e.err }

// unreachableError is ErrUnreachable with its reason. Its text is one sentence saying what
// to do; the cause stays available to errors.Is and errors.As.
type unreachableError struct {
	reason string
	err    error
}

func (e *unreachableError) Error() string {
	return ErrUnreachable.Error() + ": " + e.reason + "; check this machine's internet connection " +
		"(and HTTPS_PROXY, if one is set), then run `clawdis login` again"
}

func (e *unreachableError) Unwrap() []error {
	if e.err == nil {
		return []error{ErrUnreachable}
	}
	return []error{ErrUnreachable, e.err}
}

// unreachableReason says in a few words why connecting failed, without the chain of
// wrapped errors.
func unreachableReason(err error) string {
	var dnsErr *net.DNSError
	var opErr *net.OpError
	var status socket.ErrWithStatusCode
	var urlErr *url.Error
	switch {
	case errors.As(err, &dnsErr):
		return "the name " + dnsErr.Name + " does not resolve"
	case errors.As(err, &opErr) && opErr.Op == "proxyconnect":
		return "the proxy set in HTTPS_PROXY cannot be reached"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "the connection was refused"
	case errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EHOSTUNREACH):
		return "the network is unreachable"
	case errors.As(err, &status):
		return fmt.Sprintf("it answered HTTP %d", status.StatusCode)
	case errors.As(err, &urlErr): // the HTTP request of the WebSocket handshake (or a proxy's answer to it)
		return "the connection failed (" + innermost(urlErr.Err).Error() + ")"
	}
	return innermost(err).Error()
}

// innermost is the error at the end of err's chain (the last one where several are
// joined), without the wrapping texts of the libraries in between.
func innermost(err error) error {
	for {
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			if next := u.Unwrap(); next != nil {
				err = next
				continue
			}
		case interface{ Unwrap() []error }:
			if errs := u.Unwrap(); len(errs) > 0 {
				err = errs[len(errs)-1]
				continue
			}
		}
		return err
	}
}

// qrResult turns a final QR channel item into nil (paired) or an error.
func qrResult(item whatsmeow.QRChannelItem) error {
	switch item.Event {
	case whatsmeow.QRChannelSuccess.Event:
		return nil
	case whatsmeow.QRChannelTimeout.Event:
		return fmt.Errorf("%w before WhatsApp stopped offering codes: run `clawdis login` again", ErrLoginTimeout)
	case whatsmeow.QRChannelClientOutdated.Event:
		return fmt.Errorf("whatsapp login: %w", ErrClientOutdated)
	case whatsmeow.QRChannelScannedWithoutMultidevice.Event:
		return errors.New("whatsapp login: the phone has multi-device disabled; enable linked devices and try again")
	case whatsmeow.QRChannelErrUnexpectedEvent.Event:
		return errors.New("whatsapp login: unexpected connection state (already linked, logged out or banned)")
	case whatsmeow.QRChannelEventError:
		return fmt.Errorf("whatsapp login: pairing failed: %w", item.Error)
	}
	return fmt.Errorf("whatsapp login: unexpected QR event %q", item.Event)
}

// loginCtxErr names the timeout when ctx's deadline passed, else returns err.
func loginCtxErr(ctx context.Context, timeout time.Duration, err error) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%w within %s", ErrLoginTimeout, timeout)
	}
	return err
}
