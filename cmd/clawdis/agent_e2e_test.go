package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clawdis/clawdis/edge/client"
	"github.com/clawdis/clawdis/schemas"
)

// agentConfig is a config file that runs testdata/echo-agent.sh as the command backend.
func agentConfig(t testing.TB) string {
	t.Helper()
	script, err := filepath.Abs("testdata/echo-agent.sh")
	if err != nil {
		t.Fatal(err)
	}
	cmd, _ := json.Marshal([]string{script, "{{Body}}"})
	return `{agent: {backend: "command", command: ` + string(cmd) + `, timeoutSeconds: 30}}`
}

func TestAgentThroughCLI(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	runs := filepath.Join(t.TempDir(), "runs")
	t.Setenv("CLAWDIS_TEST_RUNS", runs)
	state := t.TempDir()
	d := startDaemon(t, state, agentConfig(t), nil)

	var out, errb bytes.Buffer
	args := []string{"gateway", "agent", "--message", "hello there", "--idempotency-key", "k1", "--url", d.url}
	if code := execute(args, &out, &errb); code != 0 {
		t.Fatalf("agent: exit %d, stderr %q", code, errb.String())
	}
	if got := strings.TrimSpace(out.String()); got != "echo: hello there" {
		t.Fatalf("agent printed %q", got)
	}
	// The same key after a restart of the gateway: the remembered final, no second run.
	d.stop()
	d = startDaemon(t, state, "", nil)
	out.Reset()
	args = []string{"gateway", "agent", "--message", "hello there", "--idempotency-key", "k1", "--json", "--url", d.url}
	if code := execute(args, &out, &errb); code != 0 {
		t.Fatalf("agent after restart: exit %d, stderr %q", code, errb.String())
	}
	var res schemas.AgentResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil || res.Status != "ok" || res.Text != "echo: hello there" || res.RunID != "k1" {
		t.Fatalf("remembered final = %s (%v)", out.String(), err)
	}
	if b, _ := os.ReadFile(runs); strings.Count(string(b), "run") != 1 {
		t.Fatalf("the agent ran %d times, want 1", strings.Count(string(b), "run"))
	}
	// chat.history through the CLI shows the main session (agent turns are transcribed).
	out.Reset()
	args = []string{"gateway", "call", "chat.history", "--params", `{"sessionKey":"main"}`, "--url", d.url}
	if code := execute(args, &out, &errb); code != 0 {
		t.Fatalf("chat.history: exit %d, stderr %q", code, errb.String())
	}
	var hist schemas.ChatHistoryResult
	if err := json.Unmarshal(out.Bytes(), &hist); err != nil || hist.SessionKey != "main" {
		t.Fatalf("chat.history = %s (%v)", out.String(), err)
	}
}

func TestChatSendStreamsAndTranscribes(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	d := startDaemon(t, t.TempDir(), agentConfig(t), nil)
	events := make(chan schemas.Event, 256)
	c := dialTest(t, d.url, "webchat", events)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	png := base64.StdEncoding.EncodeToString([]byte("\x89PNG\r\n\x1a\n0000IHDR"))
	raw, err := c.Request(ctx, schemas.MethodChatSend, map[string]any{
		"sessionKey": "main", "message": "hi chat", "idempotencyKey": "c1",
		"attachments": []map[string]any{{"type": "image", "mimeType": "image/png", "fileName": "a.png", "content": png}},
	})
	if err != nil {
		t.Fatal(err)
	}
	var started schemas.ChatSendResult
	if err := json.Unmarshal(raw, &started); err != nil || started.Status != "started" || started.RunID != "c1" {
		t.Fatalf("chat.send = %s", raw)
	}
	var final schemas.ChatEventPayload
	for final.State == "" {
		select {
		case ev := <-events:
			if ev.Event != schemas.EventChat {
				continue
			}
			var p schemas.ChatEventPayload
			if err := json.Unmarshal(ev.Payload, &p); err != nil || p.RunID != "c1" {
				continue
			}
			switch p.State {
			case schemas.ChatStateFinal:
				final = p
			case schemas.ChatStateError:
				t.Fatalf("chat error: %s", p.ErrorMessage)
			}
		case <-ctx.Done():
			t.Fatal("no final chat event")
		}
	}
	if final.Message == nil || final.Message.Content[0].Text != "echo: hi chat" {
		t.Fatalf("final = %+v", final)
	}
	// The same key again: answered ok, and the remembered final chat event comes once more.
	raw, err = c.Request(ctx, schemas.MethodChatSend, map[string]any{"sessionKey": "main", "message": "hi chat", "idempotencyKey": "c1"})
	if err != nil {
		t.Fatal(err)
	}
	var again schemas.ChatSendResult
	if err := json.Unmarshal(raw, &again); err != nil || again.Status != "ok" || again.RunID != "c1" {
		t.Fatalf("repeated chat.send = %s", raw)
	}
	for replayed := false; !replayed; {
		select {
		case ev := <-events:
			var p schemas.ChatEventPayload
			if ev.Event != schemas.EventChat || json.Unmarshal(ev.Payload, &p) != nil || p.RunID != "c1" {
				continue
			}
			if p.State != schemas.ChatStateFinal || p.Message == nil || p.Message.Content[0].Text != "echo: hi chat" {
				t.Fatalf("after the repeat: %+v, want the final again", p)
			}
			replayed = true
		case <-ctx.Done():
			t.Fatal("the repeat did not replay the final chat event")
		}
	}
	raw, err = c.Request(ctx, schemas.MethodChatHistory, map[string]any{"sessionKey": "main"})
	if err != nil {
		t.Fatal(err)
	}
	var hist schemas.ChatHistoryResult
	if err := json.Unmarshal(raw, &hist); err != nil {
		t.Fatal(err)
	}
	n := len(hist.Messages)
	if n < 2 || hist.Messages[n-2].Role != "user" || hist.Messages[n-1].Role != "assistant" ||
		hist.Messages[n-1].Content[0].Text != "echo: hi chat" {
		t.Fatalf("history = %s", raw)
	}
	var sawImage bool
	for _, part := range hist.Messages[n-2].Content {
		sawImage = sawImage || (part.Type == "image" && part.MimeType == "image/png")
	}
	if !sawImage {
		t.Errorf("the user message lost its image: %s", raw)
	}
	_, err = c.Request(ctx, schemas.MethodChatSend, map[string]any{
		"sessionKey": "main", "message": "x", "idempotencyKey": "c2",
		"attachments": []map[string]any{{"type": "image", "mimeType": "image/png", "fileName": "b.png", "content": "%%%"}},
	})
	var re *client.ResponseError
	if !errors.As(err, &re) || re.Shape.Code != "INVALID_REQUEST" || !strings.Contains(re.Shape.Message, "b.png") {
		t.Fatalf("bad base64: %v", err)
	}
}
