// Package config loads the clawdis gateway configuration: the JSON5 file described in SPEC §3,
// its defaults, the migration of the earlier gateway's keys, the environment overrides and the
// resolution of the state directory and config file paths (SPEC §2, §3).
//
// Parse turns file bytes into a validated Config plus warnings (one per unknown key); errors are
// single lines naming the file, the key path and the problem, and never contain the value of a
// secret. Load reads a file (a missing file means all defaults). The zero Config is not useful
// on its own: start from Default, which Parse and Load already do.
package config

import "time"

// Config is the whole gateway configuration. JSON keys are the lowerCamelCase names in the
// `json` tags; the walker in parse.go follows those tags, so adding a key means adding a field
// (plus, if it needs one, a line in the checks table).
type Config struct {
	Gateway  Gateway  `json:"gateway"`
	WebChat  WebChat  `json:"webchat"`
	Agent    Agent    `json:"agent"`
	Sessions Sessions `json:"sessions"`
	Inbound  Inbound  `json:"inbound"`
	Web      Web      `json:"web"`
	Telegram Telegram `json:"telegram"`
}

// Gateway configures the WebSocket edge.
type Gateway struct {
	// Port of the WebSocket listener. Default 18789.
	Port int `json:"port"`
	// Bind is the listen address. Default "127.0.0.1".
	Bind string `json:"bind"`
	// Token is the shared secret clients present; empty means none. Secret.
	Token string `json:"token"`
	// TickIntervalMs is the interval of tick events. Default 30000, at least 100.
	TickIntervalMs int `json:"tickIntervalMs"`
	// HandshakeTimeoutMs bounds the hello handshake. Default 10000, at least 100.
	HandshakeTimeoutMs int `json:"handshakeTimeoutMs"`
	// MaxPayload is the largest frame accepted, in bytes. Default 524288, at least 1024.
	MaxPayload int `json:"maxPayload"`
	// MaxBufferedBytes bounds a connection's outgoing queue. Default 1572864, at least MaxPayload.
	MaxBufferedBytes int `json:"maxBufferedBytes"`
	// AllowedOrigins lists browser origins allowed besides loopback ones. Default none.
	AllowedOrigins []string `json:"allowedOrigins"`
}

// TickInterval is TickIntervalMs as a duration.
func (g Gateway) TickInterval() time.Duration { return ms(g.TickIntervalMs) }

// HandshakeTimeout is HandshakeTimeoutMs as a duration.
func (g Gateway) HandshakeTimeout() time.Duration { return ms(g.HandshakeTimeoutMs) }

// WebChat configures the WebChat HTTP server.
type WebChat struct {
	// Enabled turns the WebChat server on. Default true.
	Enabled bool `json:"enabled"`
	// Port of the WebChat HTTP server. Default 18788.
	Port int `json:"port"`
}

// Backend names accepted in agent.backend.
const (
	BackendCommand = "command"
	BackendOpenAI  = "openai"
)

// ThinkingLevels are the values accepted in agent.thinkingDefault, lowest first.
var ThinkingLevels = []string{"off", "minimal", "low", "medium", "high"}

// Agent configures agent runs.
type Agent struct {
	// Backend is "command", "openai" or "" (no agent configured). Default "", which becomes
	// "command" when a command is configured.
	Backend string `json:"backend"`
	// Command is the argv of the command backend, with the placeholders {{Body}},
	// {{SessionId}}, {{SessionKey}}, {{From}}, {{Thinking}}. Default none; required when
	// Backend is "command". Migrated from inbound.reply.command.
	Command []string `json:"command"`
	// OpenAI configures the openai backend.
	OpenAI OpenAI `json:"openai"`
	// TimeoutSeconds bounds one agent run. Default 600, at least 1. Migrated from
	// inbound.reply.timeoutSeconds.
	TimeoutSeconds int `json:"timeoutSeconds"`
	// MaxConcurrent is the number of runs at once. Default 4, at least 1.
	MaxConcurrent int `json:"maxConcurrent"`
	// ThinkingDefault is one of ThinkingLevels. Default "off".
	ThinkingDefault string `json:"thinkingDefault"`
}

// Timeout is TimeoutSeconds as a duration.
func (a Agent) Timeout() time.Duration { return time.Duration(a.TimeoutSeconds) * time.Second }

// OpenAI configures an OpenAI-compatible chat completions backend.
type OpenAI struct {
	// BaseURL of the API. Default "https://api.openai.com/v1"; must be an http(s) URL.
	BaseURL string `json:"baseUrl"`
	// Model name. Default none; required when the backend is "openai".
	Model string `json:"model"`
	// APIKeyEnv names the environment variable holding the API key. Default "OPENAI_API_KEY".
	APIKeyEnv string `json:"apiKeyEnv"`
	// SystemPrompt is sent first in every request. Default none.
	SystemPrompt string `json:"systemPrompt"`
}

// Sessions configures the session store.
type Sessions struct {
	// MainKey is the session key of direct chats. Default "main"; must not be empty. Migrated
	// from inbound.reply.session.mainKey.
	MainKey string `json:"mainKey"`
	// HistoryLimit is the number of messages of context sent to an openai backend.
	// Default 40, at least 0.
	HistoryLimit int `json:"historyLimit"`
}

// Inbound configures which inbound WhatsApp messages trigger replies.
type Inbound struct {
	// AllowFrom lists senders (E.164 or "*") allowed to trigger replies. Default nil: only the
	// linked number itself. An explicit empty list means the same.
	AllowFrom []string `json:"allowFrom"`
	// GroupChat configures group chats.
	GroupChat GroupChat `json:"groupChat"`
	// Reply holds the earlier gateway's keys, read only for migration into Agent and Sessions.
	Reply Reply `json:"reply"`
}

