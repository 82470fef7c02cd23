package agent

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/schemas"
)

func commandConfig(argv ...string) Config {
	return Config{Backend: BackendCommand, Command: argv}
}

// TestCommandStreamsBeforeExit: stdout reaches assistant events while the command still
// runs (it waits for a file the test creates only after seeing the first event).
func TestCommandStreamsBeforeExit(t *testing.T) {
	gate := filepath.Join(t.TempDir(), "gate")
	h := start(t, commandConfig("sh", script(t, "stream.sh"), gate))
	h.run(schemas.AgentParams{Message: "hi", IdempotencyKey: "r1"})
	evs := h.events.waitFor("first assistant chunk", func(evs []event) bool {
		a := agentOf(evs, "r1")
		return len(a) >= 2 && assistantText(a[1]) == "hello "
	})
	if ended("r1")(evs) {
		t.Fatal("run ended before the gate was opened")
	}
	touch(t, gate)
	if got := h.finalOK("r1").Text; got != "hello world" {
		t.Fatalf("text = %q, want %q", got, "hello world")
	}
	a := agentOf(h.events.waitFor("job done", ended("r1")), "r1")
	checkSeq(t, a)
	var streams []string
	for _, e := range a {
		if e.SessionKey != "main" {
			t.Errorf("event %d sessionKey = %q, want main", e.Seq, e.SessionKey)
		}
		streams = append(streams, e.Stream+":"+jobState(e)+assistantText(e))
	}
	want := []string{"job:started", "assistant:hello ", "assistant:world\n", "job:done"}
	if !slices.Equal(streams, want) {
		t.Fatalf("events = %q, want %q", streams, want)
	}
	_, transcript := h.sessions.get("main")
	if len(transcript) != 2 || transcript[0].Role != "user" || transcript[0].Content[0].Text != "hi" ||
		transcript[1].Role != "assistant" || transcript[1].Content[0].Text != "hello world" {
		t.Fatalf("transcript = %+v", transcript)
	}
}

// TestCommandPlaceholders: argv placeholders, thinking levels (given, stored, default)
// and the system-event lines of main-session prompts.
func TestCommandPlaceholders(t *testing.T) {
	argv := []string{"sh", script(t, "args.sh"), "body={{Body}}", "id={{SessionId}}", "key={{SessionKey}}",
		"from={{From}}", "think={{Thinking}}"}
	tests := []struct {
		name      string
		session   *wire.Session // stored before the run
		system    []string      // queued system events
		params    schemas.AgentParams
		want      string
		wantLevel string // thinking level stored on the session afterwards
	}{
		{
			name:      "alias is stored on the session",
			params:    schemas.AgentParams{Message: "hello", SessionKey: "s1", To: "+4366", Thinking: "harder"},
			want:      "body=hello\nid=sid-s1\nkey=s1\nfrom=+4366\nthink=medium",
			wantLevel: "medium",
		},
		{
			name:      "session level when none is given",
			session:   &wire.Session{SessionKey: "s2", SessionID: "abc", ThinkingLevel: "high"},
			params:    schemas.AgentParams{Message: "x", SessionKey: "s2", Thinking: "default"},
			want:      "body=x\nid=abc\nkey=s2\nfrom=\nthink=high",
			wantLevel: "high",
		},
		{
			name:   "configured default and system events on the main session",
			system: []string{"Node: mac (10.0.0.2) · app 1.0", "second\nline"},
			params: schemas.AgentParams{Message: "what now?"},
			want:   "body=System: Node: mac (10.0.0.2) · app 1.0\nSystem: second line\nwhat now?\nid=sid-main\nkey=main\nfrom=\nthink=low",
		},
		{
			name:   "no system events outside the main session",
			system: []string{"ignored"},
			params: schemas.AgentParams{Message: "m", SessionKey: "other", SessionID: "given-id"},
			want:   "body=m\nid=given-id\nkey=other\nfrom=\nthink=low",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := commandConfig(argv...)
			cfg.ThinkingDefault = "low"
			h := start(t, cfg)
			if tt.session != nil {
				h.sessions.set(*tt.session)
			}
			servePresence(t, h.bus.Conn("presence"), tt.system...)
			tt.params.IdempotencyKey = "p1"
			h.run(tt.params)
			if got := h.finalOK("p1").Text; got != tt.want {
				t.Fatalf("text =\n%s\nwant\n%s", got, tt.want)
			}
			key := tt.params.SessionKey
			if key == "" {
				key = "main"
			}
			if s, _ := h.sessions.get(key); s.ThinkingLevel != tt.wantLevel {
				t.Fatalf("stored thinking level = %q, want %q", s.ThinkingLevel, tt.wantLevel)
			}
		})
	}
}

