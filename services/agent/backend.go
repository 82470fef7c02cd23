package agent

import (
	"context"

	"github.com/clawdis/clawdis/schemas"
)

// turn is what a backend gets for one run.
type turn struct {
	RunID      string
	SessionKey string
	SessionID  string
	// Prompt is the user message prefixed with one "System: <text>" line per queued
	// system event.
	Prompt string
	// Images are image parts attached to the user message (chat.send).
	Images []schemas.ChatContent
	// From is the agent request's "to" (the other party of the conversation), or "".
	From     string
	Thinking string
	// History is the session's recent transcript, oldest first, without this turn; only
	// filled for backends that want it.
	History []schemas.ChatMessage
	// Reply collects the reply within agent.maxReplyBytes and the frame size; a backend
	// adds its text there and streams only what was kept.
	Reply *replyBuffer
}

// output is one piece of progress a backend reports: new assistant text, or a tool call.
type output struct {
	Text string // new assistant text (not the whole text so far)
	Tool string // name of a tool the model calls; Text is then empty
}

// backend runs turns. run streams progress to out (the caller always keeps receiving until
// run returns) and returns the whole reply, surrounding whitespace trimmed: t.Reply's text.
// When ctx ends it must stop everything it started before returning. A failure before the
// turn reached the agent is a *notStartedError.
type backend interface {
	// wantsHistory reports whether turn.History should be filled.
	wantsHistory() bool
	run(ctx context.Context, t *turn, out chan<- output) (string, error)
}
