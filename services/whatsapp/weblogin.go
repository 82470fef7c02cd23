package whatsapp

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/skip2/go-qrcode"
	"go.mau.fi/whatsmeow/store"

	"github.com/clawdis/clawdis/bus/subject"
	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/schemas"
	"github.com/clawdis/clawdis/services/provider"
)

// Bounds of web.login.wait (SPEC §6.12).
const (
	DefaultWaitTimeout = 60 * time.Second
	MaxWaitTimeout     = 180 * time.Second
)

// qrPixels is the side of the PNG QR code in qrDataUrl.
const qrPixels = 256

// Endpoints are web.login.start and web.login.wait: linking WhatsApp from a client while
// the gateway runs (provider.Endpointer).
func (c *Client) Endpoints(h provider.Host) []provider.Endpoint {
	w := &webLogin{c: c, host: h, starting: make(chan struct{}, 1)}
	return []provider.Endpoint{
		{Name: "login-start", Subject: subject.WebLoginStart, Handle: w.handleStart},
		{Name: "login-wait", Subject: subject.WebLoginWait, Handle: w.handleWait},
	}
}

var _ provider.Endpointer = (*Client)(nil)

// webLogin runs the logins clients start, one at a time, with the flow `clawdis login`
// uses (link). While one runs, the connection Run serves is stopped (the client is
// paused); when it ends the provider core runs the network again, which connects with the
// new link. The latest login, running or finished, answers web.login.wait until the next
// start replaces it, so a client whose answer was lost can ask again.
type webLogin struct {
	c        *Client
	host     provider.Host
	starting chan struct{} // held while a start sets a login up

	mu  sync.Mutex
	cur *loginRun
}

// handleStart answers web.login.start. A start while a login runs answers that login's
// current code instead of starting another (a reloaded page shows the same code).
func (w *webLogin) handleStart(ctx context.Context, data []byte) (any, error) {
	var p schemas.WebLoginStartParams
	if err := decodeOptional(data, &p, "web.login.start params"); err != nil {
		return nil, err
	}
	if w.c.cfg.StoreDir == "" {
		return nil, wire.Unavailable(false, "WhatsApp is not configured on this gateway")
	}
	select {
	case w.starting <- struct{}{}:
	case <-ctx.Done():
		return nil, wire.Unavailable(true, "whatsapp provider stopping")
	}
	run, err := w.begin(ctx, p.Force)
	<-w.starting
	if err != nil {
		return nil, err
	}
	return run.firstCode(ctx)
}

// begin returns the login that runs, or starts one: after checking the store (refusing
// a linked one unless force), pausing the connection and, with force, unlinking.
func (w *webLogin) begin(ctx context.Context, force bool) (*loginRun, error) {
	if run := w.latest(); run != nil && !run.ended() {
		return run, nil
	}
	number, err := linkedNumber(ctx, w.c.cfg.StoreDir, w.c.openStore)
	if err != nil {
		w.c.log.Warn("web login: reading the whatsapp store failed", "err", err)
		return nil, wire.Unavailable(true, "cannot read the WhatsApp store")
	}
	if number != "" && !force {
		return nil, wire.Invalid("already linked as %s; call web.login.start with force:true to link another account", number)
	}
	if err := w.c.pause(ctx); err != nil {
		return nil, wire.Unavailable(true, "whatsapp provider stopping")
	}
	if number != "" {
		if err := w.unlink(ctx); err != nil {
			w.resume()
			return nil, err
		}
	}
	run := newLoginRun()
	opts, err := LoginOptions{StoreDir: w.c.cfg.StoreDir, Log: w.c.log, ReachTimeout: w.c.loginReach,
		dial: w.c.dialLogin, open: w.c.openStore}.withDefaults()
	if err != nil {
		w.resume()
		return nil, err
	}
	if !w.host.Go(func() {
		res, err := link(ctx, opts, run)
		// The login's connection is closed: Run may connect with the link. Resuming before
		// the run ends keeps a next start (which pauses again) from being undone by it.
		w.resume()
		run.finish(res, err)
		w.logEnd(res, err)
	}) {
		w.resume()
		return nil, wire.Unavailable(true, "whatsapp provider stopping")
	}
	w.mu.Lock()
	w.cur = run
	w.mu.Unlock()
	return run, nil
}

