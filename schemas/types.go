package schemas

import "encoding/json"

// ProtocolVersion is the only protocol version this gateway speaks.
const ProtocolVersion = 1

// Frame type discriminators.
const (
	TypeHello      = "hello"
	TypeHelloOK    = "hello-ok"
	TypeHelloError = "hello-error"
	TypeReq        = "req"
	TypeRes        = "res"
	TypeEvent      = "event"
)

// Event names.
const (
	EventTick     = "tick"
	EventPresence = "presence"
	EventHealth   = "health"
	EventAgent    = "agent"
	EventChat     = "chat"
	EventShutdown = "shutdown"
)

// Chat event states (SPEC §6.8).
const (
	ChatStateDelta   = "delta"
	ChatStateFinal   = "final"
	ChatStateError   = "error"
	ChatStateAborted = "aborted"
)

// Agent run statuses (SPEC §6.6) and the chat.send status.
const (
	RunAccepted = "accepted"
	RunStarted  = "started"
	RunOK       = "ok"
	RunTimeout  = "timeout"
	RunError    = "error"
	RunAborted  = "aborted"
)

// Method names.
const (
	MethodHealth         = "health"
	MethodStatus         = "status"
	MethodSystemPresence = "system-presence"
	MethodSystemEvent    = "system-event"
	MethodSend           = "send"
	MethodAgent          = "agent"
	MethodChatHistory    = "chat.history"
	MethodChatSend       = "chat.send"
	MethodChatAbort      = "chat.abort"
	MethodSessionsList   = "sessions.list"
	MethodSessionsReset  = "sessions.reset"
	MethodWebLoginStart  = "web.login.start"
	MethodWebLoginWait   = "web.login.wait"
)

// Hello is the client's first frame.
type Hello struct {
	Type        string     `json:"type"`
	MinProtocol int        `json:"minProtocol"`
	MaxProtocol int        `json:"maxProtocol"`
	Client      ClientInfo `json:"client"`
	Caps        []string   `json:"caps,omitempty"`
	Auth        *HelloAuth `json:"auth,omitempty"`
	Locale      string     `json:"locale,omitempty"`
	UserAgent   string     `json:"userAgent,omitempty"`
}

// ClientInfo identifies a connecting client.
type ClientInfo struct {
	Name       string `json:"name"`
	Version    string `json:"version"`
	Platform   string `json:"platform"`
	Mode       string `json:"mode"`
	InstanceID string `json:"instanceId,omitempty"`
}

// HelloAuth carries the shared gateway token.
type HelloAuth struct {
	Token string `json:"token,omitempty"`
}

// HelloOK is the server's answer to a valid hello.
type HelloOK struct {
	Type     string     `json:"type"`
	Protocol int        `json:"protocol"`
	Server   ServerInfo `json:"server"`
	Features Features   `json:"features"`
	Snapshot Snapshot   `json:"snapshot"`
	Policy   Policy     `json:"policy"`
}

// ServerInfo describes the gateway and the connection.
type ServerInfo struct {
	Version string `json:"version"`
	Commit  string `json:"commit,omitempty"`
	Host    string `json:"host,omitempty"`
	ConnID  string `json:"connId"`
}

// Features lists what this gateway serves.
type Features struct {
	Methods []string `json:"methods"`
	Events  []string `json:"events"`
}

// Snapshot is the state a client renders right after connecting.
type Snapshot struct {
	Presence     []PresenceEntry `json:"presence"`
	Health       HealthSummary   `json:"health"`
	StateVersion StateVersion    `json:"stateVersion"`
	UptimeMs     int64           `json:"uptimeMs"`
}

// StateVersion holds the gateway-wide, only-growing state counters.
type StateVersion struct {
	Presence int64 `json:"presence"`
	Health   int64 `json:"health"`
}

// Policy tells the client the connection's limits.
type Policy struct {
	MaxPayload       int64 `json:"maxPayload"`
	MaxBufferedBytes int64 `json:"maxBufferedBytes"`
	TickIntervalMs   int64 `json:"tickIntervalMs"`
}

// HelloError refuses a handshake.
type HelloError struct {
	Type             string `json:"type"`
	Reason           string `json:"reason"`
	ExpectedProtocol int    `json:"expectedProtocol,omitempty"`
	MinClient        string `json:"minClient,omitempty"`
}

// Request is a client request frame.
type Request struct {
	Type   string          `json:"type"`
	ID     string          `json:"id"`
	Method string          `json:"method"`
	Params json.RawMessage `json:"params,omitempty"`
}

