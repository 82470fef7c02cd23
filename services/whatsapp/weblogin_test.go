package whatsapp

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"image/png"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/store"

	"github.com/clawdis/clawdis/bus/bustest"
	"github.com/clawdis/clawdis/bus/subject"
	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/schemas"
	"github.com/clawdis/clawdis/services/provider"
)

// loginHarness is the WhatsApp provider (a Client under the provider core) on a test bus,
// with logins dialling the fake WhatsApp and Run's own connections failing at a local
// proxy, so nothing reaches WhatsApp.
type loginHarness struct {
	t      *testing.T
	c      *Client
	bus    *bustest.Bus
	wa     *fakeWhatsApp
	nc     *nats.Conn
	states chan *nats.Msg
	remote chan string // numbers a forced start asked WhatsApp to unlink
	dir    string
}

// loginOptions vary the harness: by default logins dial the fake WhatsApp and the proxy
// refuses every connection.
type loginOptions struct {
	realWhatsApp bool             // logins use the real whatsmeow connection (through the proxy)
	proxy        http.HandlerFunc // the proxy's answer to CONNECT
	reach        time.Duration    // the login's reach timeout
}

func startLogin(t *testing.T, dir string, o loginOptions) *loginHarness {
	t.Helper()
	c, err := New(Config{StoreDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	h := &loginHarness{t: t, c: c, wa: newFakeWhatsApp(), states: make(chan *nats.Msg, 256), remote: make(chan string, 4), dir: dir}
	if o.proxy == nil {
		o.proxy = func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "no upstream", http.StatusBadGateway) }
	}
	proxyTo(t, c, o.proxy)
	if !o.realWhatsApp {
		c.dialLogin = h.wa.dial
	}
	c.loginReach = o.reach
	c.remoteLogout = func(ctx context.Context, dev *store.Device) bool {
		c.mu.Lock()
		running := c.running
		c.mu.Unlock()
		if running || len(h.wa.Dials()) > 0 {
			t.Errorf("unlinking while the connection runs (%v) or after the login dialled (%d)", running, len(h.wa.Dials()))
		}
		h.remote <- e164(dev.ID.ToNonAD())
		if err := dev.Delete(ctx); err != nil { // what whatsmeow's Logout does once WhatsApp confirmed
			t.Errorf("delete device: %v", err)
		}
		return true
	}
	b := bustest.New(t)
	h.bus, h.nc = b, b.Conn("test")
	sub, err := h.nc.ChanSubscribe(mustSubject(subject.ProviderState(ID)), h.states)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	core, err := provider.New(provider.Config{Network: c, PrivateBus: true}, b.Conn(ID), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- core.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("provider Run: %v", err)
			}
		case <-time.After(waitTimeout):
			t.Error("provider did not stop")
		}
	})
	select {
	case <-core.Ready():
	case err := <-done:
		t.Fatalf("provider Run: %v", err)
	case <-time.After(waitTimeout):
		t.Fatal("provider not ready")
	}
	return h
}

func mustSubject(s string, err error) string {
	if err != nil {
		panic(err)
	}
	return s
}

// request sends one bus request and decodes the answer or the protocol error; the answer
// must conform to the method's payload schema.
func request[T any](t *testing.T, nc *nats.Conn, method, subj string, params any) (T, *wire.Error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*waitTimeout)
	defer cancel()
	var out T
	var raw json.RawMessage
	err := wire.RequestJSON(ctx, nc, subj, params, &raw)
	var werr *wire.Error
	if errors.As(err, &werr) {
		return out, werr
	}
	if err != nil {
		t.Errorf("%s: %v", method, err)
		return out, nil
	}
	checkPayload(t, method, raw)
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Errorf("%s answer %s: %v", method, raw, err)
	}
	return out, nil
}

// checkPayload validates a payload against the method's schema.
func checkPayload(t *testing.T, method string, raw []byte) {
	t.Helper()
	set, err := schemas.Load()
	if err != nil {
		t.Fatal(err)
	}
	v, err := schemas.Decode(raw)
	if err == nil {
		err = set.Payload(method, v)
	}
	if err != nil {
		t.Errorf("%s payload %s fails its schema: %v", method, raw, err)
	}
}