// webUnlinkTimeout bounds telling WhatsApp about a forced unlink, so that a start with
// force answers within 30 s even when WhatsApp cannot be reached (with DefaultReachTimeout).
const webUnlinkTimeout = 10 * time.Second

// unlink removes the linked device before a forced login: WhatsApp is told when it can be
// reached within webUnlinkTimeout, else only the local session is deleted.
func (w *webLogin) unlink(ctx context.Context) error {
	remote := func(ctx context.Context, dev *store.Device) bool {
		ctx, cancel := context.WithTimeout(ctx, webUnlinkTimeout)
		defer cancel()
		return w.c.remoteLogout(ctx, dev)
	}
	res, err := logout(ctx, w.c.cfg.StoreDir, remote)
	if err != nil && !errors.Is(err, provider.ErrNotLinked) {
		w.c.log.Warn("web login: unlinking failed", "err", err)
		return wire.Unavailable(true, "cannot unlink the current WhatsApp account")
	}
	w.c.log.Info("whatsapp unlinked for a new link", "number", res.Number, "remote", res.Remote)
	return nil
}

// resume lets Run connect again and asks the core to run it.
func (w *webLogin) resume() {
	w.c.resume()
	w.host.Restart()
}

// logEnd logs how a login ended.
func (w *webLogin) logEnd(res LoginResult, err error) {
	if err != nil {
		w.c.log.Info("whatsapp web login ended", "err", err)
		return
	}
	w.c.log.Info("whatsapp linked from a client", "number", res.Number)
}

// latest is the latest login, or nil.
func (w *webLogin) latest() *loginRun {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.cur
}

