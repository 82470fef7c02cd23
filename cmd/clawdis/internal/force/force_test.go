//go:build linux

package force

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const helperEnv = "CLAWDIS_FORCE_HELPER"

// TestHelperProcess is not a test: FreePort tests run the test binary again with helperEnv set,
// and it then listens on 127.0.0.1:0, prints "ready <port>" and waits for stdin to close.
func TestHelperProcess(t *testing.T) {
	mode := os.Getenv(helperEnv)
	if mode == "" {
		t.Skip("helper process for the FreePort tests")
	}
	if mode == "ignore-term" {
		signal.Ignore(syscall.SIGTERM)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	fmt.Printf("ready %d\n", ln.Addr().(*net.TCPAddr).Port)
	_, _ = io.Copy(io.Discard, os.Stdin)
	os.Exit(0)
}

type helper struct {
	cmd   *exec.Cmd
	stdin io.Closer
	port  int
	wait  func() error
}

// startHelper runs the helper process in mode and waits for its "ready" line.
func startHelper(t *testing.T, mode string) *helper {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := &helper{cmd: cmd, stdin: stdin, wait: sync.OnceValue(cmd.Wait)}
	t.Cleanup(func() {
		_ = stdin.Close()
		_ = cmd.Process.Kill()
		_ = h.wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("helper did not get ready: %v", err)
	}
	port, ok := strings.CutPrefix(strings.TrimSpace(line), "ready ")
	if h.port, err = strconv.Atoi(port); !ok || err != nil {
		t.Fatalf("helper said %q", line)
	}
	return h
}

// exitSignal waits for the helper and returns the signal that ended it.
func (h *helper) exitSignal(t *testing.T) syscall.Signal {
	t.Helper()
	err := h.wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("helper exit: %v", err)
	}
	ws := ee.Sys().(syscall.WaitStatus)
	if !ws.Signaled() {
		t.Fatalf("helper was not killed by a signal: %v", err)
	}
	return ws.Signal()
}

// recorder is a slog.Handler keeping every record's level and message.
type recorder struct {
	mu   sync.Mutex
	msgs []string
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, rec.Level.String()+" "+rec.Message)
	return nil
}
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *recorder) WithGroup(string) slog.Handler      { return r }

func (r *recorder) messages() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.msgs)
}

func TestListenersOwnSockets(t *testing.T) {
	self := Process{PID: os.Getpid(), Command: command(os.Getpid())}
	if self.Command == "" {
		t.Fatal("no command name for the test process")
	}
	tests := []struct{ network, addr string }{
		{"tcp4", "127.0.0.1:0"},
		{"tcp6", "[::1]:0"},
		{"tcp", ":0"}, // any address (dual-stack when available)
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			ln, err := net.Listen(tt.network, tt.addr)
			if err != nil {
				t.Skipf("cannot listen on %s here: %v", tt.addr, err)
			}
			port := ln.Addr().(*net.TCPAddr).Port
			procs, err := Listeners(port)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Contains(procs, self) {
				t.Errorf("Listeners(%d) = %+v, want it to contain %+v", port, procs, self)
			}
			if _, err := exec.LookPath("lsof"); err == nil {
				procs, err := lsofListeners(port)
				if err != nil || !slices.ContainsFunc(procs, func(p Process) bool { return p.PID == self.PID }) {
					t.Errorf("lsofListeners(%d) = %+v, %v", port, procs, err)
				}
			}
			ln.Close()
			if procs, err := Listeners(port); err != nil || len(procs) != 0 {
				t.Errorf("after close: %+v %v", procs, err)
			}
		})
	}
}

func TestListenersBadPort(t *testing.T) {
	for _, port := range []int{0, -1, 65536} {
		if _, err := Listeners(port); err == nil {
			t.Errorf("port %d: no error", port)
		}
	}
}

func TestFreePort(t *testing.T) {
	tests := []struct {
		mode       string
		wait       time.Duration
		wantSignal syscall.Signal
		wantLevel  string // level of the line about the final signal
		wantVerb   string
	}{
		{"listen", 5 * time.Second, syscall.SIGTERM, "INFO", "stopped"},
		{"ignore-term", 300 * time.Millisecond, syscall.SIGKILL, "WARN", "killed"},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			h := startHelper(t, tt.mode)
			rec := &recorder{}
			if err := FreePort(t.Context(), h.port, slog.New(rec), tt.wait); err != nil {
				t.Fatalf("FreePort: %v", err)
			}
			if procs, err := Listeners(h.port); err != nil || len(procs) != 0 {
				t.Errorf("port still held after FreePort: %+v %v", procs, err)
			}
			if got := h.exitSignal(t); got != tt.wantSignal {
				t.Errorf("helper ended by %v, want %v", got, tt.wantSignal)
			}
			pid := h.cmd.Process.Pid
			cmdName := command(os.Getpid()) // the helper is the same binary
			msgs := rec.messages()
			stopped := fmt.Sprintf("INFO force: stopped pid %d (%s) on port %d", pid, cmdName, h.port)
			final := fmt.Sprintf("%s force: %s pid %d (%s) on port %d", tt.wantLevel, tt.wantVerb, pid, cmdName, h.port)
			if !slices.Contains(msgs, stopped) || !slices.Contains(msgs, final) {
				t.Errorf("log = %q, want %q and %q", msgs, stopped, final)
			}
		})
	}
}

func TestFreePortNothingListening(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	rec := &recorder{}
	if err := FreePort(t.Context(), port, slog.New(rec), time.Second); err != nil {
		t.Fatal(err)
	}
	want := []string{fmt.Sprintf("INFO force: nothing listening on port %d", port)}
	if got := rec.messages(); !slices.Equal(got, want) {
		t.Errorf("log = %q, want %q", got, want)
	}
}

func TestFreePortNeverTargetsSelf(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	err = FreePort(t.Context(), port, nil, time.Second)
	want := fmt.Sprintf("force: port %d is held by this process (pid %d)", port, os.Getpid())
	if err == nil || err.Error() != want {
		t.Errorf("FreePort = %v, want %s", err, want)
	}
	// Still listening: FreePort did not signal this process.
	if procs, _ := Listeners(port); len(procs) != 1 {
		t.Errorf("listeners after: %+v", procs)
	}
}

func TestFreePortContextCancelled(t *testing.T) {
	h := startHelper(t, "ignore-term")
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := FreePort(ctx, h.port, nil, time.Minute)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("FreePort = %v, want context.Canceled", err)
	}
}
