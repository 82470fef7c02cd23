// Package subject declares every NATS subject the gateway uses. Subjects have the form
// gw.v1.<kind>.<area>.<name>[.<id>] with kind req (request-reply), evt (events) or ctl
// (internal control). No other package spells a subject as a string literal.
package subject

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
)

// Prefix is the root of every gateway subject.
const Prefix = "gw.v1"

// Request subjects (request-reply).
const (
	PresenceList    = "gw.v1.req.presence.list"                 // -> [PresenceEntry], newest first
	PresenceEvent   = "gw.v1.req.presence.event"                // system-event params -> {"ok":true}
	PresenceClient  = "gw.v1.req.presence.client"               // wire.ClientPresence -> {"ok":true}
	PresenceQueue   = "gw.v1.req.presence.queue"                // {} -> wire.SystemEventQueue (peek)
	PresenceDrain   = "gw.v1.req.presence.drain"                // {} -> wire.SystemEventQueue (take all)
	PresenceRequeue = "gw.v1.req.presence.requeue"              // wire.SystemEventQueue -> {"ok":true} (put drained events back first)
	HealthGet       = "gw.v1.req.health.get"                    // {} -> HealthSummary
	HealthStatus    = "gw.v1.req.health.status"                 // {} -> StatusSummary
	SessionsSummary = "gw.v1.req.sessions.summary"              // {"limit":N} -> wire.SessionsSummary
	SessionsResolve = "gw.v1.req.sessions.resolve"              // wire.SessionResolve -> wire.Session
	SessionsUpdate  = "gw.v1.req.sessions.update"               // wire.SessionUpdate -> wire.Session
	SessionsAppend  = "gw.v1.req.sessions.append"               // wire.TranscriptAppend -> wire.Session
	SessionsHistory = "gw.v1.req.sessions.history"              // wire.HistoryRequest -> ChatHistoryResult
	AgentRun        = "gw.v1.req.agent.run"                     // agent params -> AgentResult{status:"accepted"}, or the wire.RunFinal of a finished run
	AgentStatus     = "gw.v1.req.agent.status"                  // wire.RunStatusRequest -> wire.RunStatus
	AgentBusy       = "gw.v1.req.agent.busy"                    // wire.SessionBusyRequest -> wire.SessionBusy (asked by sessions.reset)
	ChatSend        = "gw.v1.req.chat.send"                     // chat.send params -> ChatSendResult
	ChatAbort       = "gw.v1.req.chat.abort"                    // chat.abort params -> ChatAbortResult (agent service)
	SessionsList    = "gw.v1.req.sessions.list"                 // sessions.list params -> SessionsListResult
	SessionsReset   = "gw.v1.req.sessions.reset"                // sessions.reset params -> SessionsResetResult
	WebLoginStart   = "gw.v1.req.provider.whatsapp.login.start" // web.login.start params -> WebLoginStartResult
	WebLoginWait    = "gw.v1.req.provider.whatsapp.login.wait"  // web.login.wait params -> WebLoginWaitResult
)

// Event subjects (publish-subscribe).
const (
	PresenceChanged = "gw.v1.evt.presence.changed" // {"presence":[PresenceEntry]}
	HealthChanged   = "gw.v1.evt.health.changed"   // HealthSummary
	// AgentRunAll matches the lifecycle events of every agent run and chat turn
	// (AgentRunEvents, ChatRunEvents).
	AgentRunAll = "gw.v1.evt.agent.*.*"
	// ProviderStateAll matches the state events of every provider.
	ProviderStateAll = "gw.v1.evt.provider.*.state"
	// ProviderInboundAll matches the inbound messages of every provider: the subjects of
	// the JetStream stream of inbound messages (SPEC §13).
	ProviderInboundAll = "gw.v1.evt.provider.*.inbound"
	// RunsAcceptedAll matches the accepted runs (RunsAccepted): the subjects of the
	// JetStream work-queue stream of accepted runs (SPEC §13).
	RunsAcceptedAll = "gw.v1.runs.accepted.*"
	// SessionsChanged carries wire.SessionsSummary (the 5 newest sessions) whenever the
	// session store changed; bursts of changes are coalesced.
	SessionsChanged = "gw.v1.evt.sessions.changed"
	// InboundOutcome: wire.InboundOutcome, what became of one inbound message (for metrics).
	InboundOutcome = "gw.v1.evt.autoreply.outcome"
	// BusConnect and BusDisconnect are the NATS server's client connect and disconnect
	// advisories (wire.BusClientEvent), mapped into the application account by package bus.
	BusConnect    = "gw.v1.evt.bus.connect"
	BusDisconnect = "gw.v1.evt.bus.disconnect"
)

