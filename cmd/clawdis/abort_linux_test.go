package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/clawdis/clawdis/edge/client"
	"github.com/clawdis/clawdis/schemas"
)

// abortAgentConfig runs testdata/abort-agent.sh with pidfile: slow bodies hang with a child.
func abortAgentConfig(t *testing.T, pidfile string) string {
	t.Helper()
	script, err := filepath.Abs("testdata/abort-agent.sh")
	if err != nil {
		t.Fatal(err)
	}
	argv, _ := json.Marshal([]string{script, pidfile, "{{Body}}"})
	return `{agent: {backend: "command", command: ` + string(argv) + `, timeoutSeconds: 60}}`
}

// eventLog keeps every event a client receives, for waits on any of them.
type eventLog struct {
	mu      sync.Mutex
	evs     []schemas.Event
	changed chan struct{}
}

// dialEvents connects a validating webchat client whose events are kept in an eventLog.
func dialEvents(t *testing.T, url string) (*client.Client, *eventLog) {
	t.Helper()
	l := &eventLog{changed: make(chan struct{})}
	opts := client.Options{URL: url, Client: schemas.ClientInfo{Name: "e2e", Version: "1", Platform: "linux", Mode: "webchat"},
		OnEvent: func(ev schemas.Event) {
			l.mu.Lock()
			l.evs = append(l.evs, ev)
			close(l.changed)
			l.changed = make(chan struct{})
			l.mu.Unlock()
		}}
	return dialClient(t, opts), l
}

// wait returns the first event (of all received) that match accepts, waiting for it.
func (l *eventLog) wait(t *testing.T, what string, match func(schemas.Event) bool) schemas.Event {
	t.Helper()
	return l.waitN(t, what, match, 1)
}

// waitN returns the nth event (of all received) that match accepts, waiting for it.
func (l *eventLog) waitN(t *testing.T, what string, match func(schemas.Event) bool, n int) schemas.Event {
	t.Helper()
	limit := time.NewTimer(20 * time.Second)
	defer limit.Stop()
	for {
		l.mu.Lock()
		seen := 0
		for _, ev := range l.evs {
			if match(ev) {
				if seen++; seen == n {
					l.mu.Unlock()
					return ev
				}
			}
		}
		changed := l.changed
		l.mu.Unlock()
		select {
		case <-changed:
		case <-limit.C:
			t.Fatalf("no %s event", what)
		}
	}
}

// all returns the received events that match accepts.
func (l *eventLog) all(match func(schemas.Event) bool) []schemas.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []schemas.Event
	for _, ev := range l.evs {
		if match(ev) {
			out = append(out, ev)
		}
	}
	return out
}

// chatState matches the chat event of runID in state.
func chatState(runID, state string) func(schemas.Event) bool {
	return func(ev schemas.Event) bool {
		var p schemas.ChatEventPayload
		return ev.Event == schemas.EventChat && json.Unmarshal(ev.Payload, &p) == nil && p.RunID == runID && p.State == state
	}
}

// jobState matches the agent job event of runID in state.
func jobState(runID, state string) func(schemas.Event) bool {
	return func(ev schemas.Event) bool {
		var p schemas.AgentEventPayload
		if ev.Event != schemas.EventAgent || json.Unmarshal(ev.Payload, &p) != nil || p.RunID != runID || p.Stream != "job" {
			return false
		}
		var d struct {
			State string `json:"state"`
		}
		return json.Unmarshal(p.Data, &d) == nil && d.State == state
	}
}

// assistantSaid matches an assistant agent event of runID whose text contains text.
func assistantSaid(runID, text string) func(schemas.Event) bool {
	return func(ev schemas.Event) bool {
		var p schemas.AgentEventPayload
		return ev.Event == schemas.EventAgent && json.Unmarshal(ev.Payload, &p) == nil && p.RunID == runID &&
			p.Stream == "assistant" && strings.Contains(string(p.Data), text)
	}
}

// call makes one request and decodes its payload into out.
func call(t *testing.T, c *client.Client, method string, params, out any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	raw, err := c.Request(ctx, method, params)
	if err != nil {
		t.Fatalf("%s: %v", method, err)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s payload %s: %v", method, raw, err)
		}
	}
}

// callErr makes one request that must fail with code; it returns the error message.
func callErr(t *testing.T, c *client.Client, method string, params any, code string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	raw, err := c.Request(ctx, method, params)
	var re *client.ResponseError
	if !errors.As(err, &re) || re.Shape.Code != code {
		t.Fatalf("%s = %s, %v; want %s", method, raw, err, code)
	}
	return re.Shape.Message
}

