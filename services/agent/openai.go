package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/clawdis/clawdis/schemas"
)

// maxErrorBody bounds how much of an error response is read for its message.
const maxErrorBody = 64 << 10

// openaiBackend streams chat completions from an OpenAI-compatible server.
type openaiBackend struct {
	cfg      OpenAIConfig
	limit    int // history messages; negative: none
	getenv   func(string) string
	client   *http.Client
	loopback bool // BaseURL is a loopback address: the API key may be missing
}

func newOpenAIBackend(cfg Config) *openaiBackend {
	return &openaiBackend{
		cfg:      cfg.OpenAI,
		limit:    cfg.HistoryLimit,
		getenv:   cfg.Getenv,
		client:   cfg.HTTPClient,
		loopback: isLoopbackURL(cfg.OpenAI.BaseURL),
	}
}

func (b *openaiBackend) wantsHistory() bool { return b.limit > 0 }

// isLoopbackURL reports whether the host of raw is localhost or a loopback IP.
func isLoopbackURL(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil {
		return false
	}
	host := u.Hostname()
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// chatRequest is the body of POST /chat/completions.
type chatRequest struct {
	Model    string        `json:"model"`
	Stream   bool          `json:"stream"`
	Messages []chatMessage `json:"messages"`
}

// chatMessage is one message; Content is a string, or []contentPart with images.
type chatMessage struct {
	Role    string `json:"role"`
	Content any    `json:"content"`
}

type contentPart struct {
	Type     string    `json:"type"`
	Text     string    `json:"text,omitempty"`
	ImageURL *imageURL `json:"image_url,omitempty"`
}

type imageURL struct {
	URL string `json:"url"`
}

// chatChunk is one streamed chunk (or, with Message, a whole non-streamed answer).
type chatChunk struct {
	Choices []struct {
		Delta struct {
			Content   string `json:"content"`
			ToolCalls []struct {
				Function struct {
					Name string `json:"name"`
				} `json:"function"`
			} `json:"tool_calls"`
		} `json:"delta"`
		Message struct {
			Content string `json:"content"`
		} `json:"message"`
	} `json:"choices"`
	Error json.RawMessage `json:"error"`
}

// messages builds the request messages: system prompt, history, then the user prompt.
func (b *openaiBackend) messages(t *turn) []chatMessage {
	var msgs []chatMessage
	if b.cfg.SystemPrompt != "" {
		msgs = append(msgs, chatMessage{Role: "system", Content: b.cfg.SystemPrompt})
	}
	for _, m := range t.History {
		if cm, ok := historyMessage(m); ok {
			msgs = append(msgs, cm)
		}
	}
	return append(msgs, userMessage(t.Prompt, t.Images))
}

// historyMessage converts a transcript message: text parts, and images of user messages
// as data URLs.
func historyMessage(m schemas.ChatMessage) (chatMessage, bool) {
	if m.Role != "user" && m.Role != "assistant" {
		return chatMessage{}, false
	}
	var texts []string
	var images []schemas.ChatContent
	for _, c := range m.Content {
		switch c.Type {
		case "text":
			if c.Text != "" {
				texts = append(texts, c.Text)
			}
		case "image":
			if m.Role == "user" && c.Data != "" {
				images = append(images, c)
			}
		}
	}
	text := strings.Join(texts, "\n")
	if m.Role == "assistant" {
		return chatMessage{Role: "assistant", Content: text}, text != ""
	}
	if text == "" && len(images) == 0 {
		return chatMessage{}, false
	}
	return userMessage(text, images), true
}

// userMessage is a user message with text and images.
func userMessage(text string, images []schemas.ChatContent) chatMessage {
	if len(images) == 0 {
		return chatMessage{Role: "user", Content: text}
	}
	var parts []contentPart
	if text != "" {
		parts = append(parts, contentPart{Type: "text", Text: text})
	}
	for _, img := range images {
		parts = append(parts, contentPart{Type: "image_url",
			ImageURL: &imageURL{URL: "data:" + img.MimeType + ";base64," + img.Data}})
	}
	return chatMessage{Role: "user", Content: parts}
}

func (b *openaiBackend) run(ctx context.Context, t *turn, out chan<- output) (string, error) {
	key := b.getenv(b.cfg.APIKeyEnv)
	if key == "" && !b.loopback {
		return "", &notStartedError{fmt.Errorf("openai: no API key: set the environment variable %s (agent.openai.apiKeyEnv names it)", b.cfg.APIKeyEnv)}
	}
	body, err := json.Marshal(chatRequest{Model: b.cfg.Model, Stream: true, Messages: b.messages(t)})
	if err != nil {
		return "", &notStartedError{fmt.Errorf("openai: encode request: %w", err)}
	}
	endpoint := b.cfg.BaseURL + "/chat/completions"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return "", &notStartedError{fmt.Errorf("openai: %w", err)}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := b.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return "", &notStartedError{fmt.Errorf("openai: %w", context.Cause(ctx))}
		}
		return "", &notStartedError{fmt.Errorf("openai: POST %s: %s", endpoint, redact(rootCause(err).Error(), key))}
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		// The server refused the turn: its prompt was not consumed.
		return "", &notStartedError{fmt.Errorf("openai: HTTP %d: %s", resp.StatusCode, redact(errorMessage(resp), key))}
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt == "application/json" {
		err = b.readWhole(io.LimitReader(resp.Body, maxWholeBody), t.Reply, out)
	} else {
		err = b.readStream(resp.Body, t.Reply, out)
	}
	if err != nil {
		if ctx.Err() != nil {
			return "", fmt.Errorf("openai: %w", context.Cause(ctx))
		}
		return "", fmt.Errorf("openai: %s", redact(err.Error(), key))
	}
	return t.Reply.text(), nil
}

