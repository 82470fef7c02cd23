// Package edgetest is the one set of connection tests that every protocol server built on
// edge.Hub passes: the gateway's edge and the WebChat relay. Each test package supplies a
// Target (a running server and a way to make its source emit events or hold requests) and
// calls Run.
package edgetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/clawdis/clawdis/schemas"
)

// Options are what the suite asks of a target's server.
type Options struct {
	// MaxBufferedBytes is the per-connection outbound queue bound to configure.
	MaxBufferedBytes int64
	// Listener wraps the server's listener: accepted connections get a small kernel send
	// buffer, so a client that stops reading fills the server's queue quickly.
	Listener func(net.Listener) net.Listener
	// RequireToken asks for a server that requires a token in the hello (Target.Token).
	RequireToken bool
	// Log, when set, is the server's logger.
	Log *slog.Logger
	// MaxConnections, when set, bounds the connections at once.
	MaxConnections int
	// PingInterval and IdleTimeout, when set, are the keepalive ping interval and the idle
	// timeout.
	PingInterval, IdleTimeout time.Duration
}

// Target is a running protocol server under test.
type Target struct {
	// URL is the WebSocket URL clients dial.
	URL string
	// Hello is the first frame a client sends (with whatever auth the server needs).
	Hello map[string]any
	// Token is the token the server requires in hello auth.token (Hello carries it); empty
	// when it requires none.
	Token string
	// Emit makes the server send n agent events of run runID, each with a text of size
	// bytes, numbered from seq0, to every connection (they are not droppable).
	Emit func(t testing.TB, runID string, seq0, n, size int)
	// Hold makes every health request reach the server's source and wait there until
	// release is called; arrived gets a value for each request that arrived.
	Hold func(t testing.TB) (arrived <-chan struct{}, release func())
}

// Run runs the shared connection tests; start builds a fresh target for each.
func Run(t *testing.T, start func(t *testing.T, o Options) Target) {
	t.Run("SlowConsumerClosed", func(t *testing.T) { testSlowConsumer(t, start) })
	t.Run("CloseCodes", func(t *testing.T) { testCloseCodes(t, start) })
	t.Run("SeqCounts", func(t *testing.T) { testSeqCounts(t, start) })
	t.Run("InFlightLimit", func(t *testing.T) { testInFlight(t, start) })
	t.Run("PreAuthLimits", func(t *testing.T) { testPreAuthLimits(t, start) })
	t.Run("AuthThrottle", func(t *testing.T) { testAuthThrottle(t, start) })
	t.Run("MaxConnections", func(t *testing.T) { testMaxConnections(t, start) })
	t.Run("IdleTimeout", func(t *testing.T) { testIdleTimeout(t, start) })
	t.Run("ErrorTexts", func(t *testing.T) { testErrorTexts(t, start) })
}

// SmallSendBuffer wraps ln so that accepted TCP connections get a 4 KiB send buffer.
func SmallSendBuffer(ln net.Listener) net.Listener { return smallSendBuf{ln} }

type smallSendBuf struct{ net.Listener }

func (l smallSendBuf) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok && err == nil {
		_ = tc.SetWriteBuffer(4096)
	}
	return c, err
}

// loadSchemas loads the protocol schemas once for every client of the test binary (clients
// may be dialled from several goroutines at once).
var loadSchemas = func() func(testing.TB) *schemas.Set {
	load := sync.OnceValues(schemas.Load)
	return func(t testing.TB) *schemas.Set {
		set, err := load()
		if err != nil {
			t.Fatal(err)
		}
		return set
	}
}()

// Client is a raw protocol client that validates every frame the server sends against the
// protocol's schemas, and with Check when it is set. The edge's and the relay's own tests
// use it too.
type Client struct {
	T  testing.TB
	WS *websocket.Conn
	// Check, when set, also looks at every frame read (the relay's tests check that the
	// gateway token never reaches a browser).
	Check func(frame []byte)
	set   *schemas.Set
}

// Dial connects to url with the extra request headers hdr (nil: none); the connection is
// closed when the test ends.
func Dial(t testing.TB, url string, hdr http.Header) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: hdr})
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() { _ = ws.CloseNow() })
	return NewClient(t, ws)
}

