package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"
)

// commandWaitDelay bounds how long the command's output pipes may stay open after its
// process group was killed (held by a process that left the group) before they are closed.
const commandWaitDelay = 2 * time.Second

// stderrTailBytes and stderrTailLines bound the stderr kept for the error of a failed
// command.
const (
	stderrTailBytes = 8 << 10
	stderrTailLines = 5
)

// commandBackend runs the configured argv once per turn in its own process group and
// streams its stdout as assistant text.
type commandBackend struct {
	argv []string
}

func (b *commandBackend) wantsHistory() bool { return false }

// notStartedError is a backend failure before the turn reached the agent: the prompt, and
// the system events drained into it, were not consumed.
type notStartedError struct{ err error }

func (e *notStartedError) Error() string { return e.err.Error() }
func (e *notStartedError) Unwrap() error { return e.err }

func (b *commandBackend) run(ctx context.Context, t *turn, out chan<- output) (string, error) {
	argv, cleanup, err := fillArgv(b.argv, t)
	if err != nil {
		return "", &notStartedError{err}
	}
	defer cleanup()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = commandEnv(os.Environ())
	// Stdin stays nil: the command reads /dev/null.
	stdout := &streamWriter{out: out, reply: t.Reply}
	stderr := &tailBuffer{max: stderrTailBytes}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.WaitDelay = commandWaitDelay
	setProcessGroup(cmd)
	if err := cmd.Start(); err != nil {
		if errors.Is(err, syscall.E2BIG) {
			return "", &notStartedError{fmt.Errorf("agent command: start %s: the arguments are too long for the system; "+
				"put %s in agent.command to pass the message through a file: %w", argv[0], phBodyFile, err)}
		}
		return "", &notStartedError{fmt.Errorf("agent command: start %s: %w", argv[0], err)}
	}
	g := &procGroup{cmd: cmd}
	waited := make(chan error, 1)
	go func() { waited <- g.wait() }()
	select {
	case err = <-waited:
	case <-ctx.Done():
		g.kill()
		<-waited
		return "", fmt.Errorf("agent command: %w", context.Cause(ctx))
	}
	stdout.flush()
	if errors.Is(err, exec.ErrWaitDelay) {
		// It exited 0 but a process that left its group held its output open; the reply
		// is complete.
		err = nil
	}
	if err != nil {
		var exit *exec.ExitError
		if !errors.As(err, &exit) {
			return "", fmt.Errorf("agent command: %w", err)
		}
		msg := fmt.Sprintf("agent command failed (%s)", exit.ProcessState.String())
		if tail := stderr.lastLines(stderrTailLines); tail != "" {
			msg += ": " + tail
		}
		return "", errors.New(msg)
	}
	return t.Reply.text(), nil
}

// procGroup is the process group of a started command. kill and wait may be called
// concurrently.
type procGroup struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	done bool // the group was killed after the command exited: its id is not signalled again
}

// kill kills the whole group, unless wait already did.
func (g *procGroup) kill() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.done {
		killProcessGroup(g.cmd)
	}
}

// wait waits for the command to exit, kills what is left of its process group (nothing a
// run started outlives it), then reaps the command and waits for its output. Where the
// platform can wait without reaping (Linux), the group is killed while the command's pid,
// which is the group's id, cannot have been reused.
func (g *procGroup) wait() error {
	if awaitExit(g.cmd.Process.Pid) {
		g.mu.Lock()
		killProcessGroup(g.cmd)
		g.done = true
		g.mu.Unlock()
		return g.cmd.Wait()
	}
	err := g.cmd.Wait()
	g.mu.Lock()
	killProcessGroup(g.cmd)
	g.done = true
	g.mu.Unlock()
	return err
}

// gatewaySecrets are the environment variables an agent command never inherits: it runs
// prompts from chat messages, and none of it needs the gateway's, the bus's or the bot's
// credentials. Its own keys (an LLM API key, say) pass through.
var gatewaySecrets = []string{"CLAWDIS_GATEWAY_TOKEN", "CLAWDIS_BUS_TOKEN", "CLAWDIS_NATS_TOKEN", "TELEGRAM_BOT_TOKEN"}

// commandEnv is env without the gateway's secrets.
func commandEnv(env []string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		if !slices.Contains(gatewaySecrets, name) {
			out = append(out, kv)
		}
	}
	return out
}

// streamWriter receives the command's stdout as it arrives, keeps what fits in the reply
// and reports it as assistant text, holding back an incomplete UTF-8 sequence at the end of
// a chunk. Once the reply is full the rest is read and discarded, so memory stays bounded
// however much the command prints.
type streamWriter struct {
	out     chan<- output
	reply   *replyBuffer
	pending []byte
}

func (w *streamWriter) Write(p []byte) (int, error) {
	if w.reply.isFull() {
		return len(p), nil
	}
	w.pending = append(w.pending, p...)
	n := completeUTF8(w.pending)
	if n > 0 {
		w.emit(string(w.pending[:n]))
		w.pending = append(w.pending[:0], w.pending[n:]...)
	}
	return len(p), nil
}

// flush reports what is still held back (invalid UTF-8 at the very end).
func (w *streamWriter) flush() {
	if len(w.pending) > 0 {
		w.emit(string(w.pending))
		w.pending = w.pending[:0]
	}
}

// emit adds s to the reply and reports the part kept.
func (w *streamWriter) emit(s string) {
	if kept := w.reply.add(s); kept != "" {
		w.out <- output{Text: kept}
	}
}

// completeUTF8 returns the length of the longest prefix of b that does not end inside a
// UTF-8 sequence that more bytes could complete.
func completeUTF8(b []byte) int {
	// A rune is at most 4 bytes: look back at most 3 bytes for the start of the last one.
	for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax+1; i-- {
		if !utf8.RuneStart(b[i]) {
			continue
		}
		if !utf8.FullRune(b[i:]) {
			return i
		}
		break
	}
	return len(b)
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

// lastLines returns the last n non-blank lines, joined with newlines.
func (t *tailBuffer) lastLines(n int) string {
	var lines []string
	for _, l := range strings.Split(string(t.buf), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
