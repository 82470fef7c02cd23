package webchat

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/coder/websocket"

	"github.com/clawdis/clawdis/edge/edgetest"
)

func TestPeerAllowed(t *testing.T) {
	bridge := []netip.Prefix{netip.MustParsePrefix("172.18.0.0/16"), netip.MustParsePrefix("fd00:18::/64")}
	for _, tt := range []struct {
		name   string
		remote string
		allow  []netip.Prefix
		want   bool
	}{
		{"loopback", "127.0.0.1:5555", nil, true},
		{"loopback with networks", "127.0.0.1:5555", bridge, true},
		{"other loopback", "127.3.2.1:5555", nil, true},
		{"ipv6 loopback", "[::1]:5555", bridge, true},
		{"mapped loopback", "[::ffff:127.0.0.1]:5555", nil, true},
		{"bridge gateway without networks", "172.18.0.1:5555", nil, false},
		{"bridge gateway", "172.18.0.1:5555", bridge, true},
		{"mapped bridge gateway", "[::ffff:172.18.0.1]:5555", bridge, true},
		{"next network", "172.19.0.1:5555", bridge, false},
		{"mapped next network", "[::ffff:172.19.0.1]:5555", bridge, false},
		{"lan", "192.168.1.20:5555", bridge, false},
		{"ipv6 in prefix", "[fd00:18::7]:5555", bridge, true},
		{"ipv6 outside prefix", "[fd00:19::7]:5555", bridge, false},
		{"ipv6 with zone", "[fd00:18::7%eth0]:5555", bridge, false},
		{"unspecified", "0.0.0.0:5555", bridge, false},
		{"no port", "172.18.0.1", bridge, false},
		{"garbage", "nonsense", bridge, false},
		{"empty", "", bridge, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := peerAllowed(tt.remote, tt.allow); got != tt.want {
				t.Errorf("peerAllowed(%q, %v) = %v, want %v", tt.remote, tt.allow, got, tt.want)
			}
		})
	}
}

// addrListener is a listener that only reports an address (New looks at nothing else).
type addrListener struct {
	net.Listener
	addr net.Addr
}

func (l addrListener) Addr() net.Addr { return l.addr }

func TestConfigListenAddress(t *testing.T) {
	bridge := []netip.Prefix{netip.MustParsePrefix("172.18.0.0/16")}
	tcp := func(s string) net.Listener {
		return addrListener{addr: net.TCPAddrFromAddrPort(netip.MustParseAddrPort(s))}
	}
	for _, tt := range []struct {
		name      string
		addr      string
		ln        net.Listener
		allow     []netip.Prefix
		wantErr   error  // errors.Is target; nil with wantText "" means success
		wantText  string // the error contains this
		wantAllow []netip.Prefix
	}{
		{name: "default"},
		{name: "loopback", addr: "127.0.0.1:18788"},
		{name: "localhost", addr: "localhost:0"},
		{name: "ipv6 loopback", addr: "[::1]:18788"},
		{name: "loopback listener", ln: tcp("127.0.0.1:18788")},
		{name: "loopback with networks", addr: "127.0.0.1:18788", allow: bridge, wantAllow: bridge},
		{name: "any without networks", addr: "0.0.0.0:18788", wantErr: ErrNotLoopback, wantText: "set AllowFrom (--allow-from, or --webchat-allow-from"},
		{name: "ipv6 any without networks", addr: "[::]:18788", wantErr: ErrNotLoopback},
		{name: "empty host without networks", addr: ":18788", wantErr: ErrNotLoopback},
		{name: "lan without networks", addr: "192.0.2.2:18788", wantErr: ErrNotLoopback},
		{name: "any listener without networks", ln: tcp("0.0.0.0:18788"), wantErr: ErrNotLoopback},
		{name: "empty networks", addr: "0.0.0.0:18788", allow: []netip.Prefix{}, wantErr: ErrNotLoopback},
		{name: "any with networks", addr: "0.0.0.0:18788", allow: bridge, wantAllow: bridge},
		{name: "ipv6 any with networks", addr: "[::]:18788", allow: bridge, wantAllow: bridge},
		{name: "container listener with networks", ln: tcp("172.18.0.2:18788"), allow: bridge, wantAllow: bridge},
		{name: "host bits are masked", addr: "0.0.0.0:18788", allow: []netip.Prefix{netip.MustParsePrefix("172.18.3.4/16")}, wantAllow: bridge},
		{name: "ipv4-in-ipv6 prefix", addr: "0.0.0.0:18788",
			allow:     []netip.Prefix{netip.MustParsePrefix("::ffff:172.18.0.0/112"), netip.MustParsePrefix("fd00::/8")},
			wantAllow: []netip.Prefix{netip.MustParsePrefix("172.18.0.0/16"), netip.MustParsePrefix("fd00::/8")}},
		{name: "zero prefix", addr: "0.0.0.0:18788", allow: []netip.Prefix{bridge[0], {}}, wantText: "AllowFrom[1]"},
		{name: "no port", addr: "127.0.0.1", wantText: "missing port"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv, err := New(Config{Addr: tt.addr, Listener: tt.ln, AllowFrom: tt.allow, Schemas: testSchemas(t)})
			if tt.wantErr == nil && tt.wantText == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				if !equalPrefixes(srv.cfg.AllowFrom, tt.wantAllow) {
					t.Errorf("AllowFrom %v, want %v", srv.cfg.AllowFrom, tt.wantAllow)
				}
				return
			}
			if err == nil {
				t.Fatal("New accepted the config")
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("error %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr == nil && errors.Is(err, ErrNotLoopback) {
				t.Errorf("error %v is ErrNotLoopback", err)
			}
			if !strings.Contains(err.Error(), tt.wantText) {
				t.Errorf("error %q lacks %q", err, tt.wantText)
			}
		})
	}
}