// start calls web.login.start on a goroutine; the answer arrives on the channel.
func (h *loginHarness) start(force bool) <-chan startAnswer {
	out := make(chan startAnswer, 1)
	go func() {
		res, werr := request[schemas.WebLoginStartResult](h.t, h.nc, schemas.MethodWebLoginStart, subject.WebLoginStart,
			schemas.WebLoginStartParams{Force: force})
		out <- startAnswer{res, werr}
	}()
	return out
}

type startAnswer struct {
	res  schemas.WebLoginStartResult
	werr *wire.Error
}

func (h *loginHarness) wait(timeoutMs int64) (schemas.WebLoginWaitResult, *wire.Error) {
	h.t.Helper()
	return request[schemas.WebLoginWaitResult](h.t, h.nc, schemas.MethodWebLoginWait, subject.WebLoginWait,
		schemas.WebLoginWaitParams{TimeoutMs: &timeoutMs})
}

func receive[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(2 * waitTimeout):
		t.Fatalf("no %s", what)
	}
	var zero T
	return zero
}

// waitState waits for a provider state event satisfying ok.
func (h *loginHarness) waitState(what string, ok func(wire.ProviderState) bool) wire.ProviderState {
	h.t.Helper()
	deadline := time.After(waitTimeout)
	for {
		select {
		case m := <-h.states:
			var st wire.ProviderState
			if err := json.Unmarshal(m.Data, &st); err != nil {
				h.t.Fatal(err)
			}
			if ok(st) {
				return st
			}
		case <-deadline:
			h.t.Fatalf("no state event %s", what)
		}
	}
}

// checkQR checks that dataURL is a PNG QR code.
func checkQR(t *testing.T, dataURL string) {
	t.Helper()
	b64, ok := strings.CutPrefix(dataURL, "data:image/png;base64,")
	if !ok {
		t.Fatalf("qrDataUrl %.40q is not a PNG data URL", dataURL)
	}
	data, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatalf("qrDataUrl base64: %v", err)
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("qrDataUrl PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() != qrPixels || b.Dy() != qrPixels {
		t.Errorf("QR image %v, want %d px square", b, qrPixels)
	}
}

// TestWebLoginLinks: start answers WhatsApp's first code with a PNG of it; a wait answers
// the rotated code (linked:false); after the scan a wait answers linked:true with the JID
// and number, the provider runs again on its own and publishes the linked state, and a
// repeated wait gets the same answer.
func TestWebLoginLinks(t *testing.T) {
	h := startLogin(t, t.TempDir(), loginOptions{})
	h.waitState("unlinked", func(st wire.ProviderState) bool { return st.State == schemas.WebUnlinked })

	started := h.start(false)
	conn := h.wa.nextDial(t)
	conn.code("2@first,code", time.Minute)
	a := receive(t, started, "start answer")
	if a.werr != nil || a.res.QR != "2@first,code" || a.res.ExpiresInMs <= 50_000 || a.res.ExpiresInMs > 60_000 {
		t.Fatalf("start = %+v, %v", a.res, a.werr)
	}
	checkQR(t, a.res.QRDataURL)

	waited := make(chan waitAnswer, 1)
	go func() { res, werr := h.wait(30_000); waited <- waitAnswer{res, werr} }()
	conn.code("2@second,code", 20*time.Second)
	w := receive(t, waited, "wait answer")
	if w.werr != nil || w.res.Linked || w.res.QR != "2@second,code" || w.res.ExpiresInMs <= 0 || w.res.ExpiresInMs > 20_000 {
		t.Fatalf("wait after rotation = %+v, %v", w.res, w.werr)
	}
	checkQR(t, w.res.QRDataURL)

	go func() { res, werr := h.wait(30_000); waited <- waitAnswer{res, werr} }()
	conn.scan(t, "436641234567")
	w = receive(t, waited, "wait answer")
	want := schemas.WebLoginWaitResult{Linked: true, JID: "436641234567@s.whatsapp.net", Phone: "+436641234567"}
	if w.werr != nil || w.res != want {
		t.Fatalf("wait after the scan = %+v, %v; want %+v", w.res, w.werr, want)
	}
	// The provider connects with the new link by itself (here it reaches only the proxy).
	st := h.waitState("linked", func(st wire.ProviderState) bool { return st.Linked })
	if st.Self != "+436641234567" || st.State != schemas.WebConnecting {
		t.Errorf("state after the link %+v", st)
	}
	if again, werr := h.wait(1000); werr != nil || again != want {
		t.Errorf("repeated wait = %+v, %v", again, werr)
	}
}

