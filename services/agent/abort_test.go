package agent

import (
	"slices"
	"testing"
	"time"

	"github.com/clawdis/clawdis/bus/subject"
	"github.com/clawdis/clawdis/schemas"
)

// TestOpenAIAbortClosesStream: chat.abort of an openai run closes its HTTP stream; the run
// ends ok with status aborted and the text so far, which the transcript keeps marked
// aborted, and its reply is not delivered.
func TestOpenAIAbortClosesStream(t *testing.T) {
	f := newFakeOpenAI(t)
	closed := make(chan struct{})
	f.set(openaiScript{deltas: []string{"Hel", "lo"}, gate: make(chan struct{}), closed: closed})
	h := start(t, openaiConfig(f, map[string]string{"OPENAI_API_KEY": "sk-test"}))
	tg := serveProvider(t, h.bus.Conn("fake-telegram"), channelTelegram, nil)

	h.run(schemas.AgentParams{Message: "hi", SessionKey: "s", Deliver: true, Channel: channelTelegram, To: "42", IdempotencyKey: "o1"})
	h.events.waitFor("first delta", func(evs []event) bool {
		return slices.ContainsFunc(agentOf(evs, "o1"), func(e schemas.AgentEventPayload) bool { return assistantText(e) == "Hel" })
	})
	reply, err := h.request(subject.ChatAbort, schemas.ChatAbortParams{SessionKey: "s"})
	if err != nil {
		t.Fatal(err)
	}
	validatePayload(t, schemas.MethodChatAbort, reply)
	var res schemas.ChatAbortResult
	mustDecode(t, reply, &res)
	if !res.OK || !slices.Equal(res.Aborted, []string{"o1"}) {
		t.Fatalf("chat.abort = %s", reply)
	}
	select {
	case <-closed:
	case <-time.After(waitLimit):
		t.Fatal("the HTTP stream was not closed")
	}
	f1 := h.final("o1")
	var r schemas.AgentResult
	mustDecode(t, f1.Payload, &r)
	if !f1.OK || f1.Error != nil || r.Status != schemas.RunAborted || r.Text != "Hel" {
		t.Fatalf("final = %+v %s, want ok, aborted, text Hel", f1, f1.Payload)
	}
	// Delivery would have happened before the final: nothing was sent.
	if n := len(tg.sent); n != 0 {
		t.Errorf("%d sends for an aborted run", n)
	}
	_, transcript := h.sessions.get("s")
	if n := len(transcript); n != 2 || transcript[1].Content[0].Text != "Hel" || !transcript[1].Aborted {
		t.Fatalf("transcript = %+v, want the prompt and the partial reply marked aborted", transcript)
	}
	a := agentOf(h.events.waitFor("job aborted", ended("o1")), "o1")
	if last := a[len(a)-1]; jobState(last) != schemas.RunAborted {
		t.Errorf("last event = %s %s, want job aborted", last.Stream, last.Data)
	}
	// A repeat of the key answers the remembered final: aborted, not a new run.
	h.run(schemas.AgentParams{Message: "hi", SessionKey: "s", IdempotencyKey: "o1"})
	if again := h.final("o1"); string(again.Payload) != string(f1.Payload) {
		t.Errorf("repeat final = %s, want %s", again.Payload, f1.Payload)
	}
	if n := len(f.recorded()); n != 1 {
		t.Errorf("%d requests to the server, want 1", n)
	}
}