// abort sends chat.abort and returns the runs it aborted.
func abort(t *testing.T, c *client.Client, params map[string]any) []string {
	t.Helper()
	var res schemas.ChatAbortResult
	call(t, c, schemas.MethodChatAbort, params, &res)
	if !res.OK || res.Aborted == nil {
		t.Fatalf("chat.abort %v = %+v", params, res)
	}
	return res.Aborted
}

// history returns the messages of key's chat.history.
func history(t *testing.T, c *client.Client, key string) schemas.ChatHistoryResult {
	t.Helper()
	var h schemas.ChatHistoryResult
	call(t, c, schemas.MethodChatHistory, map[string]any{"sessionKey": key}, &h)
	return h
}

// readPids reads "<leader> <child>" from the agent's pid file.
func readPids(t *testing.T, pidfile string) (leader, child int) {
	t.Helper()
	b, err := os.ReadFile(pidfile)
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		t.Fatalf("pid file = %q", b)
	}
	leader, _ = strconv.Atoi(f[0])
	child, _ = strconv.Atoi(f[1])
	if pgid, err := syscall.Getpgid(child); err != nil || pgid != leader {
		t.Fatalf("child's process group = %d (%v), want %d", pgid, err, leader)
	}
	return leader, child
}

// checkGroupGone checks that the command was reaped and that nothing of its process group
// still runs (a killed child may linger as a zombie where PID 1 reaps no orphans).
func checkGroupGone(t *testing.T, leader, child int) {
	t.Helper()
	if !exitsWithin(child, 10*time.Second) {
		st, _ := os.ReadFile("/proc/" + strconv.Itoa(child) + "/stat")
		t.Errorf("the agent's child %d still runs after the abort: %s", child, st)
	}
	if err := syscall.Kill(leader, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("the aborted command %d still exists (kill 0: %v)", leader, err)
	}
	if err := syscall.Kill(-leader, 0); !errors.Is(err, syscall.ESRCH) {
		st, _ := os.ReadFile("/proc/" + strconv.Itoa(child) + "/stat")
		if fields := strings.Fields(string(st)); len(fields) > 2 && fields[2] != "Z" {
			t.Errorf("kill(-%d, 0) = %v and the child is not a zombie: %s", leader, err, st)
		}
	}
}

// runCount is how many times the scripted agent ran.
func runCount(t *testing.T, pidfile string) int {
	t.Helper()
	b, err := os.ReadFile(pidfile + ".runs")
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return strings.Count(string(b), "run")
}

// TestChatAbortRunningCommand: chat.abort of a running chat.send turn kills the command's
// whole process group, ends the run aborted (job event, chat event with the partial text),
// keeps the partial reply in the transcript marked aborted, and is remembered: a repeat
// replays the aborted event instead of running again.
func TestChatAbortRunningCommand(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	pidfile := filepath.Join(t.TempDir(), "pids")
	d := startDaemon(t, t.TempDir(), abortAgentConfig(t, pidfile), nil)
	c, events := dialEvents(t, d.url)

	var sent schemas.ChatSendResult
	call(t, c, schemas.MethodChatSend, map[string]any{"sessionKey": "main", "message": "slow one", "idempotencyKey": "c1"}, &sent)
	events.wait(t, "chat delta", chatState("c1", schemas.ChatStateDelta))
	leader, child := readPids(t, pidfile)

	if got := abort(t, c, map[string]any{"sessionKey": "main"}); len(got) != 1 || got[0] != "c1" {
		t.Fatalf("aborted = %v, want [c1]", got)
	}
	checkGroupGone(t, leader, child)
	ev := events.wait(t, "chat aborted", chatState("c1", schemas.ChatStateAborted))
	var p schemas.ChatEventPayload
	_ = json.Unmarshal(ev.Payload, &p)
	if p.Message == nil || len(p.Message.Content) != 1 || p.Message.Content[0].Text != "partial reply" || !p.Message.Aborted {
		t.Errorf("chat aborted event = %s, want the partial text marked aborted", ev.Payload)
	}
	events.wait(t, "job aborted", jobState("c1", schemas.RunAborted))
	if n := len(events.all(chatState("c1", schemas.ChatStateFinal))); n != 0 {
		t.Errorf("%d final chat events for an aborted run", n)
	}

	h := history(t, c, "main")
	n := len(h.Messages)
	if n != 2 || h.Messages[0].Role != "user" || h.Messages[1].Role != "assistant" ||
		h.Messages[1].Content[0].Text != "partial reply" || !h.Messages[1].Aborted || h.Messages[0].Aborted {
		t.Fatalf("history = %+v, want the prompt and the partial reply marked aborted", h.Messages)
	}

	// A repeat of the key replays the aborted turn; it does not run again.
	var again schemas.ChatSendResult
	call(t, c, schemas.MethodChatSend, map[string]any{"sessionKey": "main", "message": "slow one", "idempotencyKey": "c1"}, &again)
	if again.Status != "ok" {
		t.Errorf("repeat answered %+v, want ok (finished)", again)
	}
	events.waitN(t, "replayed chat aborted", chatState("c1", schemas.ChatStateAborted), 2)
	if runs := runCount(t, pidfile); runs != 1 {
		t.Errorf("the agent ran %d times, want 1", runs)
	}
	// Nothing runs any more: an abort stops nothing.
	if got := abort(t, c, map[string]any{"sessionKey": "main"}); len(got) != 0 {
		t.Errorf("abort with nothing running = %v, want []", got)
	}
}

