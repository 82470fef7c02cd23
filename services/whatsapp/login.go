package whatsapp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/clawdis/clawdis/services/provider"
	"github.com/mdp/qrterminal/v3"
	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/socket"
	"go.mau.fi/whatsmeow/store"
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
}

// LoginResult is the linked account.
type LoginResult struct {
	Number string // E.164
}

// Login links this machine as a WhatsApp device. It says what it does, one line per stage:
// connecting, waiting for WhatsApp's code, each QR code shown (refreshed as they rotate,
// with a progress line), scanned, linked; it waits for the connection that follows pairing
// and returns the linked number. When WhatsApp cannot be reached or sends no code within
// ReachTimeout it fails with an ErrUnreachable error whose text is one plain sentence.
func Login(ctx context.Context, opts LoginOptions) (LoginResult, error) {
	if opts.Out == nil {
		opts.Out = io.Discard
	}
	if opts.Timeout < 0 || opts.ReachTimeout < 0 {
		return LoginResult{}, fmt.Errorf("whatsapp login: negative timeout %s", min(opts.Timeout, opts.ReachTimeout))
	}
	if opts.Timeout == 0 {
		opts.Timeout = DefaultLoginTimeout
	}
	if opts.ReachTimeout == 0 {
		opts.ReachTimeout = DefaultReachTimeout
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", ID)

	container, err := openStore(ctx, opts.StoreDir, log)
	if err != nil {
		return LoginResult{}, fmt.Errorf("whatsapp login: %w", err)
	}
	defer func() { _ = container.Close() }()
	if dev, err := linkedDevice(ctx, container); err != nil {
		return LoginResult{}, fmt.Errorf("whatsapp login: %w", err)
	} else if dev != nil {
		return LoginResult{}, fmt.Errorf("%w as %s: run `clawdis logout` first to link another account",
			ErrAlreadyLinked, e164(dev.ID.ToNonAD()))
	}

	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	wa := whatsmeow.NewClient(container.NewDevice(), newWALogger(log, "login"))
	wa.EnableAutoReconnect = false
	wa.BackgroundEventCtx = ctx
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
	fmt.Fprintln(opts.Out, "Connecting to WhatsApp…")
	if err := connectWithin(ctx, cancel, wa, reach.C, min(opts.ReachTimeout, opts.Timeout)); err != nil {
		return LoginResult{}, err
	}
	defer wa.Disconnect()
	fmt.Fprintln(opts.Out, "Connected; waiting for WhatsApp's login code…")

	p := &progress{out: opts.Out, deadline: time.Now().Add(opts.Timeout)}
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	noCode := reach.C // until the first code arrives
	paired, codes := false, 0
	for !paired {
		select {
		case <-ctx.Done():
			p.done()
			if codes == 0 && errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return LoginResult{}, &unreachableError{reason: fmt.Sprintf("it sent no login code within %s", opts.Timeout)}
			}
			return LoginResult{}, loginCtxErr(ctx, opts.Timeout, ctx.Err())
		case <-noCode:
			p.done()
			return LoginResult{}, &unreachableError{reason: fmt.Sprintf("it sent no login code within %s", opts.ReachTimeout)}
		case <-tick.C:
			if codes > 0 {
				p.tick("waiting for the QR code to be scanned")
			}
		case item, ok := <-qrs:
			if !ok {
				p.done()
				return LoginResult{}, fmt.Errorf("whatsapp login: QR channel closed")
			}
			if item.Event == whatsmeow.QRChannelEventCode {
				p.done()
				noCode = nil
				codes++
				showQR(opts.Out, item.Code, codes)
				continue
			}
			p.done()
			if err := qrResult(item); err != nil {
				return LoginResult{}, err
			}
			paired = true
		}
	}
	// Pairing is followed by a server-requested restart of the connection (whatsmeow
	// reconnects by itself); the device is usable once Connected arrives.
	fmt.Fprintln(opts.Out, "QR code scanned; finishing the link…")
	for {
		select {
		case <-ctx.Done():
			p.done()
			return LoginResult{}, fmt.Errorf("whatsapp login: paired, but the connection did not come up within %s; "+
				"run `clawdis gateway health` to check or `clawdis logout` and try again: %w", opts.Timeout, ctx.Err())
		case <-tick.C:
			p.tick("connecting")
		case <-connected:
			p.done()
			number := e164(wa.Store.GetJID().ToNonAD())
			fmt.Fprintf(opts.Out, "Linked as %s\n", number)
			return LoginResult{Number: number}, nil
		}
	}
}

// connectWithin connects wa within the reach timer (limit is its duration, for the
// message). Past it, or past ctx's deadline, the connect is cancelled (cancel ends ctx,
// which the dial follows), waited for, and reported as unreachable; a caller that cancels
// ctx gets ctx.Err().
func connectWithin(ctx context.Context, cancel context.CancelFunc, wa *whatsmeow.Client, reach <-chan time.Time, limit time.Duration) error {
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
	}
	for next := errors.Unwrap(err); next != nil; next = errors.Unwrap(next) {
		err = next
	}
	return err.Error()
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

