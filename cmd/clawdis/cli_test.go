package main

import (
	"bytes"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestExitCodes(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedURL := "ws://" + ln.Addr().String()
	ln.Close()
	t.Setenv("HOME", t.TempDir())
	for _, tt := range []struct {
		name    string
		args    []string
		code    int
		wantErr string
	}{
		{"version", []string{"version"}, 0, ""},
		{"unknown flag", []string{"gateway", "--nope"}, 2, `unknown flag "--nope" for "clawdis gateway"`},
		{"unknown command", []string{"gateway", "frobnicate"}, 2, `unknown command "frobnicate" for "clawdis gateway"`},
		{"call needs a method", []string{"gateway", "call"}, 2, "exactly one METHOD"},
		{"unreachable", []string{"gateway", "health", "--url", closedURL}, 1, "gateway not reachable at " + closedURL},
		{"bad params", []string{"gateway", "call", "health", "--params", "{x", "--url", closedURL}, 1, "--params is not valid JSON"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := execute(tt.args, &out, &errb)
			if code != tt.code {
				t.Errorf("exit %d, want %d (stderr %q)", code, tt.code, errb.String())
			}
			if tt.wantErr != "" && !strings.Contains(errb.String(), tt.wantErr) {
				t.Errorf("stderr %q lacks %q", errb.String(), tt.wantErr)
			}
			if tt.code != 0 && strings.Count(strings.TrimSpace(errb.String()), "\n") != 0 {
				t.Errorf("want one line on stderr, got %q", errb.String())
			}
		})
	}
}

// TestGatewayEndToEnd runs the real daemon (bus, presence, health, edge) in-process and talks
// to it with the CLI commands.
func TestGatewayEndToEnd(t *testing.T) {
	state := t.TempDir()
	t.Setenv("HOME", t.TempDir())
	t.Setenv("CLAWDIS_GATEWAY_TOKEN", "")
	d := startDaemon(t, state, "", func(df *daemonFlags) { df.token = "tok" })
	url := d.url
	var out, errb bytes.Buffer
	if code := execute([]string{"gateway", "health", "--json", "--url", url, "--token", "tok"}, &out, &errb); code != 0 {
		// health exits 1 until the first liveness probe; its JSON still has every field.
		if !strings.Contains(out.String(), `"services"`) {
			t.Fatalf("health: %d %s %s", code, out.String(), errb.String())
		}
	}
	var h map[string]any
	if err := json.Unmarshal(out.Bytes(), &h); err != nil || h["web"] == nil || h["services"] == nil {
		t.Fatalf("health --json: %s", out.String())
	}
	out.Reset()
	if code := execute([]string{"gateway", "call", "system-event", "--params", `{"text":"from the test"}`, "--url", url, "--token", "tok"}, &out, &errb); code != 0 {
		t.Fatalf("call system-event: %d %s", code, errb.String())
	}
	out.Reset()
	if code := execute([]string{"gateway", "call", "system-presence", "--url", url, "--token", "tok"}, &out, &errb); code != 0 || !strings.Contains(out.String(), "from the test") {
		t.Fatalf("system-presence: %d %s", code, out.String())
	}
	errb.Reset()
	if code := execute([]string{"gateway", "status", "--url", url, "--token", "wrong"}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "unauthorized") {
		t.Errorf("wrong token: %d %q", code, errb.String())
	}
	if _, err := os.Stat(filepath.Join(state, "gateway.lock")); err != nil {
		t.Errorf("lock file: %v", err)
	}
	d.stop()
}

type syncBuf struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuf) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuf) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