// agentFinal starts an agent run and returns a channel with its final payload (or error).
func agentFinal(t *testing.T, c *client.Client, params map[string]any) <-chan json.RawMessage {
	t.Helper()
	out := make(chan json.RawMessage, 1)
	acked := make(chan struct{})
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		raw, err := c.RequestFinal(ctx, schemas.MethodAgent, params, func(json.RawMessage) { close(acked) })
		if err != nil {
			raw, _ = json.Marshal(map[string]string{"error": err.Error()})
		}
		out <- raw
	}()
	select {
	case <-acked:
	case raw := <-out:
		t.Fatalf("agent %v: %s", params["idempotencyKey"], raw)
	}
	return out
}

// finalResult decodes an agent final from agentFinal.
func finalResult(t *testing.T, ch <-chan json.RawMessage) schemas.AgentResult {
	t.Helper()
	var raw json.RawMessage
	select {
	case raw = <-ch:
	case <-time.After(30 * time.Second):
		t.Fatal("no agent final")
	}
	var r schemas.AgentResult
	if err := json.Unmarshal(raw, &r); err != nil || r.RunID == "" {
		t.Fatalf("agent final %s (%v)", raw, err)
	}
	return r
}

// TestChatAbortQueuedRuns: abort by runId stops that run only; abort of the session stops
// the running run and the queued ones, which never start; their agent finals are ok with
// status aborted (the running one's with its text so far).
func TestChatAbortQueuedRuns(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	pidfile := filepath.Join(t.TempDir(), "pids")
	d := startDaemon(t, t.TempDir(), abortAgentConfig(t, pidfile), nil)
	c, events := dialEvents(t, d.url)

	r1 := agentFinal(t, c, map[string]any{"message": "slow 1", "idempotencyKey": "r1"})
	events.wait(t, "r1 text", assistantSaid("r1", "partial reply"))
	leader, child := readPids(t, pidfile)
	r2 := agentFinal(t, c, map[string]any{"message": "slow 2", "idempotencyKey": "r2"})
	r3 := agentFinal(t, c, map[string]any{"message": "slow 3", "idempotencyKey": "r3"})
	r4 := agentFinal(t, c, map[string]any{"message": "slow 4", "idempotencyKey": "r4"})

	// By run id: r4 only; r1 keeps running.
	if got := abort(t, c, map[string]any{"sessionKey": "main", "runId": "r4"}); len(got) != 1 || got[0] != "r4" {
		t.Fatalf("abort r4 = %v", got)
	}
	if r := finalResult(t, r4); r.Status != schemas.RunAborted || r.Text != "" {
		t.Errorf("r4 final = %+v, want aborted without text", r)
	}
	if err := syscall.Kill(child, 0); err != nil {
		t.Fatalf("r1's command stopped when r4 was aborted: %v", err)
	}
	// Another session's abort touches nothing.
	if got := abort(t, c, map[string]any{"sessionKey": "other"}); len(got) != 0 {
		t.Fatalf("abort of an idle session = %v", got)
	}

	got := abort(t, c, map[string]any{"sessionKey": "main"})
	if strings.Join(got, ",") != "r1,r2,r3" {
		t.Fatalf("abort main = %v, want [r1 r2 r3]", got)
	}
	if r := finalResult(t, r1); r.Status != schemas.RunAborted || r.Text != "partial reply" {
		t.Errorf("r1 final = %+v, want aborted with the partial text", r)
	}
	for _, ch := range []<-chan json.RawMessage{r2, r3} {
		if r := finalResult(t, ch); r.Status != schemas.RunAborted || r.Text != "" {
			t.Errorf("queued run final = %+v, want aborted without text", r)
		}
	}
	checkGroupGone(t, leader, child)
	for _, id := range []string{"r2", "r3", "r4"} {
		events.wait(t, id+" aborted", jobState(id, schemas.RunAborted))
		if n := len(events.all(jobState(id, "started"))); n != 0 {
			t.Errorf("queued run %s started", id)
		}
	}
	if runs := runCount(t, pidfile); runs != 1 {
		t.Errorf("the agent ran %d times, want 1 (queued runs never start)", runs)
	}
}
