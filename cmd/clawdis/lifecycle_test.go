package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/clawdis/clawdis/edge/client"
	"github.com/clawdis/clawdis/schemas"
)

// childEnv makes the test binary behave as the clawdis binary (see TestMain), so the
// lifecycle tests run the real process: signals, exit codes, locks and ports.
const childEnv = "CLAWDIS_TEST_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		os.Exit(execute(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// procTimeout bounds every wait on a child process (race-instrumented builds are slow).
const procTimeout = 30 * time.Second

// gatewayProc is a `clawdis gateway` child process with its JSON log lines parsed as they come.
type gatewayProc struct {
	t       *testing.T
	cmd     *exec.Cmd
	port    int
	started time.Time
	logs    *logLines
	stderr  *syncBuf
	done    chan struct{} // closed once the process has exited and its output is read
	code    int           // exit code; valid after done
}

// startGateway runs the gateway daemon on 127.0.0.1:port with stateDir and JSON logs.
func startGateway(t *testing.T, home, stateDir string, port int, extra ...string) *gatewayProc {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{"gateway", "--state-dir", stateDir, "--port", strconv.Itoa(port),
		"--log-format", "json", "--no-providers", "--no-webchat"}, extra...)
	return startProc(t, home, port, exe, args...)
}

// startProc runs this test binary as clawdis with args; port is the gateway port it serves
// (0 for other commands).
func startProc(t *testing.T, home string, port int, exe string, args ...string) *gatewayProc {
	t.Helper()
	cmd := exec.Command(exe, args...)
	cmd.Env = append(cleanEnv(), childEnv+"=1", "HOME="+home)
	if os.Getenv("GORACE") == "" {
		// A race-instrumented child otherwise sleeps 1s at exit.
		cmd.Env = append(cmd.Env, "GORACE=atexit_sleep_ms=0")
	}
	p := &gatewayProc{t: t, cmd: cmd, port: port, logs: newLogLines(), stderr: &syncBuf{}, done: make(chan struct{})}
	cmd.Stdout = p.logs
	cmd.Stderr = p.stderr
	p.started = time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %v: %v", args, err)
	}
	go func() {
		_ = cmd.Wait()
		p.code = cmd.ProcessState.ExitCode()
		p.logs.close()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
			return
		default:
		}
		_ = cmd.Process.Kill()
		<-p.done
	})
	return p
}

// cleanEnv is the environment without anything that would change the child's configuration.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "CLAWDIS_") || strings.HasPrefix(kv, "HOME=") || strings.HasPrefix(kv, "TELEGRAM_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

func (p *gatewayProc) pid() int { return p.cmd.Process.Pid }

func (p *gatewayProc) url() string { return "ws://127.0.0.1:" + strconv.Itoa(p.port) }

// waitLog waits for the log record with this msg and returns it; it fails the test when the
// process exits first or nothing comes within procTimeout.
func (p *gatewayProc) waitLog(msg string) map[string]any {
	p.t.Helper()
	rec, err := p.logs.wait(func(r map[string]any) bool { return r["msg"] == msg }, procTimeout)
	if err != nil {
		p.t.Fatalf("waiting for log %q: %v\nstdout:\n%s\nstderr:\n%s", msg, err, p.logs.text(), p.stderr.String())
	}
	return rec
}

// waitListening waits for the "gateway listening" line and checks its URL.
func (p *gatewayProc) waitListening() {
	p.t.Helper()
	rec := p.waitLog("gateway listening")
	if rec["url"] != p.url() {
		p.t.Fatalf("listening on %v, want %s", rec["url"], p.url())
	}
	p.t.Logf("pid %d: process start to listening %s (startup_ms %v)", p.pid(), time.Since(p.started).Round(time.Millisecond), rec["startup_ms"])
}

// waitExit waits for the process to exit and returns its exit code.
func (p *gatewayProc) waitExit() int {
	p.t.Helper()
	select {
	case <-p.done:
		return p.code
	case <-time.After(procTimeout):
		p.t.Fatalf("pid %d did not exit\nstdout:\n%s\nstderr:\n%s", p.pid(), p.logs.text(), p.stderr.String())
		return -1
	}
}

// logLines is the child's stdout: it keeps the text and parses each JSON line.
type logLines struct {
	mu      sync.Mutex
	partial []byte
	all     bytes.Buffer
	records []map[string]any
	changed chan struct{} // closed and replaced on every new record and at close
	closed  bool
}

func newLogLines() *logLines { return &logLines{changed: make(chan struct{})} }

func (l *logLines) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.all.Write(b)
	l.partial = append(l.partial, b...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		var rec map[string]any
		if json.Unmarshal(l.partial[:i], &rec) != nil {
			rec = map[string]any{"unparsed": string(l.partial[:i])}
		}
		l.records = append(l.records, rec)
		l.partial = l.partial[i+1:]
		close(l.changed)
		l.changed = make(chan struct{})
	}
	return len(b), nil
}

func (l *logLines) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	close(l.changed)
	l.changed = make(chan struct{})
}

func (l *logLines) text() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.all.String()
}

// wait returns the first record matching match, waiting for it until the output ends or the
// timeout passes.
func (l *logLines) wait(match func(map[string]any) bool, timeout time.Duration) (map[string]any, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	seen := 0
	for {
		l.mu.Lock()
		for ; seen < len(l.records); seen++ {
			if match(l.records[seen]) {
				rec := l.records[seen]
				l.mu.Unlock()
				return rec, nil
			}
		}
		changed, closed := l.changed, l.closed
		l.mu.Unlock()
		if closed {
			return nil, errors.New("the process exited")
		}
		select {
		case <-changed:
		case <-deadline.C:
			return nil, fmt.Errorf("nothing after %s", timeout)
		}
	}
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago (the daemon treats
// --port 0 as "the default port", so tests cannot ask it for an ephemeral one).
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

var (
	frameSchemasOnce sync.Once
	frameSchemas     *schemas.Set
	frameSchemasErr  error
)

// validatingHook returns a FrameHook that checks every frame against the protocol schemas.
// Clients using it are closed in t.Cleanup, so the hook never runs after the test.
func validatingHook(t testing.TB) func([]byte) {
	frameSchemasOnce.Do(func() { frameSchemas, frameSchemasErr = schemas.Load() })
	if frameSchemasErr != nil {
		t.Fatalf("load schemas: %v", frameSchemasErr)
	}
	return func(raw []byte) {
		if err := frameSchemas.ServerFrame(raw); err != nil {
			t.Errorf("server frame fails schema: %v\n%s", err, raw)
		}
	}
}

// dialClient connects a schema-validating client; it is closed in t.Cleanup.
func dialClient(t testing.TB, opts client.Options) *client.Client {
	t.Helper()
	opts.FrameHook = validatingHook(t)
	opts.DialTimeout = procTimeout
	c, err := client.Dial(context.Background(), opts)
	if err != nil {
		t.Fatalf("dial %s: %v", opts.URL, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// stopGateway sends SIGTERM and expects a clean exit.
func stopGateway(t *testing.T, p *gatewayProc) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	if code := p.waitExit(); code != 0 {
		t.Errorf("gateway exited %d after SIGTERM, want 0\nstderr:\n%s", code, p.stderr.String())
	}
}

func requireLinux(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("process lifecycle tests run on Linux (signals, flock, /proc for --force)")
	}
}

// TestSecondGatewayRefused: a second daemon fails at once, with one line naming the holder,
// whether the port or the state dir is taken; the first one keeps serving.
func TestSecondGatewayRefused(t *testing.T) {
	requireLinux(t)
	home, stateA := t.TempDir(), t.TempDir()
	a := startGateway(t, home, stateA, freePort(t))
	a.waitListening()
	for _, tt := range []struct {
		name  string
		state string
		port  int
		want  string
	}{
		{"same port", t.TempDir(), a.port, "clawdis: another gateway instance is already listening on " + a.url()},
		{"same state dir", stateA, freePort(t), fmt.Sprintf("clawdis: state dir %s is locked by pid %d", stateA, a.pid())},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := startGateway(t, home, tt.state, tt.port)
			if code := b.waitExit(); code != 1 {
				t.Errorf("second gateway exited %d, want 1", code)
			}
			if got := strings.TrimSpace(b.stderr.String()); got != tt.want {
				t.Errorf("stderr = %q, want %q", got, tt.want)
			}
			if _, err := b.logs.wait(func(r map[string]any) bool { return r["msg"] == "gateway listening" }, 0); err == nil {
				t.Error("the second gateway logged that it listens")
			}
			if rec, err := b.logs.wait(func(r map[string]any) bool { return r["msg"] == "gateway failed" }, 0); err != nil ||
				rec["level"] != "ERROR" {
				t.Errorf("no ERROR record \"gateway failed\" in the log:\n%s", b.logs.text())
			}
		})
	}
	// The first gateway is untouched.
	c := dialClient(t, client.Options{URL: a.url()})
	if _, err := c.Request(context.Background(), schemas.MethodHealth, nil); err != nil {
		t.Errorf("health on the first gateway: %v", err)
	}
	stopGateway(t, a)
}

type clientRecord struct {
	name   string
	events chan string // "event <name>" and finally "disconnect"
	cause  chan error
}

// TestSIGTERMShutdown: connected clients get the shutdown event, then a 1012 close; the
// process exits 0 and the port is free at once.
func TestSIGTERMShutdown(t *testing.T) {
	requireLinux(t)
	p := startGateway(t, t.TempDir(), t.TempDir(), freePort(t), "--token", "tok")
	p.waitListening()
	var recs []*clientRecord
	for _, mode := range []string{"cli", "node"} {
		r := &clientRecord{name: mode, events: make(chan string, 256), cause: make(chan error, 1)}
		dialClient(t, client.Options{
			URL: p.url(), Token: "tok",
			Client:       schemas.ClientInfo{Name: "lifecycle-" + mode, Mode: mode, InstanceID: "inst-" + mode},
			OnEvent:      func(ev schemas.Event) { r.events <- "event " + ev.Event },
			OnDisconnect: func(err error) { r.cause <- err; r.events <- "disconnect" },
		})
		recs = append(recs, r)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		sawShutdown := false
	read:
		for {
			select {
			case e := <-r.events:
				if e == "event shutdown" {
					sawShutdown = true
				}
				if e == "disconnect" {
					break read
				}
			case <-time.After(procTimeout):
				t.Fatalf("%s client: no disconnect after SIGTERM", r.name)
			}
		}
		if !sawShutdown {
			t.Errorf("%s client: disconnected without a shutdown event first", r.name)
		}
		var ce *client.CloseError
		if cause := <-r.cause; !errors.As(cause, &ce) || ce.Code != int(websocket.StatusServiceRestart) || ce.Reason != "service restart" {
			t.Errorf("%s client: disconnect cause %v, want close 1012 service restart", r.name, cause)
		}
	}
	if code := p.waitExit(); code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0\nstderr:\n%s", code, p.stderr.String())
	}
	p.waitLog("signal received; shutting down")
	p.waitLog("gateway stopped")

	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p.port))
	if err != nil {
		t.Fatalf("port not free right after exit: %v", err)
	}
	ln.Close()
}

