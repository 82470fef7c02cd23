package whatsapp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/clawdis/clawdis/services/provider"
	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/store"
)

func TestLoginRefusesWhenAlreadyLinked(t *testing.T) {
	dir := t.TempDir()
	linkTestDevice(t, dir, "436641234567", time.Now())
	var out bytes.Buffer
	_, err := Login(context.Background(), LoginOptions{StoreDir: dir, Out: &out})
	if !errors.Is(err, ErrAlreadyLinked) || !strings.Contains(err.Error(), "+436641234567") ||
		!strings.Contains(err.Error(), "clawdis logout") {
		t.Fatalf("Login = %v, want ErrAlreadyLinked naming the number and `clawdis logout`", err)
	}
	if out.Len() != 0 {
		t.Errorf("printed %q before refusing", out.String())
	}
}

func TestLoginOptionErrors(t *testing.T) {
	if _, err := Login(context.Background(), LoginOptions{StoreDir: t.TempDir(), Timeout: -time.Second}); err == nil {
		t.Error("negative timeout accepted")
	}
	if _, err := Login(context.Background(), LoginOptions{}); err == nil {
		t.Error("missing store dir accepted")
	}
}

func TestLogout(t *testing.T) {
	t.Run("nothing linked", func(t *testing.T) {
		_, err := logout(context.Background(), t.TempDir(), func(context.Context, *store.Device) bool {
			t.Error("remote logout attempted without a device")
			return false
		})
		if !errors.Is(err, provider.ErrNotLinked) {
			t.Fatalf("logout = %v, want ErrNotLinked", err)
		}
	})
	for _, remoteOK := range []bool{false, true} {
		name := map[bool]string{false: "offline deletes locally", true: "remote unlink"}[remoteOK]
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			linkTestDevice(t, dir, "436641234567", time.Now())
			res, err := logout(context.Background(), dir, func(ctx context.Context, dev *store.Device) bool {
				if remoteOK { // what whatsmeow's Logout does after WhatsApp confirms
					if err := dev.Delete(ctx); err != nil {
						t.Errorf("delete: %v", err)
					}
				}
				return remoteOK
			})
			if err != nil || res.Number != "+436641234567" || res.Remote != remoteOK {
				t.Fatalf("logout = %+v, %v", res, err)
			}
			c, err := openStore(context.Background(), dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = c.Close() }()
			if dev, err := linkedDevice(context.Background(), c); dev != nil || err != nil {
				t.Fatalf("after logout the store still has %v (%v)", dev, err)
			}
			if _, err := logout(context.Background(), dir, func(context.Context, *store.Device) bool { return false }); !errors.Is(err, provider.ErrNotLinked) {
				t.Errorf("second logout = %v, want ErrNotLinked", err)
			}
		})
	}
}

func TestQRResult(t *testing.T) {
	for _, tt := range []struct {
		item    whatsmeow.QRChannelItem
		ok      bool
		is      error
		message string
	}{
		{item: whatsmeow.QRChannelSuccess, ok: true},
		{item: whatsmeow.QRChannelTimeout, is: ErrLoginTimeout, message: "no QR code scanned before WhatsApp stopped offering codes"},
		{item: whatsmeow.QRChannelClientOutdated, is: ErrClientOutdated, message: "update clawdis"},
		{item: whatsmeow.QRChannelScannedWithoutMultidevice, message: "multi-device"},
		{item: whatsmeow.QRChannelErrUnexpectedEvent, message: "unexpected connection state"},
		{item: whatsmeow.QRChannelItem{Event: whatsmeow.QRChannelEventError, Error: errors.New("bad signature")}, message: "pairing failed: bad signature"},
		{item: whatsmeow.QRChannelItem{Event: "something-new"}, message: "something-new"},
	} {
		t.Run(tt.item.Event, func(t *testing.T) {
			err := qrResult(tt.item)
			if tt.ok != (err == nil) {
				t.Fatalf("qrResult = %v", err)
			}
			if err == nil {
				return
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("qrResult = %v, want %v", err, tt.is)
			}
			if !strings.Contains(err.Error(), tt.message) {
				t.Errorf("qrResult = %q, want it to contain %q", err, tt.message)
			}
		})
	}
}

func TestLoginDeadlineNamesTimeout(t *testing.T) {
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	err := loginCtxErr(ctx, 90*time.Second, ctx.Err())
	if !errors.Is(err, ErrLoginTimeout) || err.Error() != "no QR code scanned within 1m30s" {
		t.Errorf("loginCtxErr = %v", err)
	}
	cctx, ccancel := context.WithCancel(context.Background())
	ccancel()
	if err := loginCtxErr(cctx, time.Minute, cctx.Err()); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled login = %v, want context.Canceled", err)
	}
}

