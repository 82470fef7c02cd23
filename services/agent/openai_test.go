package agent

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/schemas"
)

// fakeOpenAI is an OpenAI-compatible chat completions server: it streams the configured
// chunks as SSE, flushing after each, or answers with an error status.
type fakeOpenAI struct {
	srv *httptest.Server

	mu       sync.Mutex // guards the script and the requests
	script   openaiScript
	requests []recordedRequest
}

// openaiScript is what the fake answers.
type openaiScript struct {
	deltas []string      // content deltas streamed in order
	tool   string        // a tool call streamed before the deltas when set
	gate   chan struct{} // when set, the stream pauses after the first delta until closed
	closed chan struct{} // when set, closed when the client closes a paused stream
	status int           // when set, answer this status with body
	body   string
}

func (f *fakeOpenAI) set(s openaiScript) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.script = s
}

type recordedRequest struct {
	auth string
	body map[string]any
}

func newFakeOpenAI(t testing.TB) *fakeOpenAI {
	f := &fakeOpenAI{}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeOpenAI) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/chat/completions" {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	var body map[string]any
	b, _ := io.ReadAll(r.Body)
	_ = json.Unmarshal(b, &body)
	f.mu.Lock()
	f.requests = append(f.requests, recordedRequest{auth: r.Header.Get("Authorization"), body: body})
	sc := f.script
	f.mu.Unlock()
	if sc.status != 0 {
		w.WriteHeader(sc.status)
		_, _ = io.WriteString(w, sc.body)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	fl := w.(http.Flusher)
	send := func(v any) {
		b, _ := json.Marshal(v)
		_, _ = fmt.Fprintf(w, "data: %s\r\n\r\n", b)
		fl.Flush()
	}
	_, _ = io.WriteString(w, ": keep-alive\n\n")
	if sc.tool != "" {
		send(map[string]any{"choices": []any{map[string]any{"delta": map[string]any{
			"tool_calls": []any{map[string]any{"index": 0, "function": map[string]any{"name": sc.tool, "arguments": ""}}}}}}})
	}
	for i, d := range sc.deltas {
		send(map[string]any{"choices": []any{map[string]any{"index": 0, "delta": map[string]any{"content": d}}}})
		if i == 0 && sc.gate != nil {
			select {
			case <-sc.gate:
			case <-r.Context().Done():
				if sc.closed != nil {
					close(sc.closed)
				}
				return
			}
		}
	}
	_, _ = io.WriteString(w, "data: [DONE]\n\n")
}

func (f *fakeOpenAI) recorded() []recordedRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.requests)
}

func openaiConfig(f *fakeOpenAI, env map[string]string) Config {
	return Config{
		Backend: BackendOpenAI,
		OpenAI:  OpenAIConfig{BaseURL: f.srv.URL + "/v1", Model: "test-model", SystemPrompt: "be brief"},
		Getenv:  func(k string) string { return env[k] },
	}
}

func text(s string) schemas.ChatContent { return schemas.ChatContent{Type: "text", Text: s} }