// NewClient is a Client on a connection the test dialled itself.
func NewClient(t testing.TB, ws *websocket.Conn) *Client {
	ws.SetReadLimit(8 << 20)
	return &Client{T: t, WS: ws, set: loadSchemas(t)}
}

// connect dials and completes the handshake.
func connect(t testing.TB, tg Target) *Client {
	t.Helper()
	c := Dial(t, tg.URL, nil)
	c.Send(tg.Hello)
	if m := c.Next(); m["type"] != "hello-ok" {
		t.Fatalf("want hello-ok, got %v", m)
	}
	return c
}

// Send writes v: a string or []byte as it is, anything else encoded as JSON.
func (c *Client) Send(v any) {
	c.T.Helper()
	var b []byte
	switch x := v.(type) {
	case string:
		b = []byte(x)
	case []byte:
		b = x
	default:
		var err error
		if b, err = json.Marshal(v); err != nil {
			c.T.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.WS.Write(ctx, websocket.MessageText, b); err != nil {
		c.T.Fatalf("write: %v", err)
	}
}

// Req sends a req frame (params omitted when nil).
func (c *Client) Req(id, method string, params any) {
	c.T.Helper()
	f := map[string]any{"type": "req", "id": id, "method": method}
	if params != nil {
		f["params"] = params
	}
	c.Send(f)
}

// Read reads one frame, validates it and returns it decoded; the error is the
// connection's when it ends.
func (c *Client) Read() (map[string]any, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	_, b, err := c.WS.Read(ctx)
	if err != nil {
		return nil, err
	}
	if err := c.set.ServerFrame(b); err != nil {
		c.T.Errorf("server frame fails schema: %v\n%.300s", err, b)
	}
	if c.Check != nil {
		c.Check(b)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		c.T.Fatalf("server sent non-JSON: %.300s", b)
	}
	return m, nil
}

// Next reads one frame; the connection must not end.
func (c *Client) Next() map[string]any {
	c.T.Helper()
	m, err := c.Read()
	if err != nil {
		c.T.Fatalf("read: %v", err)
	}
	return m
}

// Closed reads until the connection closes and returns the close status and reason.
func (c *Client) Closed() (websocket.StatusCode, string) {
	c.T.Helper()
	for {
		if _, err := c.Read(); err != nil {
			var ce websocket.CloseError
			if errors.As(err, &ce) {
				return ce.Code, ce.Reason
			}
			c.T.Fatalf("connection ended without a close frame: %v", err)
		}
	}
}

// NextRes skips frames until the res with id.
func (c *Client) NextRes(id string) map[string]any {
	c.T.Helper()
	for {
		if m := c.Next(); m["type"] == "res" && m["id"] == id {
			return m
		}
	}
}

// NextEvent skips frames until an event named name.
func (c *Client) NextEvent(name string) map[string]any {
	c.T.Helper()
	for {
		if m := c.Next(); m["type"] == "event" && m["event"] == name {
			return m
		}
	}
}

// testSlowConsumer: a client that stops reading while non-droppable events pile up is
// closed 1008 "slow consumer"; another client gets every event and keeps working.
func testSlowConsumer(t *testing.T, start func(*testing.T, Options) Target) {
	tg := start(t, Options{MaxBufferedBytes: 64 << 10, Listener: SmallSendBuffer})
	slow := connect(t, tg)
	fast := connect(t, tg)
	const n, size = 200, 8 << 10 // 1.6 MB: far beyond the slow client's queue and socket buffers
	for i := 1; i <= n; i++ {
		tg.Emit(t, "slow-run", i, 1, size)
		m := fast.Next()
		for m["type"] != "event" || m["event"] != "agent" {
			m = fast.Next()
		}
		if p, _ := m["payload"].(map[string]any); p["seq"] != float64(i) {
			t.Fatalf("fast client: agent event %d carries run seq %v", i, p["seq"])
		}
	}
	code, reason := slow.Closed()
	if code != websocket.StatusPolicyViolation || reason != "slow consumer" {
		t.Fatalf("slow client closed with %d %q, want 1008 slow consumer", code, reason)
	}
	fast.Send(`{"type":"req","id":"still","method":"health"}`)
	if res := fast.NextRes("still"); res["ok"] != true {
		t.Errorf("fast client after the slow one was closed: %v", res)
	}
}

// testCloseCodes: the close codes and reasons of SPEC §5.2 and §5.3.
func testCloseCodes(t *testing.T, start func(*testing.T, Options) Target) {
	tg := start(t, Options{})
	for _, tt := range []struct {
		name   string
		hello  bool // complete the handshake first
		frame  string
		code   websocket.StatusCode
		reason string
	}{
		{"malformed first frame", false, `{"type":`, websocket.StatusPolicyViolation, "malformed JSON"},
		{"invalid hello", false, `{"type":"req","id":"1","method":"health"}`, websocket.StatusPolicyViolation, "invalid hello"},
		{"protocol mismatch", false, `{"type":"hello","minProtocol":2,"maxProtocol":3,"client":{"name":"x","version":"1","platform":"p","mode":"cli"}}`,
			websocket.StatusProtocolError, "protocol mismatch"},
		{"malformed after hello", true, `{"nope"`, websocket.StatusPolicyViolation, "malformed JSON"},
		{"frame too large", true, `{"type":"req","id":"big","method":"health","params":"` + strings.Repeat("x", 600<<10) + `"}`,
			websocket.StatusMessageTooBig, "frame too large"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var c *Client
			if tt.hello {
				c = connect(t, tg)
			} else {
				c = Dial(t, tg.URL, nil)
			}
			c.Send(tt.frame)
			if code, reason := c.Closed(); code != tt.code || reason != tt.reason {
				t.Fatalf("closed %d %q, want %d %q", code, reason, tt.code, tt.reason)
			}
		})
	}
	// An invalid req keeps the connection open and gets INVALID_REQUEST under its id.
	c := connect(t, tg)
	c.Send(`{"type":"req","id":"bad","method":"health","extra":1}`)
	res := c.NextRes("bad")
	if e, _ := res["error"].(map[string]any); res["ok"] != false || e["code"] != "INVALID_REQUEST" {
		t.Fatalf("invalid frame: %v", res)
	}
	c.Send(`{"type":"req","id":"ok","method":"health"}`)
	if res := c.NextRes("ok"); res["ok"] != true {
		t.Fatalf("after an invalid frame: %v", res)
	}
}

// testSeqCounts: events reach every connection numbered 1, 2, 3… per connection, and a
// connection that joins later starts at 1.
func testSeqCounts(t *testing.T, start func(*testing.T, Options) Target) {
	tg := start(t, Options{})
	a := connect(t, tg)
	tg.Emit(t, "seq-run", 1, 3, 10)
	b := connect(t, tg)
	tg.Emit(t, "seq-run", 4, 2, 10)
	expect := func(name string, c *Client, n int) {
		want := float64(1)
		for got := 0; got < n; {
			m := c.Next()
			if m["type"] != "event" {
				continue
			}
			if m["event"] == "agent" {
				got++
			}
			if m["seq"] != want {
				t.Fatalf("client %s: event %v has seq %v, want %v", name, m["event"], m["seq"], want)
			}
			want++
		}
	}
	expect("a", a, 5)
	expect("b", b, 2)
}

// testInFlight: at most 32 requests in flight per connection; the 33rd is answered
// UNAVAILABLE retryable with retryAfterMs, and all are answered once released.
func testInFlight(t *testing.T, start func(*testing.T, Options) Target) {
	tg := start(t, Options{})
	arrived, release := tg.Hold(t)
	c := connect(t, tg)
	for i := range 32 {
		c.Send(fmt.Sprintf(`{"type":"req","id":"slow-%d","method":"health"}`, i))
	}
	for range 32 {
		select {
		case <-arrived: // all 32 are in flight at the source
		case <-time.After(15 * time.Second):
			t.Fatal("the held requests did not all arrive")
		}
	}
	c.Send(`{"type":"req","id":"33rd","method":"health"}`)
	res := c.NextRes("33rd")
	e, _ := res["error"].(map[string]any)
	if res["ok"] != false || e["code"] != "UNAVAILABLE" || e["message"] != "too many requests in flight" ||
		e["retryable"] != true || e["retryAfterMs"] == nil {
		t.Fatalf("33rd: %v", res)
	}
	release()
	seen := map[string]bool{}
	for len(seen) < 32 {
		if m := c.Next(); m["type"] == "res" {
			if m["ok"] != true {
				t.Fatalf("held request answered %v", m)
			}
			seen[m["id"].(string)] = true
		}
	}
}

// withField returns a copy of hello with key set to raw JSON.
func withField(t testing.TB, hello map[string]any, key, raw string) string {
	t.Helper()
	m := make(map[string]any, len(hello)+1)
	for k, v := range hello {
		m[k] = v
	}
	m[key] = json.RawMessage(raw)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// testPreAuthLimits: SPEC §5.2's limits before authentication. Until hello-ok a frame over
// 64 KiB closes 1009 (after it the larger maxPayload holds); a number literal over 64
// characters makes a hello invalid, and a req INVALID_REQUEST, by the linear scan that runs
// before schema validation (its wording proves which path rejected it).
func testPreAuthLimits(t *testing.T, start func(*testing.T, Options) Target) {
	tg := start(t, Options{})
	big := strconv.Quote(strings.Repeat("u", 65<<10))
	t.Run("hello over 64 KiB", func(t *testing.T) {
		c := Dial(t, tg.URL, nil)
		c.Send(withField(t, tg.Hello, "userAgent", big))
		if code, reason := c.Closed(); code != websocket.StatusMessageTooBig || reason != "frame too large" {
			t.Fatalf("closed %d %q, want 1009 frame too large", code, reason)
		}
	})
	t.Run("60000-digit number in hello", func(t *testing.T) {
		c := Dial(t, tg.URL, nil)
		c.Send(withField(t, tg.Hello, "minProtocol", "1"+strings.Repeat("0", 59999)))
		m := c.Next()
		if m["type"] != "hello-error" || m["reason"] != "invalid hello: number literal longer than 64 characters" {
			t.Fatalf("want hello-error from the number scan, got %.300v", m)
		}
		if code, reason := c.Closed(); code != websocket.StatusPolicyViolation || reason != "invalid hello" {
			t.Fatalf("closed %d %q, want 1008 invalid hello", code, reason)
		}
	})
	t.Run("64-digit number in hello passes the scan", func(t *testing.T) {
		c := Dial(t, tg.URL, nil)
		c.Send(withField(t, tg.Hello, "minProtocol", "0."+strings.Repeat("0", 61)+"1")) // 64 characters
		m := c.Next()
		if m["type"] != "hello-error" || !strings.HasPrefix(m["reason"].(string), "invalid hello: ") ||
			strings.Contains(m["reason"].(string), "number literal") {
			t.Fatalf("want the schema's hello-error, got %.300v", m)
		}
	})
	t.Run("after hello", func(t *testing.T) {
		c := connect(t, tg)
		c.Send(`{"type":"req","id":"n","method":"health","params":{"x":[` + strings.Repeat("1", 65) + `]}}`)
		res := c.NextRes("n")
		e, _ := res["error"].(map[string]any)
		if res["ok"] != false || e["code"] != "INVALID_REQUEST" ||
			e["message"] != "invalid request frame: number literal longer than 64 characters" {
			t.Fatalf("long number after hello: %v", res)
		}
		// After hello-ok the frame limit is maxPayload again.
		c.Send(`{"type":"req","id":"big","method":"health","params":{"pad":` + big + `}}`)
		if res := c.NextRes("big"); res["ok"] != false {
			t.Fatalf("100 KB req after hello: %.300v", res)
		}
		c.Send(`{"type":"req","id":"ok","method":"health"}`)
		if res := c.NextRes("ok"); res["ok"] != true {
			t.Fatalf("after the rejected frames: %v", res)
		}
	})
}

// logRecorder is a slog handler that keeps every record's level and message.
type logRecorder struct {
	mu   sync.Mutex
	recs []string
}

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *logRecorder) WithGroup(string) slog.Handler            { return r }
func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	line := rec.Level.String() + " " + rec.Message
	rec.Attrs(func(a slog.Attr) bool { line += " " + a.String(); return true })
	r.mu.Lock()
	r.recs = append(r.recs, line)
	r.mu.Unlock()
	return nil
}

