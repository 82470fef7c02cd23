package main

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/clawdis/clawdis/tools/internal/procstat"
)

func TestParseFlags(t *testing.T) {
	o, err := parseFlags([]string{"-bin", "/tmp/clawdis"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.bin != "/tmp/clawdis" || o.window != time.Minute || o.settle != 5*time.Second || o.mode != "cli" || !o.webchat || o.keep {
		t.Errorf("defaults: %+v", o)
	}
	o, err = parseFlags([]string{"-bin", "b", "-window", "10s", "-settle", "0s", "-mode", "node", "-webchat=false", "-keep"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.window != 10*time.Second || o.settle != 0 || o.mode != "node" || o.webchat || !o.keep {
		t.Errorf("parsed: %+v", o)
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{nil, "-bin is required"},
		{[]string{"-bin", "b", "-window", "0s"}, "-window 0s"},
		{[]string{"-bin", "b", "-settle", "-1s"}, "-settle -1s"},
		{[]string{"-bin", "b", "-mode", "x"}, `-mode "x"`},
		{[]string{"-bin", "b", "-stop-timeout", "0s"}, "must be positive"},
		{[]string{"-bin", "b", "extra"}, `unexpected argument "extra"`},
		{[]string{"-nope"}, "flag provided but not defined"},
	} {
		if _, err := parseFlags(tt.args, io.Discard); !errors.Is(err, errUsage) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: error %v, want a usage error containing %q", tt.args, err, tt.want)
		}
	}
}

func TestReport(t *testing.T) {
	for _, tt := range []struct {
		name    string
		used    procstat.CPU
		elapsed time.Duration
		want    string
	}{
		{"both measures", procstat.CPU{Stat: 130 * time.Millisecond, Sched: 127_500 * time.Microsecond}, time.Minute,
			"idle cpu: 130.0 ms in 1m0s (utime+stime; threads' schedstat 127.5 ms), 130.0 ms per minute; rss 20.0 MiB"},
		{"scaled to a minute", procstat.CPU{Stat: 10 * time.Millisecond}, 30 * time.Second,
			"idle cpu: 10.0 ms in 30s (utime+stime), 20.0 ms per minute; rss 20.0 MiB"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := report(tt.used, tt.elapsed, 20<<20); got != tt.want {
				t.Errorf("report =\n %s\nwant\n %s", got, tt.want)
			}
		})
	}
}

func TestChildEnv(t *testing.T) {
	got := childEnv([]string{"PATH=/bin", "HOME=/root", "CLAWDIS_GATEWAY_TOKEN=x", "TELEGRAM_BOT_TOKEN=y", "GOGC=50"}, "/tmp/d")
	if want := []string{"PATH=/bin", "GOGC=50", "HOME=/tmp/d"}; !slices.Equal(got, want) {
		t.Errorf("childEnv = %q, want %q", got, want)
	}
}

func TestWatchReady(t *testing.T) {
	in := `{"level":"INFO","msg":"bus started"}` + "\n" + `not json` + "\n" +
		`{"level":"INFO","msg":"gateway listening","url":"ws://x"}` + "\n" + `{"msg":"gateway listening"}` + "\n"
	var copied strings.Builder
	ready := make(chan struct{})
	watchReady(strings.NewReader(in), &copied, ready) // a second ready line must not close twice
	select {
	case <-ready:
	default:
		t.Fatal("ready not closed at the gateway listening line")
	}
	if copied.String() != in {
		t.Errorf("log copy:\n%s\nwant\n%s", copied.String(), in)
	}
	notReady := make(chan struct{})
	watchReady(strings.NewReader(`{"msg":"gateway listening soon"}`+"\n"), io.Discard, notReady)
	select {
	case <-notReady:
		t.Fatal("ready closed without the ready line")
	default:
	}
}

// TestGatewayLifecycle runs a stand-in for the binary: it must get the gateway arguments,
// be seen ready at its log line, and stop on SIGTERM.
func TestGatewayLifecycle(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	dir := t.TempDir()
	argsFile := filepath.Join(dir, "args")
	bin := filepath.Join(dir, "fake-clawdis")
	script := "#!" + sh + "\n" +
		`echo "$@" > ` + argsFile + "\n" +
		`trap 'kill $! 2>/dev/null; echo "{\"msg\":\"gateway stopped\"}"; exit 0' TERM` + "\n" +
		`echo '{"msg":"gateway listening"}'` + "\n" +
		"while :; do sleep 1 & wait $!; done\n"
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	g, err := startGateway(options{bin: bin, webchat: false}, dir)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-g.ready:
	case <-g.exited:
		t.Fatalf("exited before ready: %v", g.waitErr)
	case <-time.After(10 * time.Second):
		t.Fatal("not ready within 10s")
	}
	if err := g.stop(10 * time.Second); err != nil {
		t.Fatalf("stop: %v", err)
	}
	args, _ := os.ReadFile(argsFile)
	for _, want := range []string{"gateway ", "--state-dir " + filepath.Join(dir, "state"), "--no-providers", "--log-format json", "--no-webchat", "--port "} {
		if !strings.Contains(string(args), want) {
			t.Errorf("args %q lack %q", args, want)
		}
	}
	logs, _ := os.ReadFile(filepath.Join(dir, "gateway.log"))
	if !strings.Contains(string(logs), "gateway stopped") {
		t.Errorf("gateway.log lacks the stand-in's last line:\n%s", logs)
	}
}