func equalPrefixes(a, b []netip.Prefix) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestHTTPAllowFrom drives the guards with the addresses a container sees: the host's
// published port arrives from the bridge gateway while the browser still names 127.0.0.1.
func TestHTTPAllowFrom(t *testing.T) {
	allowing, err := New(Config{Addr: "0.0.0.0:18788", Schemas: testSchemas(t), AllowFrom: []netip.Prefix{
		netip.MustParsePrefix("172.18.0.0/16"), netip.MustParsePrefix("::ffff:10.9.0.0/112")}})
	if err != nil {
		t.Fatal(err)
	}
	loopbackOnly, err := New(Config{Schemas: testSchemas(t)})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, target, remote, host, origin string
		srv                                *Server
		want                               int
		wantBody                           string
	}{
		{name: "bridge gateway", remote: "172.18.0.1:40000", want: 200, wantBody: "<script"},
		{name: "bridge gateway, localhost", remote: "172.18.0.1:40000", host: "localhost:18788", want: 200},
		{name: "mapped bridge gateway", remote: "[::ffff:172.18.0.1]:40000", want: 200},
		{name: "ipv4-in-ipv6 prefix", remote: "10.9.1.1:40000", want: 200},
		{name: "loopback", remote: "127.0.0.1:40000", want: 200},
		{name: "other network", remote: "172.19.0.1:40000", want: 403, wantBody: "loopback and allowed networks only"},
		{name: "bridge gateway, container host name", remote: "172.18.0.1:40000", host: "172.18.0.2:18788", want: 403, wantBody: "unexpected host"},
		{name: "bridge gateway, foreign host name", remote: "172.18.0.1:40000", host: "evil.example:18788", want: 403, wantBody: "unexpected host"},
		{name: "bridge gateway ws, container origin", target: "/ws", remote: "172.18.0.1:40000", origin: "http://172.18.0.2:18788", want: 403, wantBody: "origin not allowed"},
		{name: "bridge gateway ws, foreign origin", target: "/ws", remote: "172.18.0.1:40000", origin: "http://evil.example", want: 403, wantBody: "origin not allowed"},
		{name: "without networks", srv: loopbackOnly, remote: "172.18.0.1:40000", want: 403, wantBody: "loopback clients only"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := tt.srv
			if srv == nil {
				srv = allowing
			}
			target := tt.target
			if target == "" {
				target = "/"
			}
			req := httptest.NewRequest("GET", "http://127.0.0.1:18788"+target, nil)
			req.RemoteAddr = tt.remote
			if tt.host != "" {
				req.Host = tt.host
			}
			if tt.origin != "" {
				req.Header.Set("Origin", tt.origin)
			}
			rec := httptest.NewRecorder()
			srv.ServeHTTP(rec, req)
			if rec.Code != tt.want {
				t.Fatalf("status %d, want %d (%s)", rec.Code, tt.want, strings.TrimSpace(rec.Body.String()))
			}
			if !strings.Contains(rec.Body.String(), tt.wantBody) {
				t.Errorf("body %q lacks %q", rec.Body.String(), tt.wantBody)
			}
		})
	}
}

