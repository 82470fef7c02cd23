package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// TestWebChatListenFlagErrors: bad --bind/--allow-from values (and their `service webchat`
// twins) are usage errors naming the flag, reported before anything is bound or dialed.
func TestWebChatListenFlagErrors(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	for _, tt := range []struct {
		name    string
		args    []string
		wantErr []string
	}{
		{"bad cidr", []string{"webchat", "--allow-from", "nope"}, []string{`--allow-from "nope" is not a CIDR network`}},
		{"bare address", []string{"webchat", "--allow-from", "172.18.0.1"}, []string{`--allow-from "172.18.0.1"`}},
		{"second cidr bad", []string{"webchat", "--allow-from", "172.18.0.0/16,10.0.0.0/33"}, []string{`--allow-from "10.0.0.0/33"`}},
		{"any without allow-from", []string{"webchat", "--bind", "0.0.0.0"}, []string{"--bind 0.0.0.0 is not loopback", "--allow-from"}},
		{"lan without allow-from", []string{"webchat", "--bind", "192.0.2.2"}, []string{"--bind 192.0.2.2 is not loopback"}},
		{"ipv6 any without allow-from", []string{"webchat", "--bind", "::"}, []string{"--bind :: is not loopback"}},
		{"bind with port", []string{"webchat", "--bind", "127.0.0.1:18788"}, []string{`--bind "127.0.0.1:18788": give a host without a port`}},
		{"port", []string{"webchat", "--port", "70000"}, []string{"--port 70000 out of range"}},
		{"service bad cidr", []string{"service", "webchat", "--webchat-allow-from", "172.18.0.0/16,x"}, []string{`--webchat-allow-from "x"`}},
		{"service any without allow-from", []string{"service", "webchat", "--webchat-bind", "0.0.0.0"},
			[]string{"--webchat-bind 0.0.0.0 is not loopback", "--webchat-allow-from"}},
		{"service port", []string{"service", "webchat", "--webchat-port", "-1"}, []string{"--webchat-port -1 out of range"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := execute(append(tt.args, "--url", "ws://127.0.0.1:1"), &out, &errb)
			if code != 2 {
				t.Errorf("exit %d, want 2 (stderr %q)", code, errb.String())
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(errb.String(), w) {
					t.Errorf("stderr %q lacks %q", errb.String(), w)
				}
			}
		})
	}
}

// TestWebChatListenPlan: the defaults stay loopback-only; allowed networks reach the server.
func TestWebChatListenPlan(t *testing.T) {
	for _, tt := range []struct {
		name      string
		wf        webChatFlags
		wantAddr  string
		wantAllow []string
	}{
		{"zero flags", webChatFlags{}, "127.0.0.1:0", nil},
		{"default", webChatFlags{bind: "127.0.0.1", port: 18788}, "127.0.0.1:18788", nil},
		{"ipv6 loopback", webChatFlags{bind: "[::1]", port: 18788}, "[::1]:18788", nil},
		{"localhost", webChatFlags{bind: "localhost", port: 1}, "localhost:1", nil},
		{"container", webChatFlags{bind: "0.0.0.0", port: 18788, allowFrom: []string{"172.18.0.0/16", " fd00::/8"}},
			"0.0.0.0:18788", []string{"172.18.0.0/16", "fd00::/8"}},
		{"ipv6 any", webChatFlags{bind: "::", allowFrom: []string{"172.18.0.0/16"}}, "[::]:0", []string{"172.18.0.0/16"}},
		{"loopback with networks", webChatFlags{allowFrom: []string{"10.0.0.0/8"}}, "127.0.0.1:0", []string{"10.0.0.0/8"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			addr, allow, err := tt.wf.listenPlan()
			if err != nil {
				t.Fatal(err)
			}
			if addr != tt.wantAddr {
				t.Errorf("addr %q, want %q", addr, tt.wantAddr)
			}
			var got []string
			for _, p := range allow {
				got = append(got, p.String())
			}
			if strings.Join(got, ",") != strings.Join(tt.wantAllow, ",") {
				t.Errorf("allow %v, want %v", got, tt.wantAllow)
			}
		})
	}
}

// firstHostIPv4 is the host's primary IPv4 address (primaryIP, as the presence entry
// reports it), or skips.
func firstHostIPv4(t *testing.T) netip.Addr {
	t.Helper()
	ip, err := netip.ParseAddr(primaryIP())
	if err != nil {
		t.Skip("no non-loopback IPv4 address on an interface that is up: nothing to bind the WebChat test to")
	}
	return ip
}

// TestWebChatAllowFromServes runs runWebChat as `clawdis service webchat --webchat-bind IP
// --webchat-allow-from IP/32` would and fetches the page from IP, addressed as 127.0.0.1.
func TestWebChatAllowFromServes(t *testing.T) {
	ip := firstHostIPv4(t)
	logs := &syncBuf{}
	log, _ := newLogger(logs, "json", false)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	listening := make(chan string, 1)
	done := make(chan error, 1)
	wf := webChatFlags{url: "ws://127.0.0.1:1", bind: ip.String(), allowFrom: []string{ip.String() + "/32"},
		flagPrefix: "webchat-", listening: func(a string) { listening <- a }}
	go func() { done <- runWebChat(ctx, wf, log) }()
	var addr string
	select {
	case addr = <-listening:
	case err := <-done:
		t.Fatalf("webchat exited: %v\nlogs: %s", err, logs.String())
	case <-time.After(15 * time.Second):
		t.Fatal("webchat did not start")
	}
	ap, err := netip.ParseAddrPort(addr)
	if err != nil || ap.Addr() != ip {
		t.Fatalf("listening on %q, want %s", addr, ip)
	}
	tr := &http.Transport{DisableKeepAlives: true, DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		d := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(ip, 0))}
		return d.DialContext(ctx, network, addr)
	}}
	rctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(rctx, "GET", "http://127.0.0.1:"+addr[strings.LastIndex(addr, ":")+1:]+"/", nil)
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "<script") {
		t.Errorf("page from %s: %d %s", ip, resp.StatusCode, body)
	}
	stop()
	if err := <-done; err != nil {
		t.Errorf("webchat: %v", err)
	}
	if !strings.Contains(logs.String(), `"allow_from":["`+ip.String()+`/32"]`) {
		t.Errorf("startup log does not name the allowed network:\n%s", logs.String())
	}
}
