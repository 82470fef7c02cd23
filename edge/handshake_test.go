package edge

import (
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

func TestHelloOK(t *testing.T) {
	g := startEdge(t, nil)
	startFakeServices(t, g.nc)
	_, ok := g.connect("cli")
	if ok["protocol"] != float64(1) {
		t.Errorf("protocol = %v", ok["protocol"])
	}
	server := ok["server"].(map[string]any)
	if server["version"] != "test" || server["host"] != "testhost" || server["connId"] == "" {
		t.Errorf("server = %v", server)
	}
	features := ok["features"].(map[string]any)
	var methods []string
	for _, m := range features["methods"].([]any) {
		methods = append(methods, m.(string))
	}
	if want := []string{"health", "status", "system-presence", "system-event"}; !slices.Equal(methods, want) {
		t.Errorf("methods = %v, want %v", methods, want)
	}
	if ev := features["events"].([]any); len(ev) != 4 {
		t.Errorf("events = %v", ev)
	}
	snap := ok["snapshot"].(map[string]any)
	health := snap["health"].(map[string]any)
	for _, k := range []string{"ok", "ts", "durationMs", "web", "telegram", "heartbeatSeconds", "sessions", "services"} {
		if _, has := health[k]; !has {
			t.Errorf("snapshot.health lacks %q: %v", k, health)
		}
	}
	if health["ok"] != true {
		t.Errorf("snapshot health should come from the health service: %v", health)
	}
	if p := snap["presence"].([]any); len(p) != 1 {
		t.Errorf("snapshot presence = %v", p)
	}
	policy := ok["policy"].(map[string]any)
	if policy["maxPayload"] != float64(524288) || policy["maxBufferedBytes"] != float64(1572864) || policy["tickIntervalMs"] != float64(time.Hour.Milliseconds()) {
		t.Errorf("policy = %v", policy)
	}
}

func TestHelloOKWithoutServicesIsComplete(t *testing.T) {
	g := startEdge(t, nil)
	_, ok := g.connect("cli")
	health := ok["snapshot"].(map[string]any)["health"].(map[string]any)
	if health["ok"] != false || health["web"] == nil || health["services"] == nil {
		t.Errorf("fallback health = %v", health)
	}
}

func TestHandshakeRejections(t *testing.T) {
	g := startEdge(t, func(c *Config) { c.Token = "s3cret" })
	good := func() map[string]any { h := hello("cli"); h["auth"] = map[string]any{"token": "s3cret"}; return h }
	tests := []struct {
		name       string
		first      any
		wantReason string // hello-error reason; "" = no hello-error frame
		wantCode   websocket.StatusCode
		wantClose  string
	}{
		{"malformed JSON", `{"type":`, "", websocket.StatusPolicyViolation, "malformed JSON"},
		{"req first", `{"type":"req","id":"1","method":"health"}`, `invalid hello: type must be "hello"`, websocket.StatusPolicyViolation, "invalid hello"},
		{"null", `null`, "invalid hello: frame must be an object", websocket.StatusPolicyViolation, "invalid hello"},
		{"array", `[]`, "invalid hello: frame must be an object", websocket.StatusPolicyViolation, "invalid hello"},
		{"extra property", func() any { h := good(); h["x"] = 1; return h }(), `invalid hello: unexpected property "x"`, websocket.StatusPolicyViolation, "invalid hello"},
		{"empty name", func() any { h := good(); h["client"].(map[string]any)["name"] = ""; return h }(), "invalid hello: client.name must not be empty", websocket.StatusPolicyViolation, "invalid hello"},
		{"protocol 2..3", func() any { h := good(); h["minProtocol"] = 2; h["maxProtocol"] = 3; return h }(), "protocol mismatch", websocket.StatusProtocolError, "protocol mismatch"},
		{"wrong token", func() any { h := good(); h["auth"] = map[string]any{"token": "nope"}; return h }(), "unauthorized", websocket.StatusPolicyViolation, "unauthorized"},
		{"missing token", hello("cli"), "unauthorized", websocket.StatusPolicyViolation, "unauthorized"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dialRaw(t, g.url, nil)
			c.Send(tt.first)
			if tt.wantReason != "" {
				m := c.Next()
				if m["type"] != "hello-error" || m["reason"] != tt.wantReason {
					t.Fatalf("got %v, want hello-error %q", m, tt.wantReason)
				}
				if tt.wantReason == "protocol mismatch" && m["expectedProtocol"] != float64(1) {
					t.Errorf("expectedProtocol = %v", m["expectedProtocol"])
				}
			}
			code, reason := c.Closed()
			if code != tt.wantCode || reason != tt.wantClose {
				t.Errorf("closed %d %q, want %d %q", code, reason, tt.wantCode, tt.wantClose)
			}
		})
	}
	t.Run("right token", func(t *testing.T) {
		c := dialRaw(t, g.url, nil)
		c.Send(good())
		if m := c.Next(); m["type"] != "hello-ok" {
			t.Fatalf("got %v", m)
		}
	})
}

func TestHandshakeTimeout(t *testing.T) {
	g := startEdge(t, func(c *Config) { c.HandshakeTimeout = 50 * time.Millisecond })
	c := dialRaw(t, g.url, nil)
	code, reason := c.Closed()
	if code != websocket.StatusPolicyViolation || reason != "handshake timeout" {
		t.Errorf("closed %d %q", code, reason)
	}
}