// Response answers a request.
type Response struct {
	Type    string          `json:"type"`
	ID      string          `json:"id"`
	OK      bool            `json:"ok"`
	Payload json.RawMessage `json:"payload,omitempty"`
	Error   *ErrorShape     `json:"error,omitempty"`
}

// ErrorShape is the error of a failed response.
type ErrorShape struct {
	Code         string          `json:"code"`
	Message      string          `json:"message"`
	Details      json.RawMessage `json:"details,omitempty"`
	Retryable    *bool           `json:"retryable,omitempty"`
	RetryAfterMs *int64          `json:"retryAfterMs,omitempty"`
}

// Event is a server-pushed event frame.
type Event struct {
	Type         string          `json:"type"`
	Event        string          `json:"event"`
	Payload      json.RawMessage `json:"payload,omitempty"`
	Seq          *int64          `json:"seq,omitempty"`
	StateVersion *StateVersion   `json:"stateVersion,omitempty"`
}

// PresenceEntry is one presence beacon (SPEC §7).
type PresenceEntry struct {
	Host             string   `json:"host,omitempty"`
	IP               string   `json:"ip,omitempty"`
	Version          string   `json:"version,omitempty"`
	Mode             string   `json:"mode,omitempty"`
	LastInputSeconds *int64   `json:"lastInputSeconds,omitempty"`
	Reason           string   `json:"reason,omitempty"`
	Tags             []string `json:"tags,omitempty"`
	Text             string   `json:"text,omitempty"`
	Ts               int64    `json:"ts"`
	InstanceID       string   `json:"instanceId,omitempty"`
}

// HealthSummary is the payload of the health method and event (SPEC §6.1).
type HealthSummary struct {
	OK               bool            `json:"ok"`
	Ts               int64           `json:"ts"`
	DurationMs       int64           `json:"durationMs"`
	Web              WebHealth       `json:"web"`
	Telegram         TelegramHealth  `json:"telegram"`
	HeartbeatSeconds int64           `json:"heartbeatSeconds"`
	Sessions         SessionsHealth  `json:"sessions"`
	Services         []ServiceHealth `json:"services"`
}

// WebHealth is the WhatsApp section of the health summary.
type WebHealth struct {
	Linked    bool   `json:"linked"`
	Connected bool   `json:"connected"`
	State     string `json:"state"`
	AuthAgeMs *int64 `json:"authAgeMs"`
	LastError string `json:"lastError,omitempty"`
}

// WhatsApp connection states.
const (
	WebUnlinked     = "unlinked"
	WebConnecting   = "connecting"
	WebConnected    = "connected"
	WebReconnecting = "reconnecting"
	WebLoggedOut    = "logged_out"
	WebReplaced     = "replaced"
	WebDisabled     = "disabled"
)

// TelegramHealth is the Telegram section of the health summary.
type TelegramHealth struct {
	Configured bool           `json:"configured"`
	State      string         `json:"state"`
	Probe      *TelegramProbe `json:"probe,omitempty"`
}

// Telegram states.
const (
	TelegramUnconfigured = "unconfigured"
	TelegramStarting     = "starting"
	TelegramPolling      = "polling"
	TelegramWebhook      = "webhook"
	TelegramError        = "error"
)

// TelegramProbe is the result of the background getMe probe.
type TelegramProbe struct {
	OK        bool         `json:"ok"`
	Status    *int         `json:"status"`
	Error     *string      `json:"error"`
	ElapsedMs int64        `json:"elapsedMs"`
	Bot       *TelegramBot `json:"bot,omitempty"`
}

// TelegramBot identifies the bot.
type TelegramBot struct {
	ID       int64  `json:"id"`
	Username string `json:"username"`
}

// SessionsHealth summarises the session store.
type SessionsHealth struct {
	Path   string          `json:"path"`
	Count  int             `json:"count"`
	Recent []SessionRecent `json:"recent"`
}

// SessionRecent is one recently updated session.
type SessionRecent struct {
	Key       string `json:"key"`
	UpdatedAt *int64 `json:"updatedAt"`
	Age       *int64 `json:"age"`
}

// ServiceHealth is one service's liveness.
type ServiceHealth struct {
	Name      string `json:"name"`
	OK        bool   `json:"ok"`
	LatencyMs int64  `json:"latencyMs"`
}

// StatusSummary is the payload of the status method (SPEC §6.2).
type StatusSummary struct {
	Web                StatusWeb      `json:"web"`
	HeartbeatSeconds   int64          `json:"heartbeatSeconds"`
	ProviderSummary    []string       `json:"providerSummary"`
	QueuedSystemEvents []string       `json:"queuedSystemEvents"`
	Sessions           StatusSessions `json:"sessions"`
	ConfigPath         string         `json:"configPath,omitempty"` // the gateway's config file, or "no config file; defaults"
	WebChatURL         string         `json:"webChatUrl,omitempty"` // while WebChat runs
}