// Service names, as registered with nats micro. $SRV.PING.<name> reaches them.
const (
	ServicePresence  = "presence"
	ServiceHealth    = "health"
	ServiceSessions  = "sessions"
	ServiceAgent     = "agent"
	ServiceAutoreply = "autoreply"
	ServiceWhatsApp  = "whatsapp"
	ServiceTelegram  = "telegram"
	// ServiceWebChat is not a bus service: the gateway registers it without endpoints so
	// that the WebChat server's facts (wire.MetaPort) travel as micro metadata.
	ServiceWebChat = "webchat"
)

// AgentRunEvents is the subject on which the agent run runID publishes its whole lifecycle
// (wire.HeaderRunEvent names each event's kind): gw.v1.evt.agent.run.<token>.
func AgentRunEvents(runID string) string { return Prefix + ".evt.agent.run." + IDToken(runID) }

// ChatRunEvents is the subject of the events of the chat.send turn runID:
// gw.v1.evt.agent.chat.<token>. Chat turns have their own subject because a client may use
// one idempotency key for an agent run and a chat turn; they are different runs.
func ChatRunEvents(runID string) string { return Prefix + ".evt.agent.chat." + IDToken(runID) }

// maxRawID is the longest id IDToken encodes whole; longer ids are hashed.
const maxRawID = 96

// IDToken turns an arbitrary client id (an idempotency key may hold '.', '*', spaces) into
// one subject token, the same for the same id: its unpadded base64url form, or for an id
// longer than 96 bytes "~" and the base64url SHA-256 of it ('~' is not in the base64url
// alphabet, so the two forms never collide).
func IDToken(id string) string {
	if len(id) <= maxRawID {
		return base64.RawURLEncoding.EncodeToString([]byte(id))
	}
	sum := sha256.Sum256([]byte(id))
	return "~" + base64.RawURLEncoding.EncodeToString(sum[:])
}

// ValidToken reports whether s can be used as one subject token: non-empty and free of
// '.', '*', '>' and whitespace.
func ValidToken(s string) bool {
	if s == "" {
		return false
	}
	return !strings.ContainsAny(s, ".*> \t\r\n")
}

// ProviderState is the state event subject of one provider, e.g.
// gw.v1.evt.provider.whatsapp.state.
func ProviderState(provider string) (string, error) {
	return join("evt.provider", provider, "state")
}

// ProviderSend is the send request subject of one provider.
func ProviderSend(provider string) (string, error) {
	return join("req.provider", provider, "send")
}

// ProviderInbound is the inbound message event subject of one provider.
func ProviderInbound(provider string) (string, error) {
	return join("evt.provider", provider, "inbound")
}

// ProviderStatus is the status request subject of one provider (-> wire.ProviderState).
func ProviderStatus(provider string) (string, error) {
	return join("req.provider", provider, "status")
}

func join(area, id, name string) (string, error) {
	if !ValidToken(id) {
		return "", fmt.Errorf("subject: invalid token %q for %s", id, area)
	}
	s := Prefix + "." + area + "." + id
	if name != "" {
		s += "." + name
	}
	return s, nil
}

// ProviderTyping is the typing-indicator request subject of one provider
// (wire.TypingRequest -> {"ok":true}).
func ProviderTyping(provider string) (string, error) {
	return join("req.provider", provider, "typing")
}

// ProviderOwner is the control subject the running copy of a provider answers, so that a
// second copy for the same account refuses to start (-> wire.ProviderOwner).
func ProviderOwner(provider string) (string, error) {
	return join("ctl.provider", provider, "owner")
}

// RunsAccepted is the subject of the accepted run whose idempotency key (kind prefix and
// run id) is key, in the stream of accepted runs: one subject per run, so that whether a run
// is stored can be asked of the stream.
func RunsAccepted(key string) string { return Prefix + ".runs.accepted." + IDToken(key) }

// JetStreamConsumerDeleted is the advisory the JetStream server publishes when the consumer
// of stream is deleted.
func JetStreamConsumerDeleted(stream, consumer string) string {
	return "$JS.EVENT.ADVISORY.CONSUMER.DELETED." + stream + "." + consumer
}

// JetStreamStreamDeleted is the advisory the JetStream server publishes when stream is
// deleted.
func JetStreamStreamDeleted(stream string) string {
	return "$JS.EVENT.ADVISORY.STREAM.DELETED." + stream
}