// TestOpenAIStreams: deltas become assistant events as they arrive, tool calls become tool
// events, and the request carries the system prompt, the history and the prompt.
func TestOpenAIStreams(t *testing.T) {
	f := newFakeOpenAI(t)
	gate := make(chan struct{})
	f.set(openaiScript{deltas: []string{"Hel", "lo", " there "}, tool: "lookup", gate: gate})
	cfg := openaiConfig(f, map[string]string{"OPENAI_API_KEY": "sk-test"})
	cfg.HistoryLimit = 3
	h := start(t, cfg)
	h.sessions.set(wire.Session{SessionKey: "s"},
		schemas.ChatMessage{Role: "user", Content: []schemas.ChatContent{text("too old")}},
		schemas.ChatMessage{Role: "user", Content: []schemas.ChatContent{text("look"),
			{Type: "image", MimeType: "image/png", Data: "iVBORw0KGgo="}}},
		schemas.ChatMessage{Role: "assistant", Content: []schemas.ChatContent{text("a cat")}},
		schemas.ChatMessage{Role: "user", Content: []schemas.ChatContent{text("thanks")}},
	)
	h.run(schemas.AgentParams{Message: "hi", SessionKey: "s", IdempotencyKey: "o1"})
	h.events.waitFor("first delta", func(evs []event) bool {
		return slices.ContainsFunc(agentOf(evs, "o1"), func(e schemas.AgentEventPayload) bool { return assistantText(e) == "Hel" })
	})
	close(gate)
	if got := h.finalOK("o1").Text; got != "Hello there" {
		t.Fatalf("text = %q", got)
	}
	a := agentOf(h.events.waitFor("done", ended("o1")), "o1")
	checkSeq(t, a)
	var got []string
	for _, e := range a {
		got = append(got, e.Stream+":"+jobState(e)+assistantText(e))
	}
	want := []string{"job:started", "tool:", "assistant:Hel", "assistant:lo", "assistant: there ", "job:done"}
	if !slices.Equal(got, want) {
		t.Fatalf("events = %q, want %q", got, want)
	}
	if !strings.Contains(string(a[1].Data), `"name":"lookup"`) || !strings.Contains(string(a[1].Data), `"phase":"call"`) {
		t.Fatalf("tool event data = %s", a[1].Data)
	}

	reqs := f.recorded()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	r := reqs[0]
	if r.auth != "Bearer sk-test" || r.body["model"] != "test-model" || r.body["stream"] != true {
		t.Fatalf("request auth %q body %v", r.auth, r.body)
	}
	msgs, _ := json.Marshal(r.body["messages"])
	wantMsgs := `[{"content":"be brief","role":"system"},` +
		`{"content":[{"text":"look","type":"text"},{"image_url":{"url":"data:image/png;base64,iVBORw0KGgo="},"type":"image_url"}],"role":"user"},` +
		`{"content":"a cat","role":"assistant"},{"content":"thanks","role":"user"},{"content":"hi","role":"user"}]`
	if string(msgs) != wantMsgs {
		t.Fatalf("messages =\n%s\nwant\n%s", msgs, wantMsgs)
	}
	_, transcript := h.sessions.get("s")
	if n := len(transcript); n != 6 || transcript[4].Content[0].Text != "hi" || transcript[5].Content[0].Text != "Hello there" {
		t.Fatalf("transcript = %+v", transcript)
	}
}

// TestOpenAIErrors: HTTP errors and a missing key fail the run UNAVAILABLE with a message
// that says why; a loopback server needs no key.
func TestOpenAIErrors(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		body    string
		env     map[string]string
		baseURL string // overrides the fake server
		wantErr string // "" = ok
	}{
		{name: "401 with a JSON error", status: 401, env: map[string]string{"OPENAI_API_KEY": "sk-secret-key"},
			body:    `{"error":{"message":"Incorrect API key provided: sk-secret-key","type":"invalid_request_error"}}`,
			wantErr: "openai: HTTP 401: Incorrect API key provided: [redacted]"},
		{name: "500 without a JSON body", status: 500, body: "oops", env: map[string]string{"OPENAI_API_KEY": "k"},
			wantErr: "openai: HTTP 500: Internal Server Error"},
		{name: "missing key for a remote server", baseURL: "https://api.example.invalid/v1", env: map[string]string{},
			wantErr: "set the environment variable OPENAI_API_KEY"},
		{name: "loopback server without key", env: map[string]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeOpenAI(t)
			f.set(openaiScript{status: tt.status, body: tt.body, deltas: []string{"ok"}})
			cfg := openaiConfig(f, tt.env)
			if tt.baseURL != "" {
				cfg.OpenAI.BaseURL = tt.baseURL
			}
			h := start(t, cfg)
			h.run(schemas.AgentParams{Message: "hi", IdempotencyKey: "e1"})
			if tt.wantErr == "" {
				h.finalOK("e1")
			} else if werr, _ := h.finalErr("e1", wire.CodeUnavailable); !strings.Contains(werr.Message, tt.wantErr) {
				t.Fatalf("error %q does not contain %q", werr.Message, tt.wantErr)
			}
			wantAuth := ""
			if key := tt.env["OPENAI_API_KEY"]; key != "" {
				wantAuth = "Bearer " + key
			}
			for _, r := range f.recorded() {
				if r.auth != wantAuth {
					t.Errorf("Authorization = %q, want %q", r.auth, wantAuth)
				}
			}
		})
	}
}