// StatusWeb is the WhatsApp part of the status summary.
type StatusWeb struct {
	Linked    bool   `json:"linked"`
	AuthAgeMs *int64 `json:"authAgeMs"`
}

// StatusSessions is the sessions part of the status summary.
type StatusSessions struct {
	Path     string          `json:"path"`
	Count    int             `json:"count"`
	Defaults SessionDefaults `json:"defaults"`
	Recent   []StatusSession `json:"recent"`
}

// SessionDefaults names the configured agent backend.
type SessionDefaults struct {
	Backend string `json:"backend"`
	Model   string `json:"model,omitempty"`
}

// StatusSession is one session line of the status summary.
type StatusSession struct {
	Key           string `json:"key"`
	Kind          string `json:"kind"`
	SessionID     string `json:"sessionId"`
	UpdatedAt     int64  `json:"updatedAt"`
	Age           int64  `json:"age"`
	ThinkingLevel string `json:"thinkingLevel,omitempty"`
}

// SystemEventParams are the params of the system-event method (SPEC §6.4).
type SystemEventParams struct {
	Text             string   `json:"text"`
	InstanceID       string   `json:"instanceId,omitempty"`
	Host             string   `json:"host,omitempty"`
	IP               string   `json:"ip,omitempty"`
	Mode             string   `json:"mode,omitempty"`
	Version          string   `json:"version,omitempty"`
	Reason           string   `json:"reason,omitempty"`
	LastInputSeconds *int64   `json:"lastInputSeconds,omitempty"`
	Tags             []string `json:"tags,omitempty"`
}

// OKPayload is the {ok:true} payload.
type OKPayload struct {
	OK bool `json:"ok"`
}

// PresencePayload is the payload of the presence event.
type PresencePayload struct {
	Presence []PresenceEntry `json:"presence"`
}

// TickPayload is the payload of the tick event.
type TickPayload struct {
	Ts int64 `json:"ts"`
}

// ShutdownPayload is the payload of the shutdown event.
type ShutdownPayload struct {
	Reason            string `json:"reason"`
	RestartExpectedMs *int64 `json:"restartExpectedMs,omitempty"`
}

// SendParams are the params of the send method (SPEC §6.5).
type SendParams struct {
	To             string `json:"to"`
	Message        string `json:"message"`
	MediaURL       string `json:"mediaUrl,omitempty"`
	Provider       string `json:"provider,omitempty"`
	IdempotencyKey string `json:"idempotencyKey"`
}

// SendResult is the payload of a successful send.
type SendResult struct {
	RunID     string `json:"runId"`
	MessageID string `json:"messageId"`
	Provider  string `json:"provider"`
	ToJID     string `json:"toJid,omitempty"`
	ChatID    string `json:"chatId,omitempty"`
}

// AgentParams are the params of the agent method (SPEC §6.6).
type AgentParams struct {
	Message        string `json:"message"`
	To             string `json:"to,omitempty"`
	SessionID      string `json:"sessionId,omitempty"`
	SessionKey     string `json:"sessionKey,omitempty"`
	Thinking       string `json:"thinking,omitempty"`
	Deliver        bool   `json:"deliver,omitempty"`
	Channel        string `json:"channel,omitempty"`
	Timeout        *int64 `json:"timeout,omitempty"`
	IdempotencyKey string `json:"idempotencyKey"`
}

// AgentResult is the payload of both agent responses.
type AgentResult struct {
	RunID   string `json:"runId"`
	Status  string `json:"status"`
	Summary string `json:"summary,omitempty"`
	Text    string `json:"text,omitempty"`
}

// AgentEventPayload is the payload of an agent event.
type AgentEventPayload struct {
	RunID      string          `json:"runId"`
	SessionKey string          `json:"sessionKey,omitempty"`
	Seq        int64           `json:"seq"`
	Stream     string          `json:"stream"`
	Ts         int64           `json:"ts"`
	Data       json.RawMessage `json:"data"`
}

// ChatHistoryParams are the params of chat.history (SPEC §6.7).
type ChatHistoryParams struct {
	SessionKey string `json:"sessionKey"`
	Limit      *int   `json:"limit,omitempty"`
}

// ChatHistoryResult is the payload of chat.history.
type ChatHistoryResult struct {
	SessionKey    string        `json:"sessionKey"`
	SessionID     string        `json:"sessionId,omitempty"`
	Messages      []ChatMessage `json:"messages"`
	ThinkingLevel string        `json:"thinkingLevel"`
}

