// Package provider is the network-agnostic core of the messaging providers: the Network
// interface each adapter (services/whatsapp, services/telegram) implements, supervision with
// backoff, the bus endpoints gw.v1.req.provider.<id>.send|status|typing, state and inbound
// events stored in the inbound stream before the network is acknowledged, and idempotent
// sends. Adapters know their network; the core knows the bus.
package provider

import (
	"context"
	"errors"
	"fmt"

	"github.com/clawdis/clawdis/bus/wire"
)

// Network is one messaging network as the core drives it. Implementations must be safe for
// concurrent use: Send and Typing are called while Run is serving.
type Network interface {
	// ID is the provider id used in subjects and payloads: "whatsapp" or "telegram".
	ID() string
	// Run connects and serves until ctx ends (then it returns nil) or the connection fails.
	// It reports every state change and every inbound message to sink, from any goroutine,
	// without blocking on the network. A *TerminalError means retrying cannot help (logged
	// out, replaced, banned, client outdated, bad token, not configured): the supervisor
	// stops. Any other error is transient: the supervisor calls Run again after a backoff.
	Run(ctx context.Context, sink Sink) error
	// Send delivers one outbound message. Errors: ErrNotLinked, ErrNotConnected,
	// ErrNotConfigured, a *RecipientError, or any other error (the network refused).
	Send(ctx context.Context, msg Outbound) (Receipt, error)
	// Typing shows (on) or clears the typing indicator in a chat, marking it read when on.
	Typing(ctx context.Context, chatID string, on bool) error
}

// Sink receives what a Network reports while it runs.
type Sink interface {
	// State reports the current connection state; Provider and Ts are filled in by the core.
	State(st wire.ProviderState)
	// Inbound hands over a message received from the network and returns once it is stored
	// (in the inbound stream; a duplicate by (ChatID, MessageID) of a stored message counts
	// as stored). Only then may the adapter acknowledge the message to its network; after
	// an error it must not, so that the network delivers it again. Provider is filled in
	// by the core. It blocks for the store's round trip, bounded by ctx.
	Inbound(ctx context.Context, msg wire.InboundMessage) error
}

// Outbound is one message to send.
type Outbound struct {
	To       string // recipient as the client gave it; the adapter normalises it
	Text     string
	MediaURL string // http(s) URL or local path; empty for text only
}

// Receipt identifies a delivered message.
type Receipt struct {
	MessageID string
	ToJID     string // WhatsApp: the normalised recipient JID
	ChatID    string // Telegram: the chat id
}

// Errors a Network returns from Send; the core maps them to wire errors (SPEC §6.5).
var (
	ErrNotLinked     = errors.New("whatsapp not linked")     // NOT_LINKED
	ErrNotConnected  = errors.New("provider not connected")  // UNAVAILABLE, retryable
	ErrNotConfigured = errors.New("provider not configured") // UNAVAILABLE, not retryable
)

// RecipientError is a recipient the network cannot address (INVALID_REQUEST).
type RecipientError struct {
	To     string
	Reason string
}

// Error names the recipient, clipped: it is client input (SPEC §5.2).
func (e *RecipientError) Error() string {
	return fmt.Sprintf("invalid recipient %q: %s", wire.Clip(e.To), e.Reason)
}

// TerminalError ends supervision: State is the provider state to show in health (for
// example "logged_out" or "replaced") and Err says why.
type TerminalError struct {
	State string
	Err   error
}

func (e *TerminalError) Error() string { return e.State + ": " + e.Err.Error() }
func (e *TerminalError) Unwrap() error { return e.Err }

// Endpointer is implemented by a Network that answers bus requests of its own beside send,
// status and typing (WhatsApp's web.login.start and web.login.wait). The core registers
// them in its micro service and serves them like sends: each request on its own goroutine,
// so a long one does not hold the subscription.
type Endpointer interface {
	Endpoints(h Host) []Endpoint
}

// Endpoint is one request subject a Network answers.
type Endpoint struct {
	Name    string // the micro endpoint name, also used in error messages
	Subject string
	// Handle answers one request: a value sent as JSON, or an error (a *wire.Error is sent
	// as is). ctx ends when the core stops, not per request.
	Handle func(ctx context.Context, data []byte) (any, error)
}

// Host is what the core lends to a Network's endpoints.
type Host struct {
	// Go runs fn on a goroutine the core waits for before its Run returns; fn must return
	// soon after the ctx given to Endpoint.Handle ends. It reports false, without running
	// fn, when the core is stopping.
	Go func(fn func()) bool
	// Restart calls Network.Run again when supervision has stopped for good (after a
	// TerminalError, for example "unlinked" before a new link); while supervision runs, it
	// takes effect when it stops. It never blocks.
	Restart func()
}