func TestSpinner(t *testing.T) {
	a := spinnerLine(0, "waiting", 90*time.Second+400*time.Millisecond)
	b := spinnerLine(1, "waiting", -time.Second)
	if !strings.Contains(a, "waiting… (1m30s left)") || !strings.Contains(b, "(0s left)") || a[:3] == b[:3] {
		t.Errorf("spinner lines %q, %q", a, b)
	}
	var out bytes.Buffer
	p := &progress{out: &out, deadline: time.Now().Add(time.Minute)}
	p.done() // nothing shown: nothing to clear
	if out.Len() != 0 {
		t.Errorf("done without a line wrote %q", out.String())
	}
	p.tick("waiting")
	p.done()
	if s := out.String(); !strings.HasPrefix(s, "\r") || !strings.HasSuffix(s, "\r\033[K") {
		t.Errorf("progress output %q", s)
	}
}

func TestShowQR(t *testing.T) {
	var out bytes.Buffer
	for n, want := range map[int]string{1: "QR code shown: scan it", 2: "New QR code shown (the previous one expired)"} {
		out.Reset()
		showQR(&out, "2@abcdef,ghijkl,mnopqr,stuvwx", n)
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		if len(lines) < 10 || !strings.HasPrefix(lines[0], want) || !strings.Contains(lines[0], "Linked devices") ||
			!strings.ContainsAny(out.String(), "█▀▄") {
			t.Errorf("QR output %d:\n%s", n, out.String())
		}
	}
}

func TestUnreachableReason(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want string
	}{
		{&net.OpError{Op: "dial", Err: &net.DNSError{Name: "web.whatsapp.com", Err: "no such host", IsNotFound: true}},
			"the name web.whatsapp.com does not resolve"},
		{fmt.Errorf("handshake: %w", &net.OpError{Op: "proxyconnect", Net: "tcp", Err: syscall.ECONNREFUSED}),
			"the proxy set in HTTPS_PROXY cannot be reached"},
		{fmt.Errorf("dial: %w", &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}),
			"the connection was refused"},
		{fmt.Errorf("dial: %w", os.NewSyscallError("connect", syscall.ENETUNREACH)), "the network is unreachable"},
		{fmt.Errorf("a: %w", fmt.Errorf("b: %w", errors.New("tls: bad certificate"))), "tls: bad certificate"},
		{fmt.Errorf("%w: %w", errors.New("failed to dial"), fmt.Errorf("handshake: %w",
			&url.Error{Op: "Get", URL: "https://web.whatsapp.com/ws/chat", Err: errors.New("Bad Gateway")})),
			"the connection failed (Bad Gateway)"},
		{fmt.Errorf("%w: %w", errors.New("failed to dial"), errors.New("EOF")), "EOF"},
	} {
		if got := unreachableReason(tt.err); got != tt.want {
			t.Errorf("unreachableReason(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
	err := &unreachableError{reason: "the connection was refused", err: syscall.ECONNREFUSED}
	if !errors.Is(err, ErrUnreachable) || !errors.Is(err, syscall.ECONNREFUSED) || strings.Count(err.Error(), ". ") > 0 ||
		!strings.HasPrefix(err.Error(), "cannot reach WhatsApp: the connection was refused; ") {
		t.Errorf("unreachableError: %q", err.Error())
	}
}

func TestLinked(t *testing.T) {
	dir := t.TempDir()
	if number, err := Linked(context.Background(), dir); number != "" || err != nil {
		t.Errorf("empty dir: %q %v", number, err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("Linked created %d files in an empty dir", len(entries))
	}
	linkTestDevice(t, dir, "436641234567", time.Now())
	if number, err := Linked(context.Background(), dir); number != "+436641234567" || err != nil {
		t.Errorf("linked store: %q %v", number, err)
	}
}

// TestLoginStages runs `clawdis login`'s flow against the fake WhatsApp: it prints each
// stage, a new QR code when the first one rotates, and returns the linked account, which
// the store then holds.
func TestLoginStages(t *testing.T) {
	dir := t.TempDir()
	wa := newFakeWhatsApp()
	var out bytes.Buffer // read after Login returned
	done := make(chan error, 1)
	var res LoginResult
	go func() {
		var err error
		res, err = Login(context.Background(), LoginOptions{StoreDir: dir, Out: &out, dial: wa.dial})
		done <- err
	}()
	conn := wa.nextDial(t)
	conn.code("2@first", time.Minute)
	conn.code("2@second", 20*time.Second)
	conn.scan(t, "436641234567")
	if err := <-done; err != nil {
		t.Fatalf("Login: %v", err)
	}
	if res.Number != "+436641234567" || res.JID != "436641234567@s.whatsapp.net" {
		t.Errorf("Login = %+v", res)
	}
	text := out.String()
	last := -1
	for _, stage := range []string{"Connecting to WhatsApp…", "waiting for WhatsApp's login code", "QR code shown: scan it",
		"New QR code shown (the previous one expired)", "QR code scanned; finishing the link…", "Linked as +436641234567"} {
		i := strings.Index(text, stage)
		if i <= last {
			t.Fatalf("stage %q missing or out of order in:\n%s", stage, text)
		}
		last = i
	}
	if number, err := Linked(context.Background(), dir); number != "+436641234567" || err != nil {
		t.Errorf("store after Login: %q, %v", number, err)
	}
}