// maxWholeBody bounds a non-streamed answer read at once.
const maxWholeBody = 16 << 20

// addText adds content to the reply and streams the part kept.
func addText(reply *replyBuffer, content string, out chan<- output) {
	if kept := reply.add(content); kept != "" {
		out <- output{Text: kept}
	}
}

// readStream reads an SSE stream of chunks until [DONE] or its end, or until the reply is
// full: then the rest is not read (the stream is closed).
func (b *openaiBackend) readStream(r io.Reader, reply *replyBuffer, out chan<- output) error {
	sse := newSSEReader(r)
	for {
		ev, err := sse.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		data := strings.TrimSpace(ev.Data)
		if data == "[DONE]" {
			return nil
		}
		if data == "" {
			continue
		}
		var c chatChunk
		if err := json.Unmarshal([]byte(data), &c); err != nil {
			return fmt.Errorf("bad stream chunk: %w", err)
		}
		if msg := apiErrorMessage(c.Error); msg != "" {
			return fmt.Errorf("stream error: %s", msg)
		}
		if len(c.Choices) == 0 {
			continue
		}
		d := c.Choices[0].Delta
		for _, tc := range d.ToolCalls {
			if tc.Function.Name != "" {
				out <- output{Tool: tc.Function.Name}
			}
		}
		addText(reply, d.Content, out)
		if reply.isFull() {
			return nil
		}
	}
}

// readWhole reads a non-streamed answer (a server that ignored stream:true).
func (b *openaiBackend) readWhole(r io.Reader, reply *replyBuffer, out chan<- output) error {
	var c chatChunk
	if err := json.NewDecoder(r).Decode(&c); err != nil {
		return fmt.Errorf("bad response: %w", err)
	}
	if msg := apiErrorMessage(c.Error); msg != "" {
		return errors.New(msg)
	}
	if len(c.Choices) > 0 {
		addText(reply, c.Choices[0].Message.Content, out)
	}
	return nil
}

// errorMessage returns the message of an error response: error.message (or error, or
// message) of a JSON body, else the status text.
func errorMessage(resp *http.Response) string {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	var v struct {
		Error   json.RawMessage `json:"error"`
		Message string          `json:"message"`
	}
	if json.Unmarshal(body, &v) == nil {
		if msg := apiErrorMessage(v.Error); msg != "" {
			return msg
		}
		if v.Message != "" {
			return v.Message
		}
	}
	if st := http.StatusText(resp.StatusCode); st != "" {
		return st
	}
	return "error"
}

// apiErrorMessage reads an "error" value: {"message": ...} or a string.
func apiErrorMessage(raw json.RawMessage) string {
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var obj struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(raw, &obj) == nil && obj.Message != "" {
		return obj.Message
	}
	var s string
	if json.Unmarshal(raw, &s) == nil && s != "" {
		return s
	}
	return ""
}

// redact removes the API key from a message.
func redact(msg, key string) string {
	if key == "" {
		return msg
	}
	return strings.ReplaceAll(msg, key, "[redacted]")
}

// rootCause unwraps a *url.Error so the message does not repeat the method and URL.
func rootCause(err error) error {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		return uerr.Err
	}
	return err
}