// TestForceTakesOverPort: --force stops the gateway on the port (it exits 0 on the SIGTERM)
// and the new one serves.
func TestForceTakesOverPort(t *testing.T) {
	requireLinux(t)
	home, port := t.TempDir(), freePort(t)
	a := startGateway(t, home, t.TempDir(), port)
	a.waitListening()
	b := startGateway(t, home, t.TempDir(), port, "--force")
	if code := a.waitExit(); code != 0 {
		t.Errorf("gateway A exited %d, want 0 (SIGTERM)\nstderr:\n%s", code, a.stderr.String())
	}
	b.waitListening()
	prefix := fmt.Sprintf("force: stopped pid %d ", a.pid())
	if _, err := b.logs.wait(func(r map[string]any) bool {
		msg, _ := r["msg"].(string)
		return strings.HasPrefix(msg, prefix)
	}, 0); err != nil {
		t.Errorf("B's log lacks %q:\n%s", prefix, b.logs.text())
	}
	if code, body := getHealthz(t, port); code != http.StatusOK || !strings.Contains(body, `"ok":true`) {
		t.Errorf("B /healthz: %d %s", code, body)
	}
	stopGateway(t, b)
}

// TestHTTPAndOrigin: /healthz answers 200, an upgrade from a foreign origin gets 403, one
// from a loopback origin is accepted.
func TestHTTPAndOrigin(t *testing.T) {
	requireLinux(t)
	p := startGateway(t, t.TempDir(), t.TempDir(), freePort(t))
	p.waitListening()
	code, body := getHealthz(t, p.port)
	var hz struct {
		OK          bool  `json:"ok"`
		Connections *int  `json:"connections"`
		UptimeMs    int64 `json:"uptimeMs"`
	}
	if err := json.Unmarshal([]byte(body), &hz); code != http.StatusOK || err != nil || !hz.OK || hz.Connections == nil {
		t.Errorf("/healthz: %d %s", code, body)
	}

	ctx, cancel := context.WithTimeout(context.Background(), procTimeout)
	defer cancel()
	ws, resp, err := websocket.Dial(ctx, p.url(), &websocket.DialOptions{HTTPHeader: http.Header{"Origin": {"http://evil.example"}}})
	if err == nil {
		_ = ws.CloseNow()
		t.Fatal("upgrade from http://evil.example accepted")
	}
	if resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("foreign origin: %v (response %v), want 403", err, resp)
	}

	c := dialClient(t, client.Options{URL: p.url(), HTTPHeader: http.Header{"Origin": {"http://127.0.0.1:5173"}}})
	if _, err := c.Request(ctx, schemas.MethodStatus, nil); err != nil {
		t.Errorf("status from a loopback origin: %v", err)
	}
	_ = c.Close()
	stopGateway(t, p)
}

func getHealthz(t *testing.T, port int) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), procTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://127.0.0.1:"+strconv.Itoa(port)+"/healthz", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET /healthz: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read /healthz: %v", err)
	}
	return resp.StatusCode, string(b)
}