// handleWait answers web.login.wait: linked, a newer code than the last one handed out
// (the code rotated), or, when timeoutMs passes without either, the current code again
// (linked:false) so the client keeps showing it and waits again.
func (w *webLogin) handleWait(ctx context.Context, data []byte) (any, error) {
	var p schemas.WebLoginWaitParams
	if err := decodeOptional(data, &p, "web.login.wait params"); err != nil {
		return nil, err
	}
	timeout := DefaultWaitTimeout
	if p.TimeoutMs != nil {
		timeout = time.Duration(*p.TimeoutMs) * time.Millisecond
		if timeout <= 0 || timeout > MaxWaitTimeout {
			return nil, wire.Invalid("invalid web.login.wait params: timeoutMs must be 1…%d", MaxWaitTimeout.Milliseconds())
		}
	}
	run := w.latest()
	if run == nil {
		return nil, wire.Invalid("no login in progress; call web.login.start")
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return run.wait(ctx)
}

// decodeOptional decodes params that may be absent.
func decodeOptional(data []byte, v any, what string) error {
	if len(strings.TrimSpace(string(data))) == 0 {
		return nil
	}
	return wire.DecodeParams(data, v, what)
}

// loginRun is one login started by a client; it hears the login's stages (loginStages).
type loginRun struct {
	done chan struct{} // closed when the login ended; res and err are final then
	res  LoginResult
	err  error

	mu      sync.Mutex
	qr      string // the newest code
	n       int    // codes so far
	expires time.Time
	shown   int           // the code last handed to a client
	changed chan struct{} // closed and replaced at each new code
}

func newLoginRun() *loginRun {
	return &loginRun{done: make(chan struct{}), changed: make(chan struct{})}
}

func (r *loginRun) connecting()     {}
func (r *loginRun) waitingForCode() {}
func (r *loginRun) scanned()        {}
func (r *loginRun) linked(string)   {}
func (r *loginRun) end()            {}

// code keeps the newest code and wakes the waiting clients.
func (r *loginRun) code(code string, n int, valid time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.qr, r.n, r.expires = code, n, time.Now().Add(valid)
	close(r.changed)
	r.changed = make(chan struct{})
}

// finish records the outcome and ends the run.
func (r *loginRun) finish(res LoginResult, err error) {
	r.res, r.err = res, err
	close(r.done)
}

func (r *loginRun) ended() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// firstCode waits for WhatsApp's first code and answers web.login.start with the current
// one; a login that fails first answers its failure.
func (r *loginRun) firstCode(ctx context.Context) (schemas.WebLoginStartResult, error) {
	for {
		r.mu.Lock()
		n, changed := r.n, r.changed
		r.mu.Unlock()
		if n > 0 {
			code, dataURL, expires, err := r.current()
			return schemas.WebLoginStartResult{QR: code, QRDataURL: dataURL, ExpiresInMs: expires}, err
		}
		select {
		case <-changed:
		case <-r.done:
			if r.err == nil { // linked without a code: cannot happen with WhatsApp
				return schemas.WebLoginStartResult{}, wire.Invalid("already linked as %s", r.res.Number)
			}
			return schemas.WebLoginStartResult{}, loginFailure(r.err)
		case <-ctx.Done():
			return schemas.WebLoginStartResult{}, wire.Unavailable(true, "whatsapp provider stopping")
		}
	}
}

// wait answers web.login.wait for this run: its outcome when it ended, a code newer than
// the last one handed out, or the current code when ctx ends first.
func (r *loginRun) wait(ctx context.Context) (schemas.WebLoginWaitResult, error) {
	for {
		r.mu.Lock()
		newer, changed := r.n > r.shown, r.changed
		r.mu.Unlock()
		select {
		case <-r.done:
			if r.err != nil {
				return schemas.WebLoginWaitResult{}, loginFailure(r.err)
			}
			return schemas.WebLoginWaitResult{Linked: true, JID: r.res.JID, Phone: r.res.Number}, nil
		default:
		}
		if newer {
			return r.codeResult()
		}
		select {
		case <-changed:
		case <-r.done:
		case <-ctx.Done():
			return r.codeResult()
		}
	}
}

// codeResult is the current code as a web.login.wait answer.
func (r *loginRun) codeResult() (schemas.WebLoginWaitResult, error) {
	code, dataURL, expires, err := r.current()
	return schemas.WebLoginWaitResult{QR: code, QRDataURL: dataURL, ExpiresInMs: expires}, err
}

// current is the current code, its PNG as a data URL and the milliseconds until WhatsApp
// replaces it; it marks the code as handed out.
func (r *loginRun) current() (code, dataURL string, expiresInMs int64, err error) {
	r.mu.Lock()
	code, n, expires := r.qr, r.n, r.expires
	r.shown = n
	r.mu.Unlock()
	if n == 0 {
		return "", "", 0, wire.Unavailable(true, "WhatsApp has not sent a login code yet; wait again")
	}
	if dataURL, err = qrDataURL(code); err != nil {
		return "", "", 0, wire.Unavailable(false, "cannot draw the QR code")
	}
	return code, dataURL, max(time.Until(expires).Milliseconds(), 0), nil
}

// qrDataURL is code as a PNG QR code in a data URL.
func qrDataURL(code string) (string, error) {
	png, err := qrcode.Encode(code, qrcode.Medium, qrPixels)
	if err != nil {
		return "", fmt.Errorf("encode QR code: %w", err)
	}
	return "data:image/png;base64," + base64.StdEncoding.EncodeToString(png), nil
}

// loginFailure words why a login ended for a client, without Go internals.
func loginFailure(err error) *wire.Error {
	var ue *unreachableError
	var al *alreadyLinkedError
	switch {
	case errors.As(err, &ue):
		return wire.Unavailable(true, "cannot reach WhatsApp: %s; check the gateway's internet connection (and HTTPS_PROXY, if one is set), then call web.login.start again", ue.reason)
	case errors.As(err, &al):
		return wire.Invalid("already linked as %s", al.number)
	case errors.Is(err, ErrLoginTimeout):
		return wire.Unavailable(true, "login timed out: no QR code was scanned; call web.login.start again")
	case errors.Is(err, ErrClientOutdated):
		return wire.Unavailable(false, "WhatsApp refused this client as outdated; update clawdis")
	case errors.Is(err, errPairedNotConnected):
		return wire.Unavailable(true, "the QR code was scanned, but the connection to WhatsApp did not come up; call web.login.start with force:true to try again")
	case errors.Is(err, context.Canceled):
		return wire.Unavailable(true, "login ended: the gateway is stopping")
	}
	return wire.Unavailable(true, "login ended: %s", strings.TrimPrefix(err.Error(), "whatsapp login: "))
}
