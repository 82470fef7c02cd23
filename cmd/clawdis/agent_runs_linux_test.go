package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/clawdis/clawdis/edge/client"
	"github.com/clawdis/clawdis/schemas"
)

// scriptConfig runs one of services/agent's scripted fake agents with args.
func scriptConfig(t *testing.T, script string, timeoutSeconds int, args ...string) string {
	t.Helper()
	path, err := filepath.Abs(filepath.Join("..", "..", "services", "agent", "testdata", script))
	if err != nil {
		t.Fatal(err)
	}
	argv, _ := json.Marshal(append([]string{path}, args...))
	return `{agent: {backend: "command", command: ` + string(argv) + `, timeoutSeconds: ` + strconv.Itoa(timeoutSeconds) + `}}`
}

// agentEvents keeps the agent events of one run.
func agentEvents(events <-chan schemas.Event, runID string) <-chan schemas.AgentEventPayload {
	out := make(chan schemas.AgentEventPayload, 256)
	go func() {
		for ev := range events {
			var p schemas.AgentEventPayload
			if ev.Event == schemas.EventAgent && json.Unmarshal(ev.Payload, &p) == nil && p.RunID == runID {
				out <- p
			}
		}
	}()
	return out
}

// TestAgentStreamsBeforeExit: assistant text reaches the client while the backend process
// is still running; ack and final share the runId; per-run seq counts 1, 2, 3….
func TestAgentStreamsBeforeExit(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	gate := filepath.Join(t.TempDir(), "gate")
	d := startDaemon(t, t.TempDir(), scriptConfig(t, "stream.sh", 30, gate), nil)
	events := make(chan schemas.Event, 256)
	c := dialTest(t, d.url, "cli", events)
	runEvents := agentEvents(events, "stream-1")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	type result struct {
		raw json.RawMessage
		err error
	}
	done := make(chan result, 1)
	acks := make(chan json.RawMessage, 1)
	go func() {
		raw, err := c.RequestFinal(ctx, schemas.MethodAgent, map[string]any{"message": "hi", "idempotencyKey": "stream-1"},
			func(a json.RawMessage) { acks <- a })
		done <- result{raw, err}
	}()
	var ack schemas.AgentResult
	if err := json.Unmarshal(<-acks, &ack); err != nil || ack.RunID != "stream-1" || ack.Status != "accepted" {
		t.Fatalf("ack %+v %v", ack, err)
	}
	var seqs []int64
	var streams []string
	for {
		ev := <-runEvents
		seqs = append(seqs, ev.Seq)
		streams = append(streams, ev.Stream)
		if ev.Stream == "assistant" && strings.Contains(string(ev.Data), "hello") {
			break // the process is blocked on the gate: this text came before its exit
		}
	}
	if err := os.WriteFile(gate, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil {
		t.Fatalf("final: %v", r.err)
	}
	var fin schemas.AgentResult
	if err := json.Unmarshal(r.raw, &fin); err != nil || fin.RunID != "stream-1" || fin.Status != "ok" || fin.Text != "hello world" {
		t.Fatalf("final %s", r.raw)
	}
	for len(runEvents) > 0 || streams[len(streams)-1] != "job" {
		ev := <-runEvents
		seqs = append(seqs, ev.Seq)
		streams = append(streams, ev.Stream)
	}
	for i, s := range seqs {
		if s != int64(i+1) {
			t.Fatalf("seqs %v (streams %v), want 1, 2, 3…", seqs, streams)
		}
	}
	if streams[0] != "job" {
		t.Errorf("first event stream %q, want job (started)", streams[0])
	}
}

func TestAgentFailureAndTimeoutThroughEdge(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	d := startDaemon(t, t.TempDir(), scriptConfig(t, "fail.sh", 30), nil)
	c := dialTest(t, d.url, "cli", nil)
	_, err := c.RequestFinal(ctx, schemas.MethodAgent, map[string]any{"message": "hi", "idempotencyKey": "fail-1"}, nil)
	var re *client.ResponseError
	if !errors.As(err, &re) || re.Shape.Code != "UNAVAILABLE" || !strings.Contains(re.Shape.Message, "boom: model unavailable") {
		t.Fatalf("failing backend: %v", err)
	}
	d.stop()

	pidfile := filepath.Join(t.TempDir(), "pids")
	d = startDaemon(t, t.TempDir(), scriptConfig(t, "hang.sh", 1, pidfile), nil)
	c = dialTest(t, d.url, "cli", nil)
	raw, err := c.RequestFinal(ctx, schemas.MethodAgent, map[string]any{"message": "hi", "idempotencyKey": "hang-1"}, nil)
	if !errors.As(err, &re) || re.Shape.Code != "AGENT_TIMEOUT" {
		t.Fatalf("hanging backend: %s %v", raw, err)
	}
	var p schemas.AgentResult
	if json.Unmarshal(re.Payload, &p); p.Status != "timeout" || p.RunID != "hang-1" {
		t.Errorf("timeout payload %s", re.Payload)
	}
	b, err := os.ReadFile(pidfile)
	if err != nil {
		t.Fatal(err)
	}
	pids := strings.Fields(string(b))
	for i, f := range pids {
		pid, _ := strconv.Atoi(f)
		if i == 0 { // the command itself, reaped by the agent
			if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
				t.Errorf("the timed-out command %d still exists (kill 0: %v)", pid, err)
			}
			continue
		}
		// Its child was killed with the group: wait (on a pidfd, no polling) until it has
		// exited; where PID 1 reaps no orphans it lingers as a zombie, dead all the same.
		if !exitsWithin(pid, 5*time.Second) {
			st, _ := os.ReadFile("/proc/" + f + "/stat")
			t.Errorf("process %d of the timed-out group still runs: %s", pid, st)
		}
	}
}

// exitsWithin reports whether process pid has exited (or is gone) within d.
func exitsWithin(pid int, d time.Duration) bool {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return errors.Is(err, unix.ESRCH)
	}
	defer unix.Close(fd)
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	n, err := unix.Poll(fds, int(d.Milliseconds()))
	return err == nil && n == 1
}
