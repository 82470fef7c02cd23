package sessions

import (
	"slices"
	"testing"

	"github.com/clawdis/clawdis/bus/subject"
	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/schemas"
)

// TestAppendOfARunIsIdempotent: a run that runs again from the start (after a restart of the
// agent service) appends its user message and its reply once; another run's messages are
// appended as usual, and the history a run reads leaves its own messages out.
func TestAppendOfARunIsIdempotent(t *testing.T) {
	h := start(t, Config{})
	appendRun := func(run string, m schemas.ChatMessage) *schemas.ChatMessage {
		t.Helper()
		return mustCall[wire.TranscriptAppended](t, h, subject.SessionsAppend,
			wire.TranscriptAppend{SessionKey: "main", Messages: []schemas.ChatMessage{m}, RunKey: run}).RunReply
	}
	appendRun("chat:r1", text("user", "hi", 1))
	if r := appendRun("chat:r1", text("user", "hi", 2)); r != nil { // the run again, from the start
		t.Fatalf("a run without a reply answered with one: %+v", r)
	}
	appendRun("chat:r1", text("assistant", "yo", 3)) // its reply, once
	appendRun("chat:r1", text("assistant", "yo!", 4))
	// The run again: its user message is there, and so is the reply it goes on with.
	if r := appendRun("chat:r1", text("user", "hi", 5)); r == nil || r.Content[0].Text != "yo" {
		t.Fatalf("the run's stored reply = %+v, want yo", r)
	}
	appendRun("chat:r2", text("user", "hi", 5)) // another run with the same text
	appendRun("", text("user", "plain", 6))
	appendRun("", text("user", "plain", 7)) // no run key: every append is new

	hist := mustCall[schemas.ChatHistoryResult](t, h, subject.SessionsHistory, wire.HistoryRequest{SessionKey: "main"})
	if got, want := texts(hist.Messages), []string{"hi", "yo", "hi", "plain", "plain"}; !slices.Equal(got, want) {
		t.Fatalf("transcript = %q, want %q", got, want)
	}
	hist = mustCall[schemas.ChatHistoryResult](t, h, subject.SessionsHistory, wire.HistoryRequest{SessionKey: "main", ExceptRun: "chat:r2"})
	if got, want := texts(hist.Messages), []string{"hi", "yo", "plain", "plain"}; !slices.Equal(got, want) {
		t.Fatalf("history except chat:r2 = %q, want %q", got, want)
	}
}