// atLeast returns the records at level or above.
func (r *logRecorder) atLeast(level slog.Level) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, l := range r.recs {
		for _, lv := range []slog.Level{slog.LevelWarn, slog.LevelError} {
			if lv >= level && strings.HasPrefix(l, lv.String()+" ") {
				out = append(out, l)
			}
		}
	}
	return out
}

// testAuthThrottle: SPEC §5.2's failed-auth throttle. Of 30 hellos with a wrong token from
// loopback, the first 10 get "unauthorized" and the rest "too many failed auth attempts";
// during the lockout even the right token is refused (it is not compared), and the log gets
// one warning, when the lockout starts.
func testAuthThrottle(t *testing.T, start func(*testing.T, Options) Target) {
	rec := &logRecorder{}
	tg := start(t, Options{RequireToken: true, Log: slog.New(rec)})
	if tg.Token == "" {
		t.Fatal("target requires no token")
	}
	attempt := func(token string) (map[string]any, websocket.StatusCode, string) {
		c := Dial(t, tg.URL, nil)
		h := make(map[string]any, len(tg.Hello))
		for k, v := range tg.Hello {
			h[k] = v
		}
		h["auth"] = map[string]any{"token": token}
		c.Send(h)
		m := c.Next()
		code, reason := c.Closed()
		return m, code, reason
	}
	for i := 1; i <= 30; i++ {
		m, code, reason := attempt("wrong-" + strconv.Itoa(i))
		want, wantReason := "unauthorized", "unauthorized"
		if i > 10 {
			want, wantReason = "too many failed auth attempts; retry in 60 s", "too many failed auth attempts"
		}
		if m["type"] != "hello-error" || m["reason"] != want || code != websocket.StatusPolicyViolation || reason != wantReason {
			t.Fatalf("attempt %d: %v, closed %d %q; want hello-error %q, 1008 %q", i, m, code, reason, want, wantReason)
		}
	}
	if m, _, _ := attempt(tg.Token); m["type"] != "hello-error" {
		t.Fatalf("the right token during the lockout: %v", m)
	}
	warns := rec.atLeast(slog.LevelWarn)
	if len(warns) != 1 || !strings.Contains(warns[0], "address=127.0.0.1") || !strings.Contains(warns[0], "failures=10") {
		t.Fatalf("want one warning naming the address and the failures, got %q", warns)
	}
}