type waitAnswer struct {
	res  schemas.WebLoginWaitResult
	werr *wire.Error
}

// TestWebLoginWaitTimesOutWithCurrentCode: a wait whose timeoutMs passes with nothing new
// answers the current code again, so the client keeps showing it.
func TestWebLoginWaitTimesOutWithCurrentCode(t *testing.T) {
	h := startLogin(t, t.TempDir(), loginOptions{})
	started := h.start(false)
	h.wa.nextDial(t).code("2@only", time.Minute)
	if a := receive(t, started, "start answer"); a.werr != nil {
		t.Fatal(a.werr)
	}
	res, werr := h.wait(1)
	if werr != nil || res.Linked || res.QR != "2@only" {
		t.Fatalf("wait = %+v, %v", res, werr)
	}
}

// TestWebLoginEnds: a login that WhatsApp ends (no code scanned in time) answers the next
// wait with UNAVAILABLE saying so; a new start begins a new login.
func TestWebLoginEnds(t *testing.T) {
	h := startLogin(t, t.TempDir(), loginOptions{})
	started := h.start(false)
	conn := h.wa.nextDial(t)
	conn.code("2@a", time.Minute)
	receive(t, started, "start answer")
	conn.end(whatsmeow.QRChannelTimeout)
	_, werr := h.wait(30_000)
	if werr == nil || werr.Code != wire.CodeUnavailable || !werr.Retryable || !strings.HasPrefix(werr.Message, "login timed out") {
		t.Fatalf("wait after the timeout = %+v", werr)
	}
	started = h.start(false)
	h.wa.nextDial(t).code("2@b", time.Minute)
	if a := receive(t, started, "start answer"); a.werr != nil || a.res.QR != "2@b" {
		t.Fatalf("new start = %+v, %v", a.res, a.werr)
	}
}

// TestWebLoginSecondStartSharesTheLogin: a start while a login runs answers that login's
// current code; no second login is made.
func TestWebLoginSecondStartSharesTheLogin(t *testing.T) {
	h := startLogin(t, t.TempDir(), loginOptions{})
	first, second := h.start(false), h.start(false)
	h.wa.nextDial(t).code("2@shared", time.Minute)
	for _, ch := range []<-chan startAnswer{first, second} {
		if a := receive(t, ch, "start answer"); a.werr != nil || a.res.QR != "2@shared" {
			t.Fatalf("start = %+v, %v", a.res, a.werr)
		}
	}
	h.wa.noDial(t)
}

func TestWebLoginWaitWithoutLogin(t *testing.T) {
	h := startLogin(t, t.TempDir(), loginOptions{})
	_, werr := h.wait(1000)
	if werr == nil || werr.Code != wire.CodeInvalidRequest || werr.Message != "no login in progress; call web.login.start" {
		t.Fatalf("wait = %+v", werr)
	}
}

// TestWebLoginAlreadyLinked: without force a linked store is refused, naming the number;
// nothing is unlinked and no login is made.
func TestWebLoginAlreadyLinked(t *testing.T) {
	dir := t.TempDir()
	linkTestDevice(t, dir, "436641234567", time.Now())
	h := startLogin(t, dir, loginOptions{})
	a := receive(t, h.start(false), "start answer")
	if a.werr == nil || a.werr.Code != wire.CodeInvalidRequest || !strings.HasPrefix(a.werr.Message, "already linked as +436641234567") {
		t.Fatalf("start = %+v, %+v", a.res, a.werr)
	}
	h.wa.noDial(t)
	if number, _ := Linked(context.Background(), dir); number != "+436641234567" {
		t.Errorf("store after the refused start: %q", number)
	}
}

