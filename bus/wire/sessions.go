package wire

import "github.com/clawdis/clawdis/schemas"

// Session is one entry of the session store as the sessions service returns it.
type Session struct {
	SessionKey    string `json:"sessionKey"`
	SessionID     string `json:"sessionId"`
	UpdatedAt     int64  `json:"updatedAt"` // unix ms
	ThinkingLevel string `json:"thinkingLevel,omitempty"`
	LastChannel   string `json:"lastChannel,omitempty"`
	LastTo        string `json:"lastTo,omitempty"`
	// Created is true when this request created the entry.
	Created bool `json:"created,omitempty"`
}

// SessionResolve asks for the session of SessionKey, creating it (with a new random
// session id, or SessionID when given) when it does not exist. A SessionID that differs
// from the stored one points the key at that session from now on.
type SessionResolve struct {
	SessionKey string `json:"sessionKey"`
	SessionID  string `json:"sessionId,omitempty"`
}

// SessionUpdate changes the fields that are not nil, creating the session when missing.
type SessionUpdate struct {
	SessionKey    string  `json:"sessionKey"`
	ThinkingLevel *string `json:"thinkingLevel,omitempty"`
	LastChannel   *string `json:"lastChannel,omitempty"`
	LastTo        *string `json:"lastTo,omitempty"`
}

// TranscriptAppend appends messages, in order, to the transcript of the session of
// SessionKey (resolved or created as with SessionResolve) and bumps its updatedAt.
//
// RunKey, when set, names the run the messages belong to (the agent's idempotency key of
// it) and makes the append idempotent: a message whose role the run already has among the
// transcript's last lines is not appended again. A run that a restart runs again from the
// start therefore adds its user message and its reply once (SPEC §13).
//
// The reply is a TranscriptAppended.
type TranscriptAppend struct {
	SessionKey string                `json:"sessionKey"`
	SessionID  string                `json:"sessionId,omitempty"`
	Messages   []schemas.ChatMessage `json:"messages"`
	RunKey     string                `json:"runKey,omitempty"`
}

// TranscriptAppended answers TranscriptAppend: the session, and for an append with a
// RunKey the reply that run had appended before, if any, so that a run that runs again
// after a restart goes on with the reply it stored instead of asking the backend again.
type TranscriptAppended struct {
	Session
	RunReply *schemas.ChatMessage `json:"runReply,omitempty"`
}

// HistoryRequest reads the newest Limit messages of a session's transcript, oldest first,
// trimmed from the oldest end so the encoded result stays under MaxBytes (0: no byte bound).
// Limit 0 means the default 200; more than 1000 is an INVALID_REQUEST. The messages of the
// run ExceptRun (a TranscriptAppend RunKey) are left out: a run that runs again reads the
// history it had the first time.
type HistoryRequest struct {
	SessionKey string `json:"sessionKey"`
	Limit      int    `json:"limit,omitempty"`
	MaxBytes   int    `json:"maxBytes,omitempty"`
	ExceptRun  string `json:"exceptRun,omitempty"`
}