// TestCommandFailure: a non-zero exit ends the run UNAVAILABLE with the last stderr lines.
func TestCommandFailure(t *testing.T) {
	h := start(t, commandConfig("sh", script(t, "fail.sh")))
	h.run(schemas.AgentParams{Message: "hi", IdempotencyKey: "f1"})
	werr, payload := h.finalErr("f1", wire.CodeUnavailable)
	for _, want := range []string{"exit status 3", "warning: slow disk", "boom: model unavailable"} {
		if !strings.Contains(werr.Message, want) {
			t.Errorf("error %q does not contain %q", werr.Message, want)
		}
	}
	if payload.Status != "error" || payload.Summary != werr.Message {
		t.Errorf("payload = %+v, want status error with the message as summary", payload)
	}
	a := agentOf(h.events.waitFor("job error", ended("f1")), "f1")
	checkSeq(t, a)
	if last := a[len(a)-1]; jobState(last) != "error" || !strings.Contains(string(last.Data), "boom") {
		t.Fatalf("last event = %s %s, want the job error", last.Stream, last.Data)
	}
}

// TestCommandMissing: a program that cannot start fails the run naming it.
func TestCommandMissing(t *testing.T) {
	h := start(t, commandConfig(filepath.Join(t.TempDir(), "no-such-agent")))
	h.run(schemas.AgentParams{Message: "hi", IdempotencyKey: "m1"})
	werr, _ := h.finalErr("m1", wire.CodeUnavailable)
	if !strings.Contains(werr.Message, "no-such-agent") {
		t.Fatalf("error %q does not name the program", werr.Message)
	}
}

// TestTimeoutWhileQueued: the deadline counts from acceptance, also while the run waits
// for a free slot.
func TestTimeoutWhileQueued(t *testing.T) {
	dir := t.TempDir()
	cfg := commandConfig("sh", script(t, "block.sh"), dir, "{{Body}}")
	cfg.MaxConcurrent = 1
	h := start(t, cfg)
	h.run(schemas.AgentParams{Message: "busy", SessionKey: "a", IdempotencyKey: "busy"})
	h.events.waitFor("busy started", func(evs []event) bool { return index(evs, "busy", isJob("started")) >= 0 })
	one := int64(1)
	h.run(schemas.AgentParams{Message: "late", SessionKey: "b", IdempotencyKey: "late", Timeout: &one})
	_, payload := h.finalErr("late", wire.CodeAgentTimeout)
	if payload.Status != "timeout" {
		t.Fatalf("payload = %+v, want status timeout", payload)
	}
	evs := h.events.waitFor("late ended", ended("late"))
	if index(evs, "late", isJob("started")) >= 0 || ended("busy")(evs) {
		t.Fatal("the queued run started, or the busy one ended, before the timeout")
	}
	touch(t, filepath.Join(dir, "busy"))
	h.finalOK("busy")
	if log, _ := os.ReadFile(filepath.Join(dir, "log")); string(log) != "busy\n" {
		t.Fatalf("runs = %q, want only busy", log)
	}
}

// TestCommandEnvWithoutGatewaySecrets: the agent command gets the environment minus the
// gateway's, the bus's and the bot's tokens.
func TestCommandEnvWithoutGatewaySecrets(t *testing.T) {
	for _, k := range gatewaySecrets {
		t.Setenv(k, "secret-"+k)
	}
	t.Setenv("OPENAI_API_KEY", "agent-key")
	h := start(t, commandConfig("env"))
	h.run(schemas.AgentParams{Message: "x", IdempotencyKey: "env-1"})
	got := h.finalOK("env-1").Text
	if !strings.Contains(got, "OPENAI_API_KEY=agent-key") {
		t.Errorf("the agent's own key is missing from its environment:\n%s", got)
	}
	if strings.Contains(got, "secret-") {
		t.Errorf("a gateway secret reached the agent command:\n%s", got)
	}
}
