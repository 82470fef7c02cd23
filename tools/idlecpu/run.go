package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/clawdis/clawdis/edge/client"
	"github.com/clawdis/clawdis/schemas"
	"github.com/clawdis/clawdis/tools/internal/procstat"
)

// readyMsg is the gateway's log message once it accepts connections.
const readyMsg = "gateway listening"

// run starts the gateway, connects the idle client, measures, prints the report and stops
// everything it started.
func run(ctx context.Context, o options, out io.Writer) (err error) {
	dir, err := os.MkdirTemp("", "idlecpu-")
	if err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	defer func() {
		if o.keep || err != nil {
			fmt.Fprintf(out, "state dir and gateway.log kept in %s\n", dir)
			return
		}
		_ = os.RemoveAll(dir)
	}()
	g, err := startGateway(o, dir)
	if err != nil {
		return err
	}
	defer func() {
		if serr := g.stop(o.stopTimeout); serr != nil && err == nil {
			err = serr
		}
	}()
	fmt.Fprintf(out, "idlecpu: %s gateway pid %d on %s (webchat %v), one %s client; settle %s, window %s; %s\n",
		o.bin, g.pid(), g.url, o.webchat, o.mode, o.settle, o.window, runtime.Version())

	readyCtx, cancel := context.WithTimeout(ctx, o.readyTimeout)
	defer cancel()
	select {
	case <-g.ready:
	case <-g.exited:
		return fmt.Errorf("the gateway exited before it was ready (%v)", g.waitErr)
	case <-readyCtx.Done():
		return fmt.Errorf("the gateway was not ready within %s: %w", o.readyTimeout, readyCtx.Err())
	}
	var drops atomic.Int64
	c, err := client.Dial(readyCtx, client.Options{
		URL:         g.url,
		Client:      schemas.ClientInfo{Name: "clawdis-idlecpu", Version: "dev", Platform: runtime.GOOS, Mode: o.mode},
		DialTimeout: o.readyTimeout,
		OnDisconnect: func(err error) {
			if !errors.Is(err, client.ErrClosed) {
				drops.Add(1)
			}
		},
	})
	if err != nil {
		return fmt.Errorf("connect the idle client: %w", err)
	}
	defer c.Close()

	if err := pause(ctx, o.settle); err != nil {
		return fmt.Errorf("settle: %w", err)
	}
	before, err := procstat.ReadCPU(g.pid())
	if err != nil {
		return err
	}
	start := time.Now()
	if err := pause(ctx, o.window); err != nil {
		return fmt.Errorf("window: %w", err)
	}
	after, err := procstat.ReadCPU(g.pid())
	if err != nil {
		return err
	}
	elapsed := time.Since(start)
	rss, err := procstat.ReadRSS(g.pid())
	if err != nil {
		return err
	}
	fmt.Fprintln(out, report(after.Sub(before), elapsed, rss))
	if n := drops.Load(); n > 0 {
		return fmt.Errorf("the idle client was disconnected %d times during the measurement", n)
	}
	return nil
}

// report is the result line: the CPU used (in total and per minute) and the RSS.
func report(used procstat.CPU, elapsed time.Duration, rss int64) string {
	return fmt.Sprintf("idle cpu: %s; rss %s", procstat.Summary(used, elapsed, 0), procstat.MiB(rss))
}

// pause waits d unless ctx ends first (then it returns ctx's error).
func pause(ctx context.Context, d time.Duration) error {
	wait, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	<-wait.Done()
	return ctx.Err()
}

// gateway is the started gateway process.
type gateway struct {
	cmd     *exec.Cmd
	url     string
	log     *os.File
	ready   chan struct{} // closed at the readyMsg log line
	exited  chan struct{} // closed when the process ended; then waitErr is set
	waitErr error
}

func (g *gateway) pid() int { return g.cmd.Process.Pid }

// startGateway starts o.bin as a gateway with its state (and HOME) in dir, logging to
// dir/gateway.log.
func startGateway(o options, dir string) (*gateway, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	args := []string{"gateway", "--state-dir", filepath.Join(dir, "state"), "--port", strconv.Itoa(port),
		"--no-providers", "--log-format", "json"}
	if o.webchat {
		wcPort, err := freePort()
		if err != nil {
			return nil, err
		}
		args = append(args, "--webchat-port", strconv.Itoa(wcPort))
	} else {
		args = append(args, "--no-webchat")
	}
	logFile, err := os.Create(filepath.Join(dir, "gateway.log"))
	if err != nil {
		return nil, fmt.Errorf("gateway log: %w", err)
	}
	stdout, err := newPipe()
	if err != nil {
		logFile.Close()
		return nil, fmt.Errorf("gateway stdout: %w", err)
	}
	cmd := exec.Command(o.bin, args...)
	cmd.Env = childEnv(os.Environ(), dir)
	cmd.Stdout, cmd.Stderr = stdout.w, logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		stdout.close()
		return nil, fmt.Errorf("start %s: %w", o.bin, err)
	}
	stdout.w.Close() // the child has its copy
	g := &gateway{cmd: cmd, url: "ws://127.0.0.1:" + strconv.Itoa(port), log: logFile,
		ready: make(chan struct{}), exited: make(chan struct{})}
	logged := make(chan struct{})
	go func() {
		defer close(logged)
		watchReady(stdout.r, logFile, g.ready)
		stdout.r.Close()
	}()
	go func() {
		err := cmd.Wait()
		<-logged
		g.waitErr = err
		close(g.exited)
	}()
	return g, nil
}

// watchReady copies the gateway's JSON log lines from r to w and closes ready at the first
// one whose msg is readyMsg.
func watchReady(r io.Reader, w io.Writer, ready chan<- struct{}) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	isReady := false
	for sc.Scan() {
		line := sc.Bytes()
		_, _ = w.Write(append(line, '\n'))
		if !isReady && isReadyLine(line) {
			isReady = true
			close(ready)
		}
	}
}

// isReadyLine reports whether a JSON log line is the readyMsg record.
func isReadyLine(line []byte) bool {
	var rec struct {
		Msg string `json:"msg"`
	}
	return json.Unmarshal(line, &rec) == nil && rec.Msg == readyMsg
}

// stop sends SIGTERM, waits up to timeout, then kills the gateway; it reports a gateway
// that needed the kill or exited with an error.
func (g *gateway) stop(timeout time.Duration) error {
	defer g.log.Close()
	select {
	case <-g.exited:
		return nil // reported by whoever saw it exit early
	default:
	}
	_ = g.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-g.exited:
		if g.waitErr != nil {
			return fmt.Errorf("stop gateway: %w", g.waitErr)
		}
		return nil
	case <-t.C:
		_ = g.cmd.Process.Kill()
		<-g.exited
		return fmt.Errorf("stop gateway: still running %s after SIGTERM; killed", timeout)
	}
}

// childEnv is env without what would configure the gateway (CLAWDIS_*, TELEGRAM_*, HOME),
// with HOME set to dir.
func childEnv(env []string, dir string) []string {
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		if strings.HasPrefix(kv, "CLAWDIS_") || strings.HasPrefix(kv, "TELEGRAM_") || strings.HasPrefix(kv, "HOME=") {
			continue
		}
		out = append(out, kv)
	}
	return append(out, "HOME="+dir)
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// pipe is an os.Pipe pair.
type pipe struct{ r, w *os.File }

func newPipe() (pipe, error) {
	r, w, err := os.Pipe()
	return pipe{r, w}, err
}

func (p pipe) close() {
	p.r.Close()
	p.w.Close()
}
