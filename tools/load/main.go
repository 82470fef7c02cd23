// Command load is a load tool for a running gateway: it opens N client connections (each
// completing the hello handshake), keeps them open for a while, and during that hold
// either stays idle, spreads R health requests per second across them (-rate), or has
// every connection send health requests back to back (-max, with -inflight requests in
// flight per connection, until -hold ends or -requests were sent). It prints connect-time
// and request-latency statistics (median and p99), throughput and errors, and, given -pid,
// the gateway's resident memory before, with the connections open, and at the end, and the
// CPU time it used during the hold (from /proc/<pid>/stat utime+stime): in total, per
// minute, per request and per 1000 requests. It raises its open-file limit to the hard
// limit, so -conns 10000 works where the hard limit allows it (the gateway, a Go program,
// raises its own).
//
// Examples (the gateway's pid from pgrep or its start):
//
//	go run ./tools/load -conns 1000 -token T -rate 200 -hold 10s -pid 1234   # paced
//	go run ./tools/load -conns 8 -max -hold 10s -pid 1234                    # throughput, CPU per request
//	go run ./tools/load -conns 8 -max -requests 100000 -hold 1m -pid 1234    # a fixed count
//	go run ./tools/load -conns 10000 -parallel 64 -hold 5s -pid 1234         # RSS of idle connections
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"syscall"
	"time"

	"github.com/clawdis/clawdis/tools/internal/procstat"
)

// options are the tool's flags, validated.
type options struct {
	url, token, mode string
	conns, parallel  int
	rate             float64       // health requests per second across all connections; 0: none
	max              bool          // every connection sends back to back
	requests         int           // with max: stop after this many requests; 0: at the end of hold
	inflight         int           // with max: requests in flight per connection
	hold             time.Duration // how long the connections stay open after the last one opened
	pid              int           // gateway pid for VmRSS; 0: not measured
	dialTimeout      time.Duration
	reqTimeout       time.Duration
}

// errUsage marks a command-line error (exit 2).
var errUsage = errors.New("usage")

// parseFlags parses and validates args. The token defaults to $CLAWDIS_GATEWAY_TOKEN.
func parseFlags(args []string, getenv func(string) string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.url, "url", "ws://127.0.0.1:18789", "gateway WebSocket URL")
	fs.StringVar(&o.token, "token", "", "gateway token (default $CLAWDIS_GATEWAY_TOKEN)")
	fs.StringVar(&o.mode, "mode", "cli", `client mode in the hello: "cli" or "node" (node clients enter presence)`)
	fs.IntVar(&o.conns, "conns", 100, "connections to open")
	fs.IntVar(&o.parallel, "parallel", 32, "connections opened concurrently")
	fs.Float64Var(&o.rate, "rate", 0, "health requests per second, spread round-robin over the connections (0: idle)")
	fs.BoolVar(&o.max, "max", false, "maximum throughput: every connection sends health requests back to back during the hold")
	fs.IntVar(&o.requests, "requests", 0, "with -max: stop after this many requests in all (0: when -hold ends)")
	fs.IntVar(&o.inflight, "inflight", 1, "with -max: requests in flight per connection")
	fs.DurationVar(&o.hold, "hold", 10*time.Second, "how long to keep the connections open once all are open (with -max -requests: at most)")
	fs.IntVar(&o.pid, "pid", 0, "gateway pid: report its VmRSS (/proc/<pid>/status) and CPU time (/proc/<pid>/stat)")
	fs.DurationVar(&o.dialTimeout, "dial-timeout", 10*time.Second, "bound on one connection plus its handshake")
	fs.DurationVar(&o.reqTimeout, "req-timeout", 5*time.Second, "bound on one request")
	if err := fs.Parse(args); err != nil {
		return options{}, fmt.Errorf("%w: %w", errUsage, err)
	}
	if fs.NArg() > 0 {
		return options{}, fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	if o.token == "" {
		o.token = getenv("CLAWDIS_GATEWAY_TOKEN")
	}
	if err := o.validate(); err != nil {
		return options{}, fmt.Errorf("%w: %w", errUsage, err)
	}
	return o, nil
}

// load describes the requests of the hold.
func (o options) load() string {
	switch {
	case o.max && o.requests > 0:
		return fmt.Sprintf("%d health requests back to back, %d in flight per connection", o.requests, o.inflight)
	case o.max:
		return fmt.Sprintf("health requests back to back, %d in flight per connection", o.inflight)
	case o.rate > 0:
		return fmt.Sprintf("%g health req/s", o.rate)
	}
	return "idle"
}