// TestWebLoginForceUnlinksFirst: with force the running connection stops, WhatsApp is
// asked to unlink the old account (the harness's remoteLogout checks that nothing runs or
// dialled yet), and only then does the login connect; the new link is what the provider
// connects with afterwards.
func TestWebLoginForceUnlinksFirst(t *testing.T) {
	dir := t.TempDir()
	linkTestDevice(t, dir, "436641234567", time.Now())
	h := startLogin(t, dir, loginOptions{})
	h.waitState("connecting as the old account", func(st wire.ProviderState) bool { return st.Self == "+436641234567" })

	started := h.start(true)
	if got := receive(t, h.remote, "remote unlink"); got != "+436641234567" {
		t.Errorf("unlinked %q", got)
	}
	conn := h.wa.nextDial(t)
	if !conn.PairedJID().IsEmpty() {
		t.Fatal("the login's device is already linked")
	}
	conn.code("2@new", time.Minute)
	if a := receive(t, started, "start answer"); a.werr != nil || a.res.QR != "2@new" {
		t.Fatalf("start = %+v, %v", a.res, a.werr)
	}
	conn.scan(t, "4915112345678")
	if res, werr := h.wait(30_000); werr != nil || res.Phone != "+4915112345678" {
		t.Fatalf("wait = %+v, %v", res, werr)
	}
	h.waitState("connecting as the new account", func(st wire.ProviderState) bool { return st.Self == "+4915112345678" })
}

// TestWebLoginUnreachable: when WhatsApp cannot be reached, start answers UNAVAILABLE,
// retryable, with the reason in plain words, within the reach timeout: through a proxy that
// refuses (at once) and one that never answers (after the timeout, shortened here). The
// real whatsmeow connection is used; only the proxy stands in for the network.
func TestWebLoginUnreachable(t *testing.T) {
	if DefaultReachTimeout+webUnlinkTimeout > 30*time.Second {
		t.Errorf("a forced start may take %s before it reports WhatsApp unreachable; SPEC §6.12 allows 30s",
			DefaultReachTimeout+webUnlinkTimeout)
	}
	for _, tt := range []struct {
		name   string
		proxy  http.HandlerFunc
		reason string
	}{
		{"refused", func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "no upstream", http.StatusBadGateway) },
			"the connection failed (Bad Gateway); "},
		{"no answer", nil, "no answer within 300ms; "},
	} {
		t.Run(tt.name, func(t *testing.T) {
			release := make(chan struct{})
			if tt.proxy == nil { // hang the dial until the client gives up or the test ends
				tt.proxy = func(_ http.ResponseWriter, r *http.Request) {
					select {
					case <-r.Context().Done():
					case <-release:
					}
				}
			}
			h := startLogin(t, t.TempDir(), loginOptions{realWhatsApp: true, proxy: tt.proxy, reach: 300 * time.Millisecond})
			t.Cleanup(func() { close(release) }) // before the proxy closes
			a := receive(t, h.start(false), "start answer")
			if a.werr == nil || a.werr.Code != wire.CodeUnavailable || !a.werr.Retryable ||
				!strings.HasPrefix(a.werr.Message, "cannot reach WhatsApp: "+tt.reason) {
				t.Fatalf("start = %+v, %+v", a.res, a.werr)
			}
			for _, internal := range []string{"json:", "*", "%!", "context deadline", "failed to", "https://"} {
				if strings.Contains(a.werr.Message, internal) {
					t.Errorf("message %q shows Go internals (%q)", a.werr.Message, internal)
				}
			}
			if _, werr := h.wait(1000); werr == nil || werr.Code != wire.CodeUnavailable {
				t.Errorf("wait after the failed start = %+v", werr)
			}
		})
	}
}
