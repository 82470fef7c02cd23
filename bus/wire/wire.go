// Package wire holds what travels on the bus besides client params: the one table of error
// codes, header names, small payload types shared by services and the edge, and the
// request/respond helpers that turn bus failures into protocol errors.
package wire

import (
	"encoding/json"
	"fmt"

	"github.com/clawdis/clawdis/schemas"
)

// Error codes of the wire protocol (SPEC §5.1). This is the only table of them.
const (
	CodeNotLinked      = "NOT_LINKED"
	CodeAgentTimeout   = "AGENT_TIMEOUT"
	CodeInvalidRequest = "INVALID_REQUEST"
	CodeUnavailable    = "UNAVAILABLE"
)

// Codes lists every error code with what it means.
var Codes = map[string]string{
	CodeNotLinked:      "WhatsApp is not linked",
	CodeAgentTimeout:   "the agent run exceeded its deadline",
	CodeInvalidRequest: "the frame or its params are invalid",
	CodeUnavailable:    "shutting down, or a provider or service is unavailable",
}

// Header names set on bus requests by the edge.
const (
	HeaderConnID     = "Clawdis-Conn-Id"
	HeaderClientMode = "Clawdis-Client-Mode"
	HeaderRequestID  = "Clawdis-Request-Id"
)

// Error is a protocol error carried over the bus. Services return it from handlers; the edge
// turns it into a res frame's error unchanged.
type Error struct {
	Code         string          `json:"code"`
	Message      string          `json:"message"`
	Details      json.RawMessage `json:"details,omitempty"`
	Retryable    bool            `json:"retryable,omitempty"`
	RetryAfterMs int64           `json:"retryAfterMs,omitempty"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Invalid returns an INVALID_REQUEST error.
func Invalid(format string, args ...any) *Error {
	return &Error{Code: CodeInvalidRequest, Message: fmt.Sprintf(format, args...)}
}

// Unavailable returns an UNAVAILABLE error.
func Unavailable(retryable bool, format string, args ...any) *Error {
	return &Error{Code: CodeUnavailable, Message: fmt.Sprintf(format, args...), Retryable: retryable}
}

// ClientPresence events.
const (
	ClientConnect    = "connect"
	ClientDisconnect = "disconnect"
)

// ClientPresence is what the edge tells the presence service when a non-cli client connects
// or disconnects (subject.PresenceClient).
type ClientPresence struct {
	// Key identifies the entry: the client's instanceId, else its connId.
	Key        string `json:"key"`
	Event      string `json:"event"` // ClientConnect or ClientDisconnect
	InstanceID string `json:"instanceId,omitempty"`
	Host       string `json:"host,omitempty"`
	IP         string `json:"ip,omitempty"`
	Version    string `json:"version,omitempty"`
	Mode       string `json:"mode,omitempty"`
}

// SystemEventQueue is the queued system-event texts, oldest first.
type SystemEventQueue struct {
	Events []string `json:"events"`
}

// Inbound outcomes of wire.InboundOutcome.
const (
	InboundAnswered    = "answered"     // the reply was sent
	InboundNotAnswered = "not_answered" // decided not to answer (Reason says why)
	InboundRetry       = "retry"        // the agent or provider was unavailable; delivered again later
	InboundGivenUp     = "given_up"     // no final outcome in its allowed deliveries
)

// InboundOutcome is the payload of subject.InboundOutcome: what autoreply made of one
// delivery of an inbound message.
type InboundOutcome struct {
	Provider string `json:"provider"`
	Outcome  string `json:"outcome"` // one of the Inbound* outcomes
	Reason   string `json:"reason,omitempty"`
}

// ProviderState is the payload of a provider state event (subject.ProviderState).
type ProviderState struct {
	Provider string `json:"provider"`
	// State is one of the provider's states (schemas.Web* or schemas.Telegram*).
	State      string `json:"state"`
	Linked     bool   `json:"linked,omitempty"`
	Connected  bool   `json:"connected,omitempty"`
	Configured bool   `json:"configured,omitempty"`
	// AuthAtMs is when the WhatsApp credentials were created (unix ms), 0 if unknown.
	AuthAtMs  int64  `json:"authAtMs,omitempty"`
	Self      string `json:"self,omitempty"` // linked number or bot username
	LastError string `json:"lastError,omitempty"`
	// Probe is the last background identity check (Telegram getMe), nil before the first.
	Probe *schemas.TelegramProbe `json:"probe,omitempty"`
	Ts    int64                  `json:"ts"`
}

// SessionsSummary answers subject.SessionsSummary: the session store's path, its size and
// its most recently updated sessions, newest first.
type SessionsSummary struct {
	Path     string        `json:"path"`
	Count    int           `json:"count"`
	Sessions []SessionInfo `json:"sessions"`
}

// SessionInfo is one session of the store.
type SessionInfo struct {
	Key           string `json:"key"`
	SessionID     string `json:"sessionId"`
	UpdatedAt     int64  `json:"updatedAt"` // unix ms, 0 if unknown
	ThinkingLevel string `json:"thinkingLevel,omitempty"`
}