// GroupChat configures replies in group chats.
type GroupChat struct {
	// RequireMention replies in groups only when mentioned. Default true.
	RequireMention bool `json:"requireMention"`
	// MentionPatterns are extra regular expressions (Go RE2 syntax, checked at load) that count
	// as a mention. Default none.
	MentionPatterns []string `json:"mentionPatterns"`
}

// Reply is the earlier gateway's inbound.reply block (migration only).
type Reply struct {
	// Mode is "command" or another earlier mode; Command is migrated only when it is "command"
	// or absent.
	Mode string `json:"mode"`
	// Command is read as agent.command when that is absent.
	Command []string `json:"command"`
	// TimeoutSeconds is read as agent.timeoutSeconds when that is absent; 0 means unset.
	TimeoutSeconds int `json:"timeoutSeconds"`
	// Session holds the earlier session settings.
	Session ReplySession `json:"session"`
}

// ReplySession is the earlier gateway's inbound.reply.session block (migration only).
type ReplySession struct {
	// MainKey is read as sessions.mainKey when that is absent.
	MainKey string `json:"mainKey"`
}

// Web configures the WhatsApp Web connection.
type Web struct {
	// Reconnect is the reconnect backoff policy.
	Reconnect Reconnect `json:"reconnect"`
	// HeartbeatSeconds is the interval of connection heartbeats. Default 60, at least 1.
	HeartbeatSeconds int `json:"heartbeatSeconds"`
}

// Heartbeat is HeartbeatSeconds as a duration.
func (w Web) Heartbeat() time.Duration { return time.Duration(w.HeartbeatSeconds) * time.Second }

// Reconnect is an exponential backoff policy.
type Reconnect struct {
	// InitialMs is the first delay. Default 2000, at least 1.
	InitialMs int `json:"initialMs"`
	// MaxMs caps the delay. Default 30000, at least InitialMs.
	MaxMs int `json:"maxMs"`
	// Factor multiplies the delay after each attempt. Default 1.8, at least 1.
	Factor float64 `json:"factor"`
	// Jitter is the random fraction added or removed. Default 0.25, between 0 and 1.
	Jitter float64 `json:"jitter"`
	// MaxAttempts stops reconnecting after that many attempts; 0 (default) is unlimited.
	MaxAttempts int `json:"maxAttempts"`
}

// Initial is InitialMs as a duration.
func (r Reconnect) Initial() time.Duration { return ms(r.InitialMs) }

// Max is MaxMs as a duration.
func (r Reconnect) Max() time.Duration { return ms(r.MaxMs) }

// Telegram configures the Telegram bot.
type Telegram struct {
	// BotToken is the bot's token; TELEGRAM_BOT_TOKEN wins over it (ApplyEnv). Default none,
	// which leaves Telegram off. Secret.
	BotToken string `json:"botToken"`
	// APIRoot is the Bot API server. Default "https://api.telegram.org"; must be an http(s) URL.
	APIRoot string `json:"apiRoot"`
	// AllowFrom lists chat ids (numbers or strings in the file, always strings here) or "*".
	// Default none.
	AllowFrom []string `json:"allowFrom" cfg:"ids"`
	// RequireMention replies in groups only when mentioned. Default true.
	RequireMention bool `json:"requireMention"`
	// WebhookURL switches from long polling to a webhook when set; an http(s) URL.
	WebhookURL string `json:"webhookUrl"`
	// WebhookSecret is the webhook's secret token. Default none. Secret.
	WebhookSecret string `json:"webhookSecret"`
	// WebhookListen is the host:port the webhook server listens on. Default "127.0.0.1:8787".
	WebhookListen string `json:"webhookListen"`
	// WebhookPath is the webhook's HTTP path. Default "/telegram-webhook"; starts with "/".
	WebhookPath string `json:"webhookPath"`
	// Proxy is a proxy URL for Bot API requests. Default none.
	Proxy string `json:"proxy"`
	// MediaMaxMb caps downloaded and sent media, in megabytes. Default 5, at least 1.
	MediaMaxMb int `json:"mediaMaxMb"`
}

// Default returns every default of SPEC §3.
func Default() Config {
	return Config{
		Gateway: Gateway{
			Port:               18789,
			Bind:               "127.0.0.1",
			TickIntervalMs:     30000,
			HandshakeTimeoutMs: 10000,
			MaxPayload:         524288,
			MaxBufferedBytes:   1572864,
		},
		WebChat: WebChat{Enabled: true, Port: 18788},
		Agent: Agent{
			OpenAI: OpenAI{
				BaseURL:   "https://api.openai.com/v1",
				APIKeyEnv: "OPENAI_API_KEY",
			},
			TimeoutSeconds:  600,
			MaxConcurrent:   4,
			ThinkingDefault: "off",
		},
		Sessions: Sessions{MainKey: "main", HistoryLimit: 40},
		Inbound:  Inbound{GroupChat: GroupChat{RequireMention: true}},
		Web: Web{
			Reconnect: Reconnect{
				InitialMs: 2000,
				MaxMs:     30000,
				Factor:    1.8,
				Jitter:    0.25,
			},
			HeartbeatSeconds: 60,
		},
		Telegram: Telegram{
			APIRoot:        "https://api.telegram.org",
			RequireMention: true,
			WebhookListen:  "127.0.0.1:8787",
			WebhookPath:    "/telegram-webhook",
			MediaMaxMb:     5,
		},
	}
}

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }
