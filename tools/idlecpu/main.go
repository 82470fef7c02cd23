// Command idlecpu measures the CPU an idle gateway uses. It starts the clawdis binary given
// by -bin as `clawdis gateway` with a temporary state directory (and HOME), free loopback
// ports for the gateway and WebChat, --no-providers and JSON logs; waits for its "gateway
// listening" log line; connects ONE client that completes the protocol hello (edge/client)
// and then stays idle; lets the gateway settle (-settle); and reads the gateway's CPU time
// (utime+stime of /proc/<pid>/stat, and the nanosecond on-CPU time of its threads from
// /proc/<pid>/task/*/schedstat) before and after -window. It prints the CPU milliseconds
// per minute and the gateway's RSS, then closes the client, stops the gateway with SIGTERM
// (SIGKILL after -stop-timeout) and removes the temporary directory. Linux only (/proc).
//
// It builds nothing: build the binary first.
//
//	go build -o /tmp/clawdis ./cmd/clawdis
//	go run ./tools/idlecpu -bin /tmp/clawdis                 # 60 s window
//	go run ./tools/idlecpu -bin /tmp/clawdis -window 10s -mode node
//
// The utime+stime figure moves in 10 ms ticks, so over a 60 s window it is exact to about
// ±10 ms per minute; the schedstat figure is exact to the nanosecond but counts only
// threads alive at each reading (a Go program rarely ends threads).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// options are the tool's flags, validated.
type options struct {
	bin          string
	window       time.Duration
	settle       time.Duration
	mode         string
	webchat      bool
	readyTimeout time.Duration
	stopTimeout  time.Duration
	keep         bool
}

// errUsage marks a command-line error (exit 2).
var errUsage = errors.New("usage")

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("idlecpu", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.bin, "bin", "", "path of a built clawdis binary (required; nothing is built)")
	fs.DurationVar(&o.window, "window", time.Minute, "how long the CPU time is measured")
	fs.DurationVar(&o.settle, "settle", 5*time.Second, "wait between the client's hello-ok and the first reading")
	fs.StringVar(&o.mode, "mode", "cli", `client mode in the hello: "cli" or "node" (node clients enter presence)`)
	fs.BoolVar(&o.webchat, "webchat", true, "run WebChat too (on a free port), as a default gateway does")
	fs.DurationVar(&o.readyTimeout, "ready-timeout", 30*time.Second, "bound on the gateway's start and the client's hello")
	fs.DurationVar(&o.stopTimeout, "stop-timeout", 15*time.Second, "how long SIGTERM may take before SIGKILL")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary state directory (with gateway.log) for inspection")
	if err := fs.Parse(args); err != nil {
		return options{}, fmt.Errorf("%w: %w", errUsage, err)
	}
	if fs.NArg() > 0 {
		return options{}, fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	var why string
	switch {
	case o.bin == "":
		why = "-bin is required: the path of a built clawdis (go build -o /tmp/clawdis ./cmd/clawdis)"
	case o.window <= 0:
		why = fmt.Sprintf("-window %s: must be positive", o.window)
	case o.settle < 0:
		why = fmt.Sprintf("-settle %s: must not be negative", o.settle)
	case o.mode != "cli" && o.mode != "node":
		why = fmt.Sprintf(`-mode %q: want "cli" or "node"`, o.mode)
	case o.readyTimeout <= 0 || o.stopTimeout <= 0:
		why = "-ready-timeout and -stop-timeout must be positive"
	}
	if why != "" {
		return options{}, fmt.Errorf("%w: %s", errUsage, why)
	}
	return o, nil
}

func main() {
	o, err := parseFlags(os.Args[1:], os.Stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "idlecpu: "+err.Error())
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "idlecpu: "+err.Error())
		stop()
		os.Exit(1)
	}
}