// testMaxConnections: upgrades beyond the bound get HTTP 503 before the upgrade, and a
// connection that closes gives its slot back.
func testMaxConnections(t *testing.T, start func(*testing.T, Options) Target) {
	tg := start(t, Options{MaxConnections: 2})
	a := connect(t, tg)
	connect(t, tg)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	refused := func() bool {
		ws, resp, err := websocket.Dial(ctx, tg.URL, nil)
		if err == nil {
			_ = ws.CloseNow()
			return false
		}
		if resp == nil || resp.StatusCode != 503 {
			t.Fatalf("third connection: %v (response %v), want HTTP 503", err, resp)
		}
		return true
	}
	if !refused() {
		t.Fatal("a third connection was upgraded")
	}
	if err := a.WS.Close(websocket.StatusNormalClosure, ""); err != nil {
		t.Fatal(err)
	}
	// The server frees the slot when it has finished with the connection, which a client
	// cannot observe: retry briefly.
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for refused() {
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatal("the closed connection's slot never came back")
		}
	}
}

// testIdleTimeout: the server pings every interval; a client that answers them stays
// connected though it sends nothing, and one that sends nothing and answers nothing (it
// does not read) is closed 1001 "idle timeout".
func testIdleTimeout(t *testing.T, start func(*testing.T, Options) Target) {
	const interval, idle = 50 * time.Millisecond, 400 * time.Millisecond
	tg := start(t, Options{PingInterval: interval, IdleTimeout: idle})
	dead := connect(t, tg) // it reads nothing more until it is closed

	pings := make(chan struct{}, 256)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, tg.URL, &websocket.DialOptions{
		OnPingReceived: func(context.Context, []byte) bool {
			select {
			case pings <- struct{}{}:
			default:
			}
			return true
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ws.CloseNow() })
	live := NewClient(t, ws)
	live.Send(tg.Hello)
	if m := live.Next(); m["type"] != "hello-ok" {
		t.Fatalf("want hello-ok, got %v", m)
	}
	frames := make(chan map[string]any, 1024)
	go func() { // the live client always reads, and so answers pings
		defer close(frames)
		for {
			_, b, err := ws.Read(ctx)
			if err != nil {
				return
			}
			var m map[string]any
			if json.Unmarshal(b, &m) == nil {
				frames <- m
			}
		}
	}()
	// One ping per keepalive round: 20 rounds are 950 ms at least, far past the idle
	// timeout of the client that answers none.
	for range 20 {
		select {
		case <-pings:
		case <-ctx.Done():
			t.Fatal("the server does not ping")
		}
	}
	if code, reason := dead.Closed(); code != websocket.StatusGoingAway || reason != "idle timeout" {
		t.Fatalf("silent client closed %d %q, want 1001 idle timeout", code, reason)
	}
	live.Send(`{"type":"req","id":"alive","method":"health"}`)
	for m := range frames {
		if m["type"] == "res" && m["id"] == "alive" {
			if m["ok"] != true {
				t.Fatalf("live client: %v", m)
			}
			return
		}
	}
	t.Fatal("the client that answered pings was closed")
}

