// Package config loads the clawdis gateway configuration: the JSON5 file described in SPEC §3,
// its defaults, the migration of the earlier gateway's keys, the environment overrides and the
// resolution of the state directory and config file paths (SPEC §2, §3).
//
// The config schema, schemas/config.schema.json, is the one description of every key: its
// type, constraints, default and meaning. Parse validates against it, Default is decoded from
// its defaults, and the Config struct below only gives each key a Go type (a test keeps the
// two in step).
//
// Parse turns file bytes into a validated Config plus warnings (one per unknown key); errors are
// single lines naming the file, the key path and the problem, and never contain the value of a
// secret. Load reads a file (a missing file means all defaults). The zero Config is not useful
// on its own: start from Default, which Parse and Load already do.
package config

import "time"

// Config is the whole gateway configuration. JSON keys are the lowerCamelCase names in the
// `json` tags. Adding a key means adding it to schemas/config.schema.json (type, default,
// description), a field here, a row in docs/configuration.md and, when it needs one, a line in
// the checks table. Defaults and constraints are in the schema, not repeated here.
type Config struct {
	Gateway  Gateway  `json:"gateway"`
	WebChat  WebChat  `json:"webchat"`
	Agent    Agent    `json:"agent"`
	Sessions Sessions `json:"sessions"`
	Inbound  Inbound  `json:"inbound"`
	Web      Web      `json:"web"`
	Telegram Telegram `json:"telegram"`
	Logging  Logging  `json:"logging"`
	Bus      Bus      `json:"bus"`
}

// Gateway configures the WebSocket edge.
type Gateway struct {
	// Port of the WebSocket listener.
	Port int `json:"port"`
	// Bind is the listen address, without a port.
	Bind string `json:"bind"`
	// Token is the shared secret clients present; empty means none. Secret.
	Token string `json:"token"`
	// TickIntervalMs is the interval of tick events.
	TickIntervalMs int `json:"tickIntervalMs"`
	// HandshakeTimeoutMs bounds the hello handshake.
	HandshakeTimeoutMs int `json:"handshakeTimeoutMs"`
	// MaxPayload is the largest frame accepted, in bytes.
	MaxPayload int `json:"maxPayload"`
	// MaxBufferedBytes bounds a connection's outgoing queue.
	MaxBufferedBytes int `json:"maxBufferedBytes"`
	// AllowedOrigins lists browser origins allowed besides loopback ones.
	AllowedOrigins []string `json:"allowedOrigins"`
	// AllowedHosts lists Host names accepted in HTTP requests besides loopback names and the
	// bind address.
	AllowedHosts []string `json:"allowedHosts"`
	// MaxConnections bounds the WebSocket connections at once.
	MaxConnections int `json:"maxConnections"`
	// AuthRateLimit throttles failed authentication per client address.
	AuthRateLimit AuthRateLimit `json:"authRateLimit"`
}

// AuthRateLimit throttles failed authentication (SPEC §5.2).
type AuthRateLimit struct {
	// MaxFailures within WindowMs start a lockout.
	MaxFailures int `json:"maxFailures"`
	// WindowMs is the window failures are counted in.
	WindowMs int `json:"windowMs"`
	// LockoutMs is how long a locked-out address is refused.
	LockoutMs int `json:"lockoutMs"`
}

// Window is WindowMs as a duration.
func (a AuthRateLimit) Window() time.Duration { return ms(a.WindowMs) }

// Lockout is LockoutMs as a duration.
func (a AuthRateLimit) Lockout() time.Duration { return ms(a.LockoutMs) }

// TickInterval is TickIntervalMs as a duration.
func (g Gateway) TickInterval() time.Duration { return ms(g.TickIntervalMs) }

// HandshakeTimeout is HandshakeTimeoutMs as a duration.
func (g Gateway) HandshakeTimeout() time.Duration { return ms(g.HandshakeTimeoutMs) }

// WebChat configures the WebChat HTTP server.
type WebChat struct {
	// Enabled turns the WebChat server on.
	Enabled bool `json:"enabled"`
	// Port of the WebChat HTTP server.
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
	// Backend is "command", "openai" or "" (no agent configured).
	Backend string `json:"backend"`
	// Command is the argv of the command backend, with the placeholders {{Body}},
	// {{BodyFile}}, {{SessionId}}, {{SessionKey}}, {{From}}, {{Thinking}}. Migrated from
	// inbound.reply.command.
	Command []string `json:"command"`
	// OpenAI configures the openai backend.
	OpenAI OpenAI `json:"openai"`
	// TimeoutSeconds bounds one agent run. Migrated from inbound.reply.timeoutSeconds.
	TimeoutSeconds int `json:"timeoutSeconds"`
	// MaxConcurrent is the number of runs at once.
	MaxConcurrent int `json:"maxConcurrent"`
	// ThinkingDefault is one of ThinkingLevels.
	ThinkingDefault string `json:"thinkingDefault"`
	// MaxReplyBytes is the longest reply kept; a longer one is cut and marked.
	MaxReplyBytes int `json:"maxReplyBytes"`
}

