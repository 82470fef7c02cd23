package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// commandWaitDelay bounds how long the command's output pipes may stay open after it
// exited (held by a child it left behind) before they are closed.
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

// argvFor fills the placeholders of every argument.
func (b *commandBackend) argvFor(t *turn) []string {
	r := strings.NewReplacer(
		"{{Body}}", t.Prompt,
		"{{SessionId}}", t.SessionID,
		"{{SessionKey}}", t.SessionKey,
		"{{From}}", t.From,
		"{{Thinking}}", t.Thinking,
	)
	argv := make([]string, len(b.argv))
	for i, a := range b.argv {
		argv[i] = r.Replace(a)
	}
	return argv
}

func (b *commandBackend) run(ctx context.Context, t *turn, out chan<- output) (string, error) {
	argv := b.argvFor(t)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = commandEnv(os.Environ())
	// Stdin stays nil: the command reads /dev/null.
	stdout := &streamWriter{out: out}
	stderr := &tailBuffer{max: stderrTailBytes}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.WaitDelay = commandWaitDelay
	setProcessGroup(cmd)
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("agent command: start %s: %w", argv[0], err)
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	var err error
	select {
	case err = <-waited:
	case <-ctx.Done():
		killProcessGroup(cmd)
		<-waited
		return "", fmt.Errorf("agent command: %w", context.Cause(ctx))
	}
	stdout.flush()
	if errors.Is(err, exec.ErrWaitDelay) {
		// It exited 0 but left a process holding its output open; the reply is complete.
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
	return strings.TrimSpace(stdout.all.String()), nil
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

// streamWriter receives the command's stdout as it arrives and reports it as assistant
// text, holding back an incomplete UTF-8 sequence at the end of a chunk.
type streamWriter struct {
	out     chan<- output
	all     bytes.Buffer
	pending []byte
}

func (w *streamWriter) Write(p []byte) (int, error) {
	w.all.Write(p)
	w.pending = append(w.pending, p...)
	n := completeUTF8(w.pending)
	if n > 0 {
		w.out <- output{Text: string(w.pending[:n])}
		w.pending = append(w.pending[:0], w.pending[n:]...)
	}
	return len(p), nil
}

// flush reports what is still held back (invalid UTF-8 at the very end).
func (w *streamWriter) flush() {
	if len(w.pending) > 0 {
		w.out <- output{Text: string(w.pending)}
		w.pending = w.pending[:0]
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
