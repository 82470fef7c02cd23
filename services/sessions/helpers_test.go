package sessions

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/clawdis/clawdis/bus/bustest"
	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/schemas"
)

// waitLimit bounds every wait in these tests; it only decides when a test has failed.
const waitLimit = 10 * time.Second

var t0 = time.UnixMilli(1_760_000_000_000)

// tickClock returns a later time, by one millisecond, on every call, so each change the
// service makes gets its own updatedAt in the order the changes were made.
type tickClock struct{ n atomic.Int64 }

func (c *tickClock) Now() time.Time { return t0.Add(time.Duration(c.n.Add(1)) * time.Millisecond) }

// fixedClock is a clock the test moves by hand.
type fixedClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fixedClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fixedClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// seqIDs returns session ids id-1, id-2, ….
func seqIDs() func() string {
	var n atomic.Int64
	return func() string { return fmt.Sprintf("id-%d", n.Add(1)) }
}

// logRecorder keeps every log record.
type logRecorder struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logRecorder) WithGroup(string) slog.Handler            { return l }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.recs = append(l.recs, r.Clone())
	return nil
}

// errors returns the Error records, each as its message and attributes.
func (l *logRecorder) errors() []map[string]string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]string
	for _, r := range l.recs {
		if r.Level < slog.LevelError {
			continue
		}
		m := map[string]string{"msg": r.Message}
		r.Attrs(func(a slog.Attr) bool {
			m[a.Key] = a.Value.String()
			return true
		})
		out = append(out, m)
	}
	return out
}

// harness is a running sessions service on an in-process bus.
type harness struct {
	t      testing.TB
	bus    *bustest.Bus
	svc    *Service
	nc     *nats.Conn // the test's own connection
	dir    string
	logs   *logRecorder
	cancel context.CancelFunc
	done   chan error
}

// start runs a service on a new bus. An empty cfg.Dir becomes a fresh, not yet existing
// directory; nil Now and NewID become a fixed clock at t0 and sequential ids.
func start(t testing.TB, cfg Config) *harness {
	t.Helper()
	return startOn(t, bustest.New(t), cfg)
}

// startOn runs a service on b and waits until it is Ready; it is stopped with t.Cleanup.
func startOn(t testing.TB, b *bustest.Bus, cfg Config) *harness {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = filepath.Join(t.TempDir(), "sessions")
	}
	if cfg.Now == nil {
		cfg.Now = (&fixedClock{now: t0}).Now
	}
	if cfg.NewID == nil {
		cfg.NewID = seqIDs()
	}
	h := &harness{t: t, bus: b, nc: b.Conn("test"), dir: cfg.Dir, logs: &logRecorder{}, done: make(chan error, 1)}
	svc, err := New(cfg, b.Conn("sessions"), slog.New(h.logs))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	h.svc = svc
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { h.done <- svc.Run(ctx) }()
	t.Cleanup(h.stop)
	select {
	case <-svc.Ready():
	case err := <-h.done:
		t.Fatalf("Run returned %v before Ready", err)
	case <-time.After(waitLimit):
		t.Fatalf("service not Ready within %s", waitLimit)
	}
	return h
}

// stop stops the service and checks that Run returned nil; it may be called twice.
func (h *harness) stop() {
	h.t.Helper()
	if h.cancel == nil {
		return
	}
	h.cancel()
	h.cancel = nil
	select {
	case err := <-h.done:
		if err != nil {
			h.t.Errorf("Run returned %v", err)
		}
	case <-time.After(waitLimit):
		h.t.Errorf("Run did not return within %s", waitLimit)
	}
}

// call sends in to subj and decodes the reply into a T.
func call[T any](h *harness, subj string, in any) (T, error) {
	var out T
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	err := wire.RequestJSON(ctx, h.nc, subj, in, &out)
	return out, err
}

// mustCall is call that fails the test on an error.
func mustCall[T any](t testing.TB, h *harness, subj string, in any) T {
	t.Helper()
	out, err := call[T](h, subj, in)
	if err != nil {
		t.Fatalf("%s: %v", subj, err)
	}
	return out
}

// checkErr checks that err is a *wire.Error with code whose message contains every part.
func checkErr(t testing.TB, err error, code string, parts ...string) *wire.Error {
	t.Helper()
	var werr *wire.Error
	if !errors.As(err, &werr) {
		t.Fatalf("error = %v, want a %s wire error", err, code)
	}
	if werr.Code != code {
		t.Errorf("error code = %s (%s), want %s", werr.Code, werr.Message, code)
	}
	for _, p := range parts {
		if !strings.Contains(werr.Message, p) {
			t.Errorf("error message %q does not contain %q", werr.Message, p)
		}
	}
	return werr
}

// text returns a message of role with one text part.
func text(role, s string, ts int64) schemas.ChatMessage {
	return schemas.ChatMessage{Role: role, Content: []schemas.ChatContent{{Type: "text", Text: s}}, Timestamp: ts}
}

// texts returns the first text of every message.
func texts(msgs []schemas.ChatMessage) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		if len(m.Content) > 0 {
			out[i] = m.Content[0].Text
		}
	}
	return out
}

// copyDir copies the regular files of src into a new temporary directory and returns it.
func copyDir(t testing.TB, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "sessions")
	if err := os.MkdirAll(dst, 0o700); err != nil {
		t.Fatal(err)
	}
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		in, err := os.Open(path)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.OpenFile(filepath.Join(dst, d.Name()), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			_ = out.Close()
			return err
		}
		return out.Close()
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// readFile returns the contents of path, failing the test when it cannot be read.
func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
