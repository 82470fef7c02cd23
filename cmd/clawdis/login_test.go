package main

import (
	"bytes"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestLoginLogoutGuards(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	var out, errb bytes.Buffer
	// Nothing linked: logout says so and succeeds (there is nothing left to undo).
	if code := execute([]string{"logout", "--state-dir", t.TempDir()}, &out, &errb); code != 0 || !strings.Contains(out.String(), "not linked") {
		t.Errorf("logout of an empty store: exit %d, stdout %q, stderr %q", code, out.String(), errb.String())
	}
	// A running gateway holds the state dir: login and logout refuse to touch its store.
	d := startDaemon(t, t.TempDir(), "", nil)
	for _, cmd := range []string{"login", "logout"} {
		errb.Reset()
		code := execute([]string{cmd, "--state-dir", d.state}, &out, &errb)
		if code != 1 || !strings.Contains(errb.String(), "a gateway is running") || !strings.Contains(errb.String(), "locked by pid") {
			t.Errorf("%s beside a gateway: exit %d, stderr %q", cmd, code, errb.String())
		}
	}
}

// blackhole accepts TCP connections and never answers them, like a firewall that drops
// packets after the handshake; it is closed at cleanup.
func blackhole(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

// TestLoginUnreachable runs `clawdis login` where WhatsApp cannot be reached (through a
// proxy that refuses connections, and one that never answers): it shows the stages it went
// through, never claims a QR code was shown, and fails within 20 s with one sentence.
func TestLoginUnreachable(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, proxy, reason string
	}{
		{"refused", strings.TrimPrefix(closedURL(t), "ws://"), "the proxy set in HTTPS_PROXY cannot be reached"},
		{"no answer", blackhole(t), "no answer within 15s"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			home := t.TempDir()
			proxy := "http://" + tt.proxy
			start := time.Now()
			stdout, stderr, code := runCLI(t, []string{"HOME=" + home, "HTTPS_PROXY=" + proxy, "https_proxy=" + proxy,
				"NO_PROXY=", "no_proxy="}, "login", "--state-dir", home+"/state")
			elapsed := time.Since(start)
			if code != 1 || elapsed > 20*time.Second {
				t.Errorf("exit %d after %s; want 1 within 20s", code, elapsed.Round(time.Second))
			}
			if !strings.HasPrefix(stdout, "Connecting to WhatsApp…\n") || strings.Contains(stdout, "QR") ||
				strings.Contains(stdout, "Connected") {
				t.Errorf("stdout %q: want the connecting stage and no QR code", stdout)
			}
			want := "clawdis: cannot reach WhatsApp: " + tt.reason + "; check this machine's internet connection " +
				"(and HTTPS_PROXY, if one is set), then run `clawdis login` again\n"
			if stderr != want {
				t.Errorf("stderr %q, want %q", stderr, want)
			}
		})
	}
}

// TestWebLoginWithoutWhatsApp: a gateway that runs no providers says so when a client
// asks it to link WhatsApp, instead of calling the method unknown.
func TestWebLoginWithoutWhatsApp(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	d := startDaemon(t, t.TempDir(), "", nil) // --no-providers
	for _, method := range []string{"web.login.start", "web.login.wait"} {
		var out, errb bytes.Buffer
		code := execute([]string{"gateway", "call", method, "--url", d.url}, &out, &errb)
		if code != 1 || !strings.Contains(errb.String(), method+" is not available: WhatsApp is not enabled on this gateway") {
			t.Errorf("%s: exit %d, stdout %q, stderr %q", method, code, out.String(), errb.String())
		}
	}
}
