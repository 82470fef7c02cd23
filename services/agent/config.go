package agent

import (
	"github.com/clawdis/clawdis/bus/wire"

	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// Backend names accepted in Config.Backend.
const (
	BackendNone    = ""
	BackendCommand = "command"
	BackendOpenAI  = "openai"
)

// Defaults of Config.
const (
	DefaultTimeout         = 600 * time.Second
	DefaultMaxConcurrent   = 4
	DefaultRunAckWait      = 30 * time.Second
	DefaultThinking        = "off"
	DefaultMainKey         = "main"
	DefaultHistoryLimit    = 40
	DefaultOpenAIBaseURL   = "https://api.openai.com/v1"
	DefaultOpenAIAPIKeyEnv = "OPENAI_API_KEY"
	DefaultMaxReplyBytes   = 262144
	DefaultMaxPayload      = 524288
	// MaxTimeout is the longest deadline a request may ask for (SPEC §6.6).
	MaxTimeout = 86400 * time.Second
)

// noBackendMessage is the error of every run when no backend is configured.
const noBackendMessage = `no agent backend configured: set agent.backend to "command" (with agent.command) or "openai" (with agent.openai.model)`

// Config configures the agent service. The zero value works: no backend is configured
// (every run ends UNAVAILABLE saying so) and every default below applies.
type Config struct {
	// Backend is BackendCommand, BackendOpenAI or BackendNone. Default none.
	Backend string
	// Command is the argv run per turn by the command backend; each argument may contain
	// the placeholders {{Body}}, {{BodyFile}} (a temporary file holding the body, removed
	// after the run), {{SessionId}}, {{SessionKey}}, {{From}} and {{Thinking}}.
	// Required (with a non-empty program) when Backend is "command".
	Command []string
	// OpenAI configures the openai backend.
	OpenAI OpenAIConfig
	// Timeout is the deadline of a run, counted from its acceptance, when the request
	// gives none. Default 600s.
	Timeout time.Duration
	// MaxReplyBytes is the longest reply kept (agent.maxReplyBytes): a longer one is cut
	// there with the line "[reply truncated at N bytes]" appended, the rest of the
	// backend's output read and dropped. Default 262144.
	MaxReplyBytes int
	// MaxPayload is the largest frame the edge sends a client (gateway.maxPayload). A reply
	// whose JSON encoding would not fit in one event or final is cut shorter, so none is
	// ever larger. Default 524288.
	MaxPayload int
	// MaxConcurrent caps the runs executing at once; more wait in turn. Default 4.
	MaxConcurrent int
	// ThinkingDefault is the thinking level of a session that has none. Default "off".
	ThinkingDefault string
	// MainKey is the session key of direct chats: queued system events are drained into
	// its prompts and chat.send on it makes webchat the session's last channel.
	// Default "main".
	MainKey string
	// HistoryLimit is the number of transcript messages sent as context to the openai
	// backend. Default 40; negative sends none.
	HistoryLimit int
	// Replicas is the number of JetStream replicas of the idempotency bucket and the stream
	// of accepted runs (bus.replicas).
	// Default 1.
	Replicas int
	// LegacyDedupePath is the file where an earlier version remembered finished runs
	// (<state>/dedupe/agent.json): read once into the bucket and renamed *.migrated.
	// Default "": nothing to migrate.
	LegacyDedupePath string
	// Getenv reads the environment (the OpenAI API key). Default os.Getenv.
	Getenv func(string) string
	// Heartbeat is how often a queued or running agent run publishes a heartbeat event.
	// Default wire.RunHeartbeat; waiters assume that value.
	Heartbeat time.Duration
	// RunAckWait is how long the stream of accepted runs waits for word of a delivered run
	// before it delivers it again: progress is reported every third of it while the run
	// waits or runs, and a run held by a crashed service runs again after it. Default 30s.
	RunAckWait time.Duration
	// Now stamps events and transcript messages. Default time.Now. Deadlines and the
	// chat delta interval use the real monotonic clock.
	Now func() time.Time
	// HTTPClient is used by the openai backend. Default a client without an overall
	// timeout (each run is bounded by its deadline).
	HTTPClient *http.Client
}

// OpenAIConfig configures the openai backend (any OpenAI-compatible chat completions API).
type OpenAIConfig struct {
	// BaseURL of the API, e.g. http://127.0.0.1:11434/v1 for Ollama. Default
	// https://api.openai.com/v1.
	BaseURL string
	// Model name. Required when Backend is "openai".
	Model string
	// APIKeyEnv names the environment variable holding the API key. Default
	// OPENAI_API_KEY. The key may be missing only for a loopback BaseURL.
	APIKeyEnv string
	// SystemPrompt is sent first as the system message when not empty.
	SystemPrompt string
}

// withDefaults validates cfg and returns it with defaults applied.
func (cfg Config) withDefaults() (Config, error) {
	switch cfg.Backend {
	case BackendNone:
	case BackendCommand:
		if len(cfg.Command) == 0 || cfg.Command[0] == "" {
			return cfg, errors.New(`agent: Command is required when Backend is "command"`)
		}
	case BackendOpenAI:
		if cfg.OpenAI.Model == "" {
			return cfg, errors.New(`agent: OpenAI.Model is required when Backend is "openai"`)
		}
	default:
		return cfg, fmt.Errorf("agent: unknown Backend %q (want %q, %q or empty)", cfg.Backend, BackendCommand, BackendOpenAI)
	}
	if cfg.Timeout < 0 {
		return cfg, fmt.Errorf("agent: Timeout %s is negative", cfg.Timeout)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	for _, f := range []struct {
		name string
		v    *int
		def  int
	}{{"MaxReplyBytes", &cfg.MaxReplyBytes, DefaultMaxReplyBytes}, {"MaxPayload", &cfg.MaxPayload, DefaultMaxPayload}} {
		if *f.v < 0 {
			return cfg, fmt.Errorf("agent: %s %d is negative", f.name, *f.v)
		}
		if *f.v == 0 {
			*f.v = f.def
		}
	}
	if cfg.MaxConcurrent < 0 {
		return cfg, fmt.Errorf("agent: MaxConcurrent %d is negative", cfg.MaxConcurrent)
	}
	if cfg.MaxConcurrent == 0 {
		cfg.MaxConcurrent = DefaultMaxConcurrent
	}
	if cfg.ThinkingDefault == "" {
		cfg.ThinkingDefault = DefaultThinking
	}
	level, explicit, ok := normalizeThinking(cfg.ThinkingDefault)
	if !ok || !explicit {
		return cfg, fmt.Errorf("agent: ThinkingDefault %q is not a thinking level (%s)", cfg.ThinkingDefault, levelList)
	}
	cfg.ThinkingDefault = level
	if cfg.MainKey == "" {
		cfg.MainKey = DefaultMainKey
	}
	if cfg.HistoryLimit == 0 {
		cfg.HistoryLimit = DefaultHistoryLimit
	}
	if cfg.OpenAI.BaseURL == "" {
		cfg.OpenAI.BaseURL = DefaultOpenAIBaseURL
	}
	u, err := url.Parse(cfg.OpenAI.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return cfg, fmt.Errorf("agent: OpenAI.BaseURL %q is not an http(s) URL", cfg.OpenAI.BaseURL)
	}
	cfg.OpenAI.BaseURL = strings.TrimRight(cfg.OpenAI.BaseURL, "/")
	if cfg.OpenAI.APIKeyEnv == "" {
		cfg.OpenAI.APIKeyEnv = DefaultOpenAIAPIKeyEnv
	}
	if cfg.Getenv == nil {
		cfg.Getenv = os.Getenv
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = wire.RunHeartbeat
	}
	if cfg.RunAckWait <= 0 {
		cfg.RunAckWait = DefaultRunAckWait
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{}
	}
	cfg.Command = append([]string(nil), cfg.Command...)
	return cfg, nil
}

// levelList names the thinking levels for error messages.
const levelList = "off, minimal, low, medium or high"

// normalizeThinking maps a requested thinking level or alias to a level. explicit is false
// for "" and "default" (use the session's level); ok is false for anything unknown.
func normalizeThinking(s string) (level string, explicit, ok bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "default":
		return "", false, true
	case "off":
		return "off", true, true
	case "minimal", "think":
		return "minimal", true, true
	case "low":
		return "low", true, true
	case "medium", "harder":
		return "medium", true, true
	case "high", "ultrathink", "max":
		return "high", true, true
	}
	return "", false, false
}