func (o options) validate() error {
	u, err := url.Parse(o.url)
	switch {
	case err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "":
		return fmt.Errorf("-url %q: want ws://host:port or wss://host:port", o.url)
	case o.mode != "cli" && o.mode != "node":
		return fmt.Errorf(`-mode %q: want "cli" or "node"`, o.mode)
	case o.conns < 1:
		return fmt.Errorf("-conns %d: want at least 1", o.conns)
	case o.parallel < 1:
		return fmt.Errorf("-parallel %d: want at least 1", o.parallel)
	case o.rate < 0 || o.rate > 1e6:
		return fmt.Errorf("-rate %g: want 0 to 1000000", o.rate)
	case o.hold < 0:
		return fmt.Errorf("-hold %s: must not be negative", o.hold)
	case o.rate > 0 && o.hold == 0:
		return errors.New("-rate needs a -hold to send requests in")
	case o.rate > 0 && o.max:
		return errors.New("-rate and -max exclude each other")
	case o.requests < 0:
		return fmt.Errorf("-requests %d: must not be negative", o.requests)
	case o.requests > 0 && !o.max:
		return errors.New("-requests needs -max")
	case o.inflight < 1:
		return fmt.Errorf("-inflight %d: want at least 1", o.inflight)
	case o.max && o.hold == 0 && o.requests == 0:
		return errors.New("-max needs a -hold or -requests")
	case o.pid < 0:
		return fmt.Errorf("-pid %d: must not be negative", o.pid)
	case o.dialTimeout <= 0 || o.reqTimeout <= 0:
		return errors.New("-dial-timeout and -req-timeout must be positive")
	}
	return nil
}

func main() {
	o, err := parseFlags(os.Args[1:], os.Getenv, os.Stderr)
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "load: "+err.Error())
			os.Exit(2)
		}
		os.Exit(0)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "load: "+err.Error())
		stop()
		os.Exit(1)
	}
}

// run opens the connections, holds them (sending requests when asked), prints the report and
// closes everything.
func run(ctx context.Context, o options, out io.Writer) error {
	if limit, err := raiseNoFile(); err != nil {
		fmt.Fprintf(out, "warning: cannot raise the open-file limit: %v\n", err)
	} else if limit < uint64(o.conns)+64 {
		fmt.Fprintf(out, "warning: open-file limit %d is low for %d connections\n", limit, o.conns)
	}
	fmt.Fprintf(out, "load: %d %s connections to %s (%d at a time), %s hold, %s; %s\n",
		o.conns, o.mode, o.url, o.parallel, o.hold, o.load(), runtime.Version())

	if o.pid != 0 {
		name, err := procstat.Comm(o.pid)
		if err != nil {
			return fmt.Errorf("-pid %d: %w", o.pid, err)
		}
		fmt.Fprintf(out, "gateway:     pid %d (%s)\n", o.pid, name)
	}
	rss := newRSSReport(o.pid)
	rss.sample("before")

	p := newPool(o)
	start := time.Now()
	p.open(ctx)
	openTime := time.Since(start)
	defer p.closeAll()

	fmt.Fprintf(out, "connections: %d/%d open in %s, %d failed\n", len(p.clients), o.conns, openTime.Round(time.Millisecond), p.dialErrs.total())
	fmt.Fprintf(out, "connect:     %s\n", summarize(p.connectTimes))
	p.dialErrs.print(out, "dial error")
	rss.sample(strconv.Itoa(len(p.clients)) + " conns open")

	if len(p.clients) > 0 && (o.hold > 0 || o.requests > 0) {
		holdCtx, cancel := ctx, context.CancelFunc(func() {})
		if o.hold > 0 {
			holdCtx, cancel = context.WithTimeout(ctx, o.hold)
		}
		cpu := newCPUSampler(o.pid)
		start := time.Now()
		p.hold(holdCtx)
		elapsed := time.Since(start)
		cancel()
		sent := len(p.latencies) + p.reqErrs.total()
		if o.rate > 0 || o.max {
			fmt.Fprintf(out, "requests:    %d ok, %d failed in %s: %.0f req/s; latency %s\n", len(p.latencies), p.reqErrs.total(),
				elapsed.Round(10*time.Millisecond), throughput(sent, elapsed), summarize(p.latencies))
			p.reqErrs.print(out, "request error")
		}
		cpu.print(out, elapsed, sent)
	}
	fmt.Fprintf(out, "dropped:     %d connections lost while held\n", p.drops.Load())
	rss.sample("at end")
	rss.print(out)
	if len(p.clients) == 0 {
		return errors.New("no connection could be opened")
	}
	return nil
}