// CheckErrorText fails t when an error text repeats more than 200 characters of client
// input (given as runs of one letter longer than that) or names Go or library internals
// (SPEC §5.2).
func CheckErrorText(t testing.TB, what, text string) {
	t.Helper()
	for _, letter := range "xyzmq" {
		if strings.Contains(text, strings.Repeat(string(letter), 201)) {
			t.Errorf("%s: the error text repeats more than 200 characters of input: %.300q", what, text)
		}
	}
	for _, internal := range []string{"json:", "Go struct", "Go value", "interface {}", "map[", "nats:", "context deadline", "runtime error", "*schemas.", "jsonschema"} {
		if strings.Contains(text, internal) {
			t.Errorf("%s: the error text names internals (%q): %.300q", what, internal, text)
		}
	}
}

// testErrorTexts: hellos and requests full of long client strings get hello-errors and
// INVALID_REQUEST messages that repeat at most 200 characters of them and name no internals.
func testErrorTexts(t *testing.T, start func(*testing.T, Options) Target) {
	tg := start(t, Options{})
	long := func(letter string) string { return strings.Repeat(letter, 5000) }
	for i, raw := range []string{
		withField(t, tg.Hello, long("y"), `1`),
		withField(t, tg.Hello, "minProtocol", strconv.Quote(long("z"))),
		withField(t, tg.Hello, "client", `{"name":"`+long("x")+`","`+long("q")+`":1}`),
		withField(t, tg.Hello, "caps", `[`+strconv.Quote(long("x"))+`, 1]`),
		`{"type":"hello","` + long("y") + `":"` + long("z") + `","` + long("q") + `":1,"m":2,"x":3}`,
	} {
		c := Dial(t, tg.URL, nil)
		c.Send(raw)
		m := c.Next()
		if m["type"] != "hello-error" {
			t.Fatalf("hello %d: %.300v, want hello-error", i, m)
		}
		CheckErrorText(t, "hello "+strconv.Itoa(i), m["reason"].(string))
	}
	c := connect(t, tg)
	for i, raw := range []string{
		`{"type":"req","id":"a","method":"` + long("m") + `"}`,
		`{"type":"req","id":"b","method":"health","` + long("y") + `":1}`,
		`{"type":"req","id":"c","method":"send","params":{"to":"` + long("x") + `","message":"` + long("z") + `","` + long("q") + `":1}}`,
		`{"type":"req","id":"d","method":"send","params":{"to":1,"message":["` + long("z") + `"]}}`,
		`{"type":"req","id":"e","method":"system-event","params":{"text":1,"` + long("y") + `":"` + long("z") + `"}}`,
		`{"type":"req","id":"f","method":"health","params":{"` + long("q") + `":"` + long("x") + `"}}`,
		`{"type":"req","id":"g","method":["` + long("m") + `"]}`,
	} {
		id := string(rune('a' + i))
		c.Send(raw)
		res := c.NextRes(id)
		e, _ := res["error"].(map[string]any)
		if res["ok"] != false || e == nil {
			t.Fatalf("req %s: %.300v, want an error", id, res)
		}
		CheckErrorText(t, "req "+id, e["message"].(string))
	}
}