func TestMaxPayload(t *testing.T) {
	g := startEdge(t, nil)
	startFakeServices(t, g.nc)

	t.Run("exactly the limit is processed", func(t *testing.T) {
		c, _ := g.connect("cli")
		frame := `{"type":"req","id":"big","method":"health","params":{}}`
		pad := 524288 - len(frame)
		// JSON allows whitespace anywhere between tokens: pad inside the object.
		c.Send(frame[:len(frame)-1] + strings.Repeat(" ", pad) + "}")
		res := c.NextRes("big")
		if res["ok"] != true {
			t.Fatalf("res = %v", res)
		}
	})
	t.Run("one byte more closes 1009", func(t *testing.T) {
		c, _ := g.connect("cli")
		frame := `{"type":"req","id":"big","method":"health","params":{}}`
		c.Send(frame[:len(frame)-1] + strings.Repeat(" ", 524288-len(frame)+1) + "}")
		code, reason := c.Closed()
		if code != websocket.StatusMessageTooBig || reason != "frame too large" {
			t.Errorf("closed %d %q", code, reason)
		}
	})
	t.Run("oversized hello closes 1009", func(t *testing.T) {
		c := dialRaw(t, g.url, nil)
		c.Send(strings.Repeat(" ", 524289))
		code, reason := c.Closed()
		if code != websocket.StatusMessageTooBig || reason != "frame too large" {
			t.Errorf("closed %d %q", code, reason)
		}
	})
}

func TestOriginCheck(t *testing.T) {
	g := startEdge(t, func(c *Config) { c.AllowedOrigins = []string{"https://chat.example.org"} })
	for _, tt := range []struct {
		origin string
		ok     bool
	}{
		{"http://127.0.0.1:18788", true},
		{"http://localhost:3000", true},
		{"http://[::1]:8080", true},
		{"https://chat.example.org", true},
		{"https://evil.example.com", false},
		{"http://" + g.addr[:strings.LastIndex(g.addr, ":")] + ".evil.com", false},
		{"null", false},
	} {
		t.Run(tt.origin, func(t *testing.T) {
			ctx := t.Context()
			ws, resp, err := websocket.Dial(ctx, g.url, &websocket.DialOptions{HTTPHeader: http.Header{"Origin": {tt.origin}}})
			if tt.ok {
				if err != nil {
					t.Fatalf("dial: %v", err)
				}
				ws.CloseNow()
				return
			}
			if err == nil {
				ws.CloseNow()
				t.Fatal("foreign origin accepted")
			}
			if resp == nil || resp.StatusCode != http.StatusForbidden {
				t.Fatalf("want 403, got %v %v", resp, err)
			}
		})
	}
}

func TestDNSRebindingSameHostOriginRefused(t *testing.T) {
	// The Host check alone gives such a request 421 (TestHostCheck); with the name allowed as
	// a host, the origin check still refuses it.
	g := startEdge(t, func(c *Config) { c.AllowedHosts = []string{"rebind.example"} })
	// A page on a rebinding domain sends Host and Origin of that domain; the library would
	// accept it as same-origin, the gateway must not.
	req := upgradeRequest(t, "http://"+g.addr+"/", "rebind.example:80")
	req.Header.Set("Origin", "http://rebind.example:80")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("status %d, want 403", resp.StatusCode)
	}
}

func TestPlainHTTP(t *testing.T) {
	g := startEdge(t, nil)
	resp, err := http.Get("http://" + g.addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(string(body), `{"ok":true`) {
		t.Errorf("/healthz: %d %s", resp.StatusCode, body)
	}
	resp, err = http.Get("http://" + g.addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUpgradeRequired {
		t.Errorf("GET /: %d, want 426", resp.StatusCode)
	}
}

// TestHostCheck: HTTP requests whose Host is not a loopback name, the bound address or an
// allowed host get 421, /healthz and upgrades included (DNS rebinding, SPEC §5.3).
func TestHostCheck(t *testing.T) {
	g := startEdge(t, func(c *Config) { c.AllowedHosts = []string{"gw.example"} })
	_, port, _ := strings.Cut(g.addr, ":")
	for _, tt := range []struct {
		host    string
		upgrade bool
		want    int
	}{
		{"evil.example:" + port, false, http.StatusMisdirectedRequest},
		{"evil.example", false, http.StatusMisdirectedRequest},
		{"10.1.2.3:" + port, false, http.StatusMisdirectedRequest},
		{"evil.example:" + port, true, http.StatusMisdirectedRequest},
		{"127.0.0.1:" + port, false, http.StatusOK},
		{"localhost:" + port, false, http.StatusOK},
		{"LOCALHOST", false, http.StatusOK},
		{"[::1]:" + port, false, http.StatusOK},
		{"gw.example:" + port, false, http.StatusOK},
		{"GW.example.", false, http.StatusOK},
	} {
		req := upgradeRequest(t, "http://"+g.addr+"/healthz", tt.host)
		if !tt.upgrade {
			req.Header.Del("Connection")
			req.Header.Del("Upgrade")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("Host %q (upgrade %v): %d, want %d", tt.host, tt.upgrade, resp.StatusCode, tt.want)
		}
	}
}

// upgradeRequest is a WebSocket upgrade request for url with the Host header host.
func upgradeRequest(t *testing.T, url, host string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	return req
}

// With a wildcard bind every address of the machine is the bind address; names still need
// gateway.allowedHosts.
func TestHostCheckWildcardBind(t *testing.T) {
	ln, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	s := &Server{cfg: Config{Listener: ln}}
	var local net.IP
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() {
			local = n.IP
			break
		}
	}
	if local == nil {
		t.Skip("no non-loopback interface address on this machine")
	}
	if !s.hostAllowed(net.JoinHostPort(local.String(), "18789")) {
		t.Errorf("Host %s refused with a wildcard bind", local)
	}
	for _, h := range []string{"192.0.2.77:18789", "0.0.0.0:18789", "evil.example:18789"} {
		if s.hostAllowed(h) {
			t.Errorf("Host %s accepted with a wildcard bind", h)
		}
	}
}
