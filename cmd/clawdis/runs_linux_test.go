package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/clawdis/clawdis/edge/client"
	"github.com/clawdis/clawdis/schemas"
)

// writeGateAgentConfig writes the config of state: the agent is testdata/gate-agent.sh
// working in work, with no provider.
func writeGateAgentConfig(t *testing.T, state, work string) {
	t.Helper()
	script, err := filepath.Abs("testdata/gate-agent.sh")
	if err != nil {
		t.Fatal(err)
	}
	argv, _ := json.Marshal([]string{script, work, "{{Body}}"})
	config := `{agent: {backend: "command", command: ` + string(argv) + `, timeoutSeconds: 120}}`
	if err := os.WriteFile(filepath.Join(state, "clawdis.json"), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestChatSendSurvivesKill9: a burst of chat.send turns on two sessions is acknowledged,
// the gateway is killed with SIGKILL right after the acknowledgements and started again on
// the same state dir, and nobody retries: every acknowledged message appears exactly once
// in chat.history, in order, followed by its reply; a retry of the same keys afterwards
// answers the remembered outcome and runs nothing.
func TestChatSendSurvivesKill9(t *testing.T) {
	requireLinux(t)
	home, state, work := t.TempDir(), t.TempDir(), t.TempDir()
	writeGateAgentConfig(t, state, work)
	port := freePort(t)
	first := startGateway(t, home, state, port)
	first.waitListening()
	c := dialTest(t, first.url(), "webchat", nil)
	sessions := map[string][]string{"alpha": {"a1", "a2", "a3"}, "beta": {"b1", "b2", "b3"}}
	send := func(c *client.Client, key, word string) schemas.ChatSendResult {
		t.Helper()
		var res schemas.ChatSendResult
		ctx, cancel := context.WithTimeout(context.Background(), procTimeout)
		defer cancel()
		raw, err := c.Request(ctx, schemas.MethodChatSend, map[string]any{"sessionKey": key, "message": word, "idempotencyKey": "key-" + word})
		if err != nil {
			t.Fatalf("chat.send %s: %v", word, err)
		}
		if err := json.Unmarshal(raw, &res); err != nil {
			t.Fatal(err)
		}
		return res
	}
	for i := range 3 {
		for _, key := range []string{"alpha", "beta"} {
			if res := send(c, key, sessions[key][i]); res.Status != "started" {
				t.Fatalf("ack of %s = %+v", sessions[key][i], res)
			}
		}
	}
	if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	first.waitExit()

	events := make(chan schemas.Event, 256)
	second := startGateway(t, home, state, port)
	second.waitListening()
	c2 := dialTest(t, second.url(), "webchat", events)
	if err := os.WriteFile(filepath.Join(work, "gate"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	finals := map[string]string{}
	deadline := time.After(procTimeout)
	for len(finals) < 6 {
		select {
		case ev := <-events:
			var p schemas.ChatEventPayload
			if ev.Event != schemas.EventChat || json.Unmarshal(ev.Payload, &p) != nil || p.State == schemas.ChatStateDelta {
				continue
			}
			if p.State != "final" || p.Message == nil {
				t.Fatalf("run %s ended %s: %s", p.RunID, p.State, p.ErrorMessage)
			}
			finals[p.RunID] = p.Message.Content[0].Text
		case <-deadline:
			t.Fatalf("finals %v, want one per acknowledged message\nlogs:\n%s", finals, second.logs.text())
		}
	}
	for key, words := range sessions {
		var h schemas.ChatHistoryResult
		call(t, c2, schemas.MethodChatHistory, map[string]any{"sessionKey": key}, &h)
		var got, want []string
		for _, m := range h.Messages {
			got = append(got, m.Role+":"+m.Content[0].Text)
		}
		for _, w := range words {
			want = append(want, "user:"+w, "assistant:reply to "+w)
			if finals["key-"+w] != "reply to "+w {
				t.Fatalf("final of %s = %q", w, finals["key-"+w])
			}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("history of %s = %q, want %q", key, got, want)
		}
	}
	runs := func() string {
		b, _ := os.ReadFile(filepath.Join(work, "runs"))
		return string(b)
	}
	before := runs()
	for key, words := range sessions {
		for _, w := range words {
			if res := send(c2, key, w); res.Status != "ok" {
				t.Fatalf("retry of %s = %+v, want the remembered ok", w, res)
			}
		}
	}
	if after := runs(); after != before {
		t.Fatalf("retries ran again: runs %q, then %q", before, after)
	}
	for _, words := range sessions {
		for _, w := range words {
			if n := strings.Count(before, w+"\n"); n < 1 || n > 2 {
				t.Fatalf("%s ran %d times: %q", w, n, before)
			}
		}
	}
}

// TestAgentCLIWaitsThroughKill9: `clawdis gateway agent` waits for the final of its run while
// the gateway is killed with SIGKILL mid-run and started again on the same state dir: the
// CLI reconnects, asks again with the same idempotency key, and prints the reply of the run,
// which ran again from the start.
func TestAgentCLIWaitsThroughKill9(t *testing.T) {
	requireLinux(t)
	home, state, work := t.TempDir(), t.TempDir(), t.TempDir()
	t.Setenv("HOME", home)
	writeGateAgentConfig(t, state, work)
	port := freePort(t)
	first := startGateway(t, home, state, port)
	first.waitListening()
	var out, errb syncBuf
	code := make(chan int, 1)
	go func() {
		code <- execute([]string{"gateway", "agent", "--message", "e1", "--idempotency-key", "cli-1", "--url", first.url()}, &out, &errb)
	}()
	waitFileLine(t, filepath.Join(work, "runs"), "e1") // the run's command started
	if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	first.waitExit()
	second := startGateway(t, home, state, port)
	second.waitListening()
	if err := os.WriteFile(filepath.Join(work, "gate"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-code:
		if c != 0 || strings.TrimSpace(out.String()) != "reply to e1" {
			t.Fatalf("exit %d, stdout %q, stderr %q; want the reply", c, out.String(), errb.String())
		}
	case <-time.After(procTimeout):
		t.Fatalf("the CLI did not end; stdout %q, stderr %q", out.String(), errb.String())
	}
	runs, _ := os.ReadFile(filepath.Join(work, "runs"))
	if n := strings.Count(string(runs), "e1\n"); n != 2 {
		t.Fatalf("e1 ran %d times, want 2 (killed, then again from the start): %q", n, runs)
	}
}