// Timeout is TimeoutSeconds as a duration.
func (a Agent) Timeout() time.Duration { return time.Duration(a.TimeoutSeconds) * time.Second }

// OpenAI configures an OpenAI-compatible chat completions backend.
type OpenAI struct {
	// BaseURL of the API; an http(s) URL.
	BaseURL string `json:"baseUrl"`
	// Model name.
	Model string `json:"model"`
	// APIKeyEnv names the environment variable holding the API key.
	APIKeyEnv string `json:"apiKeyEnv"`
	// SystemPrompt is sent first in every request.
	SystemPrompt string `json:"systemPrompt"`
}

// Sessions configures the session store.
type Sessions struct {
	// MainKey is the session key of direct chats. Migrated from inbound.reply.session.mainKey.
	MainKey string `json:"mainKey"`
	// HistoryLimit is the number of messages of context sent to an openai backend.
	HistoryLimit int `json:"historyLimit"`
}

// Inbound configures which inbound WhatsApp messages trigger replies.
type Inbound struct {
	// AllowFrom lists senders (E.164 or "*") allowed to trigger replies. Unset or empty: only
	// the linked number itself.
	AllowFrom []string `json:"allowFrom"`
	// GroupChat configures group chats.
	GroupChat GroupChat `json:"groupChat"`
	// Reply holds the earlier gateway's keys, read only for migration into Agent and Sessions.
	Reply Reply `json:"reply"`
}

// GroupChat configures replies in group chats.
type GroupChat struct {
	// RequireMention replies in groups only when mentioned.
	RequireMention bool `json:"requireMention"`
	// MentionPatterns are extra regular expressions (Go RE2 syntax, checked at load) that count
	// as a mention.
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
	// HeartbeatSeconds is the interval of connection heartbeats.
	HeartbeatSeconds int `json:"heartbeatSeconds"`
}

// Heartbeat is HeartbeatSeconds as a duration.
func (w Web) Heartbeat() time.Duration { return time.Duration(w.HeartbeatSeconds) * time.Second }

// Reconnect is an exponential backoff policy.
type Reconnect struct {
	// InitialMs is the first delay.
	InitialMs int `json:"initialMs"`
	// MaxMs caps the delay.
	MaxMs int `json:"maxMs"`
	// Factor multiplies the delay after each attempt.
	Factor float64 `json:"factor"`
	// Jitter is the random fraction added or removed.
	Jitter float64 `json:"jitter"`
	// MaxAttempts stops reconnecting after that many attempts; 0 is unlimited.
	MaxAttempts int `json:"maxAttempts"`
}

// Initial is InitialMs as a duration.
func (r Reconnect) Initial() time.Duration { return ms(r.InitialMs) }

// Max is MaxMs as a duration.
func (r Reconnect) Max() time.Duration { return ms(r.MaxMs) }

// Telegram configures the Telegram bot.
type Telegram struct {
	// BotToken is the bot's token; TELEGRAM_BOT_TOKEN wins over it (ApplyEnv). Secret.
	BotToken string `json:"botToken"`
	// APIRoot is the Bot API server; an http(s) URL.
	APIRoot string `json:"apiRoot"`
	// AllowFrom lists chat ids (numbers or strings in the file, always strings here) or "*".
	AllowFrom IDs `json:"allowFrom"`
	// RequireMention replies in groups only when mentioned.
	RequireMention bool `json:"requireMention"`
	// WebhookURL switches from long polling to a webhook when set; an http(s) URL.
	WebhookURL string `json:"webhookUrl"`
	// WebhookSecret is the webhook's secret token. Secret.
	WebhookSecret string `json:"webhookSecret"`
	// WebhookListen is the host:port the webhook server listens on.
	WebhookListen string `json:"webhookListen"`
	// WebhookPath is the webhook's HTTP path.
	WebhookPath string `json:"webhookPath"`
	// Proxy is a proxy URL for Bot API requests.
	Proxy string `json:"proxy"`
	// MediaMaxMb caps downloaded and sent media, in megabytes.
	MediaMaxMb int `json:"mediaMaxMb"`
}

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

// Logging configures the daemon's logs.
type Logging struct {
	// Level is the least severe level logged: debug, info, warn or error.
	Level string `json:"level"`
}

// Bus configures the embedded bus's JetStream store.
type Bus struct {
	// StoreDir is the JetStream store directory; empty means <state dir>/bus.
	StoreDir string `json:"storeDir"`
	// Replicas is the number of JetStream replicas of the gateway's streams and buckets.
	Replicas int `json:"replicas"`
}