// ChatMessage is one transcript message.
type ChatMessage struct {
	Role      string        `json:"role"`
	Content   []ChatContent `json:"content"`
	Timestamp int64         `json:"timestamp"`
	Aborted   bool          `json:"aborted,omitempty"` // a reply cut short by chat.abort
	Channel   string        `json:"channel,omitempty"` // the provider a user message came from
	Sender    string        `json:"sender,omitempty"`  // who sent it there
}

// ChatContent is a text or image part of a message.
type ChatContent struct {
	Type     string `json:"type"`
	Text     string `json:"text,omitempty"`
	MimeType string `json:"mimeType,omitempty"`
	Data     string `json:"data,omitempty"`
}

// ChatSendParams are the params of chat.send (SPEC §6.8).
type ChatSendParams struct {
	SessionKey     string           `json:"sessionKey"`
	Message        string           `json:"message"`
	Thinking       string           `json:"thinking,omitempty"`
	Deliver        bool             `json:"deliver,omitempty"`
	Attachments    []ChatAttachment `json:"attachments,omitempty"`
	TimeoutMs      *int64           `json:"timeoutMs,omitempty"`
	IdempotencyKey string           `json:"idempotencyKey"`
}

// ChatAttachment is an attachment of chat.send.
type ChatAttachment struct {
	Type     string `json:"type"`
	MimeType string `json:"mimeType"`
	FileName string `json:"fileName,omitempty"`
	Content  string `json:"content"`
}

// ChatSendResult is the immediate payload of chat.send.
type ChatSendResult struct {
	RunID  string `json:"runId"`
	Status string `json:"status"`
}

// ChatEventPayload is the payload of a chat event.
type ChatEventPayload struct {
	RunID        string       `json:"runId"`
	SessionKey   string       `json:"sessionKey"`
	Seq          int64        `json:"seq"`
	State        string       `json:"state"`
	Message      *ChatMessage `json:"message,omitempty"`
	ErrorMessage string       `json:"errorMessage,omitempty"`
}

// ChatAbortParams are the params of chat.abort (SPEC §6.9).
type ChatAbortParams struct {
	SessionKey string `json:"sessionKey"`
	RunID      string `json:"runId,omitempty"`
}

// ChatAbortResult is the payload of chat.abort.
type ChatAbortResult struct {
	OK      bool     `json:"ok"`
	Aborted []string `json:"aborted"`
}

// SessionsListParams are the params of sessions.list (SPEC §6.10).
type SessionsListParams struct {
	Limit *int `json:"limit,omitempty"`
}

// SessionsListResult is the payload of sessions.list, newest first.
type SessionsListResult struct {
	Sessions []SessionRow `json:"sessions"`
}

// SessionRow is one session of sessions.list.
type SessionRow struct {
	Key                string `json:"key"`
	SessionID          string `json:"sessionId"`
	UpdatedAt          int64  `json:"updatedAt"`
	ThinkingLevel      string `json:"thinkingLevel,omitempty"`
	LastChannel        string `json:"lastChannel,omitempty"`
	LastTo             string `json:"lastTo,omitempty"`
	MessageCount       *int   `json:"messageCount,omitempty"`
	LastMessagePreview string `json:"lastMessagePreview,omitempty"`
}

// SessionsResetParams are the params of sessions.reset (SPEC §6.11).
type SessionsResetParams struct {
	SessionKey string `json:"sessionKey"`
}

// SessionsResetResult is the payload of sessions.reset.
type SessionsResetResult struct {
	SessionKey string `json:"sessionKey"`
	SessionID  string `json:"sessionId"`
}

// WebLoginStartParams are the params of web.login.start (SPEC §6.12).
type WebLoginStartParams struct {
	Force bool `json:"force,omitempty"`
}

// WebLoginStartResult is the payload of web.login.start.
type WebLoginStartResult struct {
	QR          string `json:"qr"`
	QRDataURL   string `json:"qrDataUrl"`
	ExpiresInMs int64  `json:"expiresInMs"`
}

// WebLoginWaitParams are the params of web.login.wait.
type WebLoginWaitParams struct {
	TimeoutMs *int64 `json:"timeoutMs,omitempty"`
}

// WebLoginWaitResult is the payload of web.login.wait.
type WebLoginWaitResult struct {
	Linked      bool   `json:"linked"`
	JID         string `json:"jid,omitempty"`
	Phone       string `json:"phone,omitempty"`
	QR          string `json:"qr,omitempty"`
	QRDataURL   string `json:"qrDataUrl,omitempty"`
	ExpiresInMs int64  `json:"expiresInMs,omitempty"`
}
