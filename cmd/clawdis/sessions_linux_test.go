package main

import (
	"bytes"
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

	"github.com/clawdis/clawdis/schemas"
	"github.com/clawdis/clawdis/services/telegram/telegramtest"
)

// TestSessionsListAndReset: sessions.list orders by updatedAt, honours limit (1, the
// default, 501 refused by the schema) and counts and previews messages; sessions.reset is
// refused while a run of the session runs, then gives the key a new session id with an
// empty history, keeping the old transcript on disk.
func TestSessionsListAndReset(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	pidfile := filepath.Join(t.TempDir(), "pids")
	state := t.TempDir()
	d := startDaemon(t, state, abortAgentConfig(t, pidfile), nil)
	c, events := dialEvents(t, d.url)

	long := strings.Repeat("é", 200) // 200 characters, 400 bytes
	for i, key := range []string{"k1", "k2", "k3"} {
		id := "s" + strconv.Itoa(i)
		call(t, c, schemas.MethodChatSend, map[string]any{"sessionKey": key, "message": key + " " + long, "idempotencyKey": id}, nil)
		events.wait(t, id+" final", chatState(id, schemas.ChatStateFinal))
	}
	var list schemas.SessionsListResult
	call(t, c, schemas.MethodSessionsList, nil, &list)
	var keys []string
	for _, r := range list.Sessions {
		keys = append(keys, r.Key)
	}
	if strings.Join(keys, ",") != "k3,k2,k1" {
		t.Fatalf("sessions.list keys = %v, want newest first k3,k2,k1", keys)
	}
	top := list.Sessions[0]
	if top.MessageCount == nil || *top.MessageCount != 2 {
		t.Errorf("k3 messageCount = %v, want 2", top.MessageCount)
	}
	wantPreview := "echo: k3 " + strings.Repeat("é", 110) + "…"
	if top.LastMessagePreview != wantPreview {
		t.Errorf("k3 preview = %q (%d runes), want %q", top.LastMessagePreview, len([]rune(top.LastMessagePreview)), wantPreview)
	}
	var one schemas.SessionsListResult
	call(t, c, schemas.MethodSessionsList, map[string]any{"limit": 1}, &one)
	if len(one.Sessions) != 1 || one.Sessions[0].Key != "k3" {
		t.Errorf("limit 1 = %+v", one.Sessions)
	}
	if msg := callErr(t, c, schemas.MethodSessionsList, map[string]any{"limit": 501}, "INVALID_REQUEST"); !strings.Contains(msg, "limit") {
		t.Errorf("limit 501: %q", msg)
	}

	// A run of k1 is running: reset refused; after the abort, accepted.
	call(t, c, schemas.MethodChatSend, map[string]any{"sessionKey": "k1", "message": "slow", "idempotencyKey": "slow-1"}, nil)
	events.wait(t, "slow delta", chatState("slow-1", schemas.ChatStateDelta))
	if msg := callErr(t, c, schemas.MethodSessionsReset, map[string]any{"sessionKey": "k1"}, "INVALID_REQUEST"); !strings.Contains(msg, "abort it first") {
		t.Errorf("reset while running: %q", msg)
	}
	old := history(t, c, "k1")
	if got := abort(t, c, map[string]any{"sessionKey": "k1"}); len(got) != 1 {
		t.Fatalf("abort = %v", got)
	}
	var reset schemas.SessionsResetResult
	call(t, c, schemas.MethodSessionsReset, map[string]any{"sessionKey": "k1"}, &reset)
	if reset.SessionKey != "k1" || reset.SessionID == "" || reset.SessionID == old.SessionID {
		t.Fatalf("reset = %+v, old session %q", reset, old.SessionID)
	}
	h := history(t, c, "k1")
	if h.SessionID != reset.SessionID || len(h.Messages) != 0 {
		t.Errorf("history after reset = %+v, want the new session, empty", h)
	}
	b, err := os.ReadFile(filepath.Join(state, "sessions", old.SessionID+".jsonl"))
	if err != nil || !bytes.Contains(b, []byte(`"aborted":true`)) {
		t.Errorf("old transcript after reset: %v, %q", err, b)
	}
	var after schemas.SessionsListResult // fresh: decoding into list would keep its old fields
	call(t, c, schemas.MethodSessionsList, map[string]any{"limit": 500}, &after)
	if r := after.Sessions[0]; r.Key != "k1" || r.SessionID != reset.SessionID || r.MessageCount == nil || *r.MessageCount != 0 || r.LastMessagePreview != "" {
		t.Errorf("k1 after reset = %+v, want newest, no messages", r)
	}

	// The CLI's table.
	var out, errb bytes.Buffer
	if code := execute([]string{"gateway", "sessions", "--limit", "2", "--url", d.url}, &out, &errb); code != 0 {
		t.Fatalf("gateway sessions: exit %d, %s", code, errb.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "KEY") || !strings.HasPrefix(lines[1], "k1 ") ||
		!strings.HasPrefix(lines[2], "k3 ") || !strings.Contains(lines[2], " 2 ") || !strings.Contains(lines[2], "echo: k3") {
		t.Errorf("gateway sessions printed:\n%s", out.String())
	}
}

// TestTelegramInboundProvenanceAndAbort: a Telegram message is kept in the transcript with
// its channel and sender; aborting its run delivers nothing to the chat (the next
// message's reply is the first one sent) and keeps the partial reply marked aborted.
func TestTelegramInboundProvenanceAndAbort(t *testing.T) {
	pidfile := filepath.Join(t.TempDir(), "pids")
	cfg := abortAgentConfig(t, pidfile)
	d, api := telegramGateway(t, ", "+strings.TrimSuffix(strings.TrimPrefix(cfg, "{"), "}"))
	waitTelegramState(t, d.url, schemas.TelegramPolling)
	c, events := dialEvents(t, d.url)

	api.InjectMessage(telegramtest.DirectText(4242, "a slow question"))
	ev := events.wait(t, "assistant text", func(ev schemas.Event) bool {
		return ev.Event == schemas.EventAgent && strings.Contains(string(ev.Payload), "partial reply")
	})
	var p schemas.AgentEventPayload
	if err := json.Unmarshal(ev.Payload, &p); err != nil {
		t.Fatal(err)
	}
	if got := abort(t, c, map[string]any{"sessionKey": "main"}); len(got) != 1 || got[0] != p.RunID {
		t.Fatalf("abort = %v, want [%s]", got, p.RunID)
	}
	api.InjectMessage(telegramtest.DirectText(4242, "a quick one"))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sent, err := api.WaitSent(ctx)
	if err != nil {
		t.Fatalf("no reply to the second message: %v", err)
	}
	if !strings.HasSuffix(sent.Text, "a quick one") {
		t.Fatalf("first message sent = %q: the aborted run delivered something", sent.Text)
	}

	h := history(t, c, "main")
	if len(h.Messages) != 4 {
		t.Fatalf("history has %d messages, want 4: %+v", len(h.Messages), h.Messages)
	}
	for _, i := range []int{0, 2} {
		m := h.Messages[i]
		if m.Role != "user" || m.Channel != "telegram" || m.Sender == "" {
			t.Errorf("message %d = %+v, want a user message from telegram with its sender", i, m)
		}
	}
	if m := h.Messages[1]; m.Role != "assistant" || !m.Aborted || m.Content[0].Text != "partial reply" || m.Channel != "" {
		t.Errorf("message 1 = %+v, want the partial reply marked aborted", m)
	}
	if m := h.Messages[3]; m.Aborted || !strings.HasSuffix(m.Content[0].Text, "a quick one") {
		t.Errorf("message 3 = %+v", m)
	}
}

// TestAgentCLIInterrupt: the first interrupt of `gateway agent` aborts its run and the
// command ends with status 130 after the partial text; the run's final says aborted.
func TestAgentCLIInterrupt(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	pidfile := filepath.Join(t.TempDir(), "pids")
	d := startDaemon(t, t.TempDir(), abortAgentConfig(t, pidfile), nil)
	_, events := dialEvents(t, d.url)

	interrupts := make(chan os.Signal, 2)
	var out, errb syncBuf
	cf := &clientFlags{url: d.url, timeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() {
		p := schemas.AgentParams{Message: "slow", IdempotencyKey: "cli-1"}
		done <- runAgent(context.Background(), cf, p, agentOutput{stdout: &out, stderr: &errb}, interrupts)
	}()
	events.wait(t, "cli run text", assistantSaid("cli-1", "partial reply"))
	leader, child := readPids(t, pidfile)
	interrupts <- os.Interrupt
	var err error
	select {
	case err = <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("runAgent did not return after the interrupt")
	}
	var ie interruptedError
	if !errors.As(err, &ie) || !strings.Contains(err.Error(), "cli-1 aborted") {
		t.Fatalf("runAgent = %v, want the interrupted error", err)
	}
	if !strings.Contains(out.String(), "partial reply") || !strings.Contains(errb.String(), "aborting run cli-1") {
		t.Errorf("stdout %q, stderr %q", out.String(), errb.String())
	}
	events.wait(t, "job aborted", jobState("cli-1", schemas.RunAborted))
	checkGroupGone(t, leader, child)
}

// TestAgentCLISigint: a real SIGINT during `clawdis gateway agent` aborts the run; the
// command prints the partial text and exits 130.
func TestAgentCLISigint(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	pidfile := filepath.Join(t.TempDir(), "pids")
	d := startDaemon(t, t.TempDir(), abortAgentConfig(t, pidfile), nil)
	_, events := dialEvents(t, d.url)

	var out, errb syncBuf
	code := make(chan int, 1)
	go func() {
		code <- execute([]string{"gateway", "agent", "--message", "slow", "--idempotency-key", "sig-1", "--url", d.url}, &out, &errb)
	}()
	// The command listens for SIGINT before it asks for the run: once the run streams, the
	// signal reaches the command, not the default handler.
	events.wait(t, "cli run text", assistantSaid("sig-1", "partial reply"))
	if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-code:
		if c != exitInterrupted {
			t.Fatalf("exit %d, want %d; stderr %q", c, exitInterrupted, errb.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the command did not end after SIGINT")
	}
	if !strings.Contains(out.String(), "partial reply") || !strings.Contains(errb.String(), "agent run sig-1 aborted") {
		t.Errorf("stdout %q, stderr %q", out.String(), errb.String())
	}
	events.wait(t, "job aborted", jobState("sig-1", schemas.RunAborted))
}

// TestAgentCLISecondInterrupt: a second interrupt ends the command at once, without
// waiting for the run's final.
func TestAgentCLISecondInterrupt(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	pidfile := filepath.Join(t.TempDir(), "pids")
	d := startDaemon(t, t.TempDir(), abortAgentConfig(t, pidfile), nil)
	interrupts := make(chan os.Signal, 2)
	interrupts <- os.Interrupt
	interrupts <- os.Interrupt
	var out, errb syncBuf
	cf := &clientFlags{url: d.url, timeout: 10 * time.Second}
	// Both interrupts are pending when the loop starts: whatever else happens (the abort
	// answered, even the aborted final), the second one ends the command.
	err := runAgent(context.Background(), cf, schemas.AgentParams{Message: "slow", IdempotencyKey: "twice"},
		agentOutput{stdout: &out, stderr: &errb}, interrupts)
	var ie interruptedError
	if !errors.As(err, &ie) || !strings.Contains(err.Error(), "may still be stopping") {
		t.Fatalf("runAgent = %v, want the immediate interrupted error", err)
	}
}