// showQR renders the n-th code as half-block characters.
func showQR(out io.Writer, code string, n int) {
	if n == 1 {
		fmt.Fprintln(out, "\nQR code shown: scan it in WhatsApp → Settings → Linked devices → Link a device:")
	} else {
		fmt.Fprintln(out, "\nNew QR code shown (the previous one expired): scan it in WhatsApp → Settings → Linked devices → Link a device:")
	}
	qrterminal.GenerateWithConfig(code, qrterminal.Config{
		Level:          qrterminal.L,
		Writer:         out,
		HalfBlocks:     true,
		BlackChar:      qrterminal.BLACK_BLACK,
		WhiteChar:      qrterminal.WHITE_WHITE,
		WhiteBlackChar: qrterminal.WHITE_BLACK,
		BlackWhiteChar: qrterminal.BLACK_WHITE,
		QuietZone:      1,
	})
}

// progress draws a spinner line that is rewritten in place.
type progress struct {
	out      io.Writer
	deadline time.Time
	frame    int
	shown    bool
}

func (p *progress) tick(what string) {
	fmt.Fprint(p.out, "\r"+spinnerLine(p.frame, what, time.Until(p.deadline)))
	p.frame++
	p.shown = true
}

// done ends the spinner line so the next output starts on a fresh line.
func (p *progress) done() {
	if p.shown {
		fmt.Fprint(p.out, "\r\033[K")
		p.shown = false
	}
}

var spinnerFrames = []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}

// spinnerLine is one frame of the progress line, e.g. "⠋ waiting … (2m10s left)".
func spinnerLine(frame int, what string, left time.Duration) string {
	if left < 0 {
		left = 0
	}
	return fmt.Sprintf("%s %s… (%s left)\033[K", spinnerFrames[frame%len(spinnerFrames)], what, left.Round(time.Second))
}

// Linked returns the number linked in the store at storeDir, or "" when nothing is linked.
// A store that does not exist yet counts as not linked and is not created (for `clawdis
// doctor`, which may run beside a gateway: the store's busy timeout covers that).
func Linked(ctx context.Context, storeDir string) (string, error) {
	if _, err := os.Stat(filepath.Join(storeDir, storeFile)); errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	container, err := openStore(ctx, storeDir, nil)
	if err != nil {
		return "", fmt.Errorf("whatsapp: %w", err)
	}
	defer func() { _ = container.Close() }()
	dev, err := linkedDevice(ctx, container)
	if err != nil || dev == nil {
		return "", err
	}
	return e164(dev.ID.ToNonAD()), nil
}

// LogoutResult says what Logout did.
type LogoutResult struct {
	Number string // the account that was linked
	// Remote is true when WhatsApp confirmed the unlink; false when only the local session
	// was deleted (the phone may still list the device until it is removed there).
	Remote bool
}

// logoutConnectTimeout bounds connecting to tell WhatsApp about the logout.
const logoutConnectTimeout = 15 * time.Second

// Logout unlinks the device: it connects and tells WhatsApp when it can, and otherwise
// deletes the local session. provider.ErrNotLinked when nothing is linked. It must not run
// while a gateway uses the same store.
func Logout(ctx context.Context, storeDir string) (LogoutResult, error) {
	return logout(ctx, storeDir, remoteLogout)
}

// logout is Logout with the remote unlink as a parameter (tests never contact WhatsApp).
func logout(ctx context.Context, storeDir string, remote func(context.Context, *store.Device) bool) (LogoutResult, error) {
	container, err := openStore(ctx, storeDir, nil)
	if err != nil {
		return LogoutResult{}, fmt.Errorf("whatsapp logout: %w", err)
	}
	defer func() { _ = container.Close() }()
	dev, err := linkedDevice(ctx, container)
	if err != nil {
		return LogoutResult{}, fmt.Errorf("whatsapp logout: %w", err)
	}
	if dev == nil {
		return LogoutResult{}, fmt.Errorf("whatsapp logout: %w: nothing to log out", provider.ErrNotLinked)
	}
	res := LogoutResult{Number: e164(dev.ID.ToNonAD())}
	if remote(ctx, dev) {
		res.Remote = true
		return res, nil
	}
	if dev.Deleted { // WhatsApp had already logged it out; whatsmeow deleted it
		return res, nil
	}
	if err := dev.Delete(ctx); err != nil {
		return res, fmt.Errorf("whatsapp logout: delete local session: %w", err)
	}
	return res, nil
}

// remoteLogout connects with dev and asks WhatsApp to remove it (which also deletes the
// local session); false when that was not possible.
func remoteLogout(ctx context.Context, dev *store.Device) bool {
	ctx, cancel := context.WithTimeout(ctx, logoutConnectTimeout)
	defer cancel()
	wa := whatsmeow.NewClient(dev, nil)
	wa.EnableAutoReconnect = false
	wa.BackgroundEventCtx = ctx
	ready := make(chan bool, 1)
	handlerID := wa.AddEventHandler(func(evt any) {
		var ok, final bool
		switch evt.(type) {
		case *events.Connected:
			ok, final = true, true
		case *events.LoggedOut, *events.StreamReplaced, *events.TemporaryBan, *events.ClientOutdated,
			*events.ConnectFailure, *events.Disconnected:
			final = true
		}
		if final {
			select {
			case ready <- ok:
			default:
			}
		}
	})
	defer wa.RemoveEventHandler(handlerID)
	if err := wa.ConnectContext(ctx); err != nil {
		return false
	}
	defer wa.Disconnect()
	select {
	case ok := <-ready:
		if !ok {
			return false
		}
	case <-ctx.Done():
		return false
	}
	return wa.Logout(ctx) == nil
}