// hostIPv4 returns a non-loopback IPv4 address of an interface that is up, or skips.
func hostIPv4(t *testing.T) netip.Addr {
	t.Helper()
	ifaces, err := net.Interfaces()
	if err != nil {
		t.Fatalf("interfaces: %v", err)
	}
	for _, ifc := range ifaces {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagRunning == 0 || ifc.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			n, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			ip, ok := netip.AddrFromSlice(n.IP)
			if ip = ip.Unmap(); ok && ip.Is4() && !ip.IsLoopback() && !ip.IsLinkLocalUnicast() {
				return ip
			}
		}
	}
	t.Skip("no non-loopback IPv4 address on an interface that is up: nothing to serve the AllowFrom end-to-end test on")
	return netip.Addr{}
}

// lockedBuffer collects logs written from several goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestAllowFromEndToEnd serves on the machine's own non-loopback address and connects from
// that address, as the bridge gateway connects to a container: the page and the relay answer
// when AllowFrom covers the client and 403 otherwise, while the URL still names 127.0.0.1.
func TestAllowFromEndToEnd(t *testing.T) {
	ip := hostIPv4(t)
	gw := startGateway(t)
	for _, tt := range []struct {
		name  string
		allow netip.Prefix
		ok    bool
	}{
		{"covered", netip.PrefixFrom(ip, 32), true},
		{"not covered", netip.PrefixFrom(ip.Next(), 32), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", netip.AddrPortFrom(ip, 0).String())
			if err != nil {
				t.Fatal(err)
			}
			logs := &lockedBuffer{}
			r := startRelayOn(t, ln, gw.url(), func(c *Config) {
				c.AllowFrom = []netip.Prefix{tt.allow}
				c.Log = slog.New(slog.NewTextHandler(logs, nil))
			})
			port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
			// Every connection goes to the server's address from ip, whatever the URL names.
			tr := &http.Transport{DisableKeepAlives: true, DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				d := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(ip, 0))}
				return d.DialContext(ctx, network, ln.Addr().String())
			}}
			hc := &http.Client{Transport: tr}
			t.Cleanup(tr.CloseIdleConnections)

			want := http.StatusForbidden
			if tt.ok {
				want = http.StatusOK
			}
			if code, body := get(t, hc, "http://127.0.0.1:"+port+"/"); code != want {
				t.Errorf("page from %s: status %d, want %d (%s)", ip, code, want, body)
			} else if tt.ok && !strings.Contains(body, `<script type="module"`) {
				t.Errorf("page body: %s", body)
			}
			// The host check stays loopback-only for allowed clients too.
			wantBody := "allowed networks only"
			if tt.ok {
				wantBody = "unexpected host"
			}
			if code, body := get(t, hc, "http://"+ln.Addr().String()+"/"); code != http.StatusForbidden || !strings.Contains(body, wantBody) {
				t.Errorf("page under the host name %s: status %d (%s), want 403 %q", ip, code, body, wantBody)
			}

			ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
			defer cancel()
			if tt.ok {
				r.waitUp(true)
			}
			ws, resp, err := websocket.Dial(ctx, "ws://127.0.0.1:"+port+"/ws", &websocket.DialOptions{HTTPClient: hc})
			if !tt.ok {
				if err == nil {
					_ = ws.CloseNow()
					t.Fatal("WebSocket from outside AllowFrom was accepted")
				}
				if resp == nil || resp.StatusCode != http.StatusForbidden {
					t.Errorf("WebSocket from outside AllowFrom: %v, want 403", err)
				}
			} else {
				if err != nil {
					t.Fatalf("WebSocket from an allowed network: %v", err)
				}
				c := browserTab(t, edgetest.NewClient(t, ws))
				c.Send(helloFrame())
				m := c.Next()
				_ = ws.CloseNow()
				if m["type"] != "hello-ok" {
					t.Fatalf("want hello-ok, got %v", m)
				}
			}

			r.stop()
			if !strings.Contains(logs.String(), "allow_from=["+tt.allow.String()+"]") {
				t.Errorf("the startup log does not name the allowed networks:\n%s", logs.String())
			}
		})
	}
}

func get(t *testing.T, hc *http.Client, url string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, string(b)
}
