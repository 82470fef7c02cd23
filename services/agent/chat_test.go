package agent

import (
	"encoding/base64"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/schemas"
)

// pngBytes is the start of a PNG file; the service checks the type, not the pixels.
var pngBytes = []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")

// TestChatSendStreams: chat.send answers started, then chat deltas carry the text so far
// and the final the whole reply; the transcript gets the user message (with its image)
// and the reply; on the main key the session's last channel becomes webchat.
func TestChatSendStreams(t *testing.T) {
	f := newFakeOpenAI(t)
	gate := make(chan struct{})
	f.set(openaiScript{deltas: []string{"Hel", "lo", " there"}, gate: gate})
	h := start(t, openaiConfig(f, map[string]string{"OPENAI_API_KEY": "k"}))
	h.sessions.set(wire.Session{SessionKey: "main", LastChannel: "whatsapp", LastTo: "+43"})
	img := base64.StdEncoding.EncodeToString(pngBytes)
	h.chat(schemas.ChatSendParams{SessionKey: "main", Message: "what is this?", IdempotencyKey: "c1",
		Attachments: []schemas.ChatAttachment{{Type: "image", MimeType: "image/png", FileName: "cat.png", Content: img}}})

	h.events.waitFor("first chat delta", func(evs []event) bool {
		c := chatOf(evs, "c1")
		return len(c) > 0 && c[0].State == chatDelta && chatText(&c[0]) == "Hel"
	})
	close(gate)
	evs := h.events.waitFor("chat final", chatEnded("c1"))
	c := chatOf(evs, "c1")
	last := c[len(c)-1]
	if last.State != chatFinal || chatText(&last) != "Hello there" || last.Message.Role != "assistant" {
		t.Fatalf("last chat event = %+v", last)
	}
	for i, e := range c {
		if e.Seq != int64(i+1) || e.SessionKey != "main" {
			t.Fatalf("chat event %d = seq %d session %q", i, e.Seq, e.SessionKey)
		}
		if !strings.HasPrefix("Hello there", chatText(&e)) {
			t.Fatalf("delta %q is not the text so far", chatText(&e))
		}
	}
	a := agentOf(evs, "c1")
	checkSeq(t, a)
	if jobState(a[0]) != "started" || a[0].SessionKey != "main" {
		t.Fatalf("first agent event of the chat run = %+v", a[0])
	}

	s, transcript := h.sessions.get("main")
	if s.LastChannel != "webchat" || s.LastTo != "+43" {
		t.Fatalf("session route = %q %q, want webchat (lastTo kept)", s.LastChannel, s.LastTo)
	}
	wantUser := []schemas.ChatContent{text("what is this?"), {Type: "image", MimeType: "image/png", Data: img}}
	if len(transcript) != 2 || transcript[0].Role != "user" || !slices.Equal(transcript[0].Content, wantUser) ||
		transcript[1].Role != "assistant" || transcript[1].Content[0].Text != "Hello there" {
		t.Fatalf("transcript = %+v", transcript)
	}
	msgs, _ := json.Marshal(f.recorded()[0].body["messages"])
	if !strings.Contains(string(msgs), `"url":"data:image/png;base64,`+img+`"`) {
		t.Fatalf("the image did not reach the model: %s", msgs)
	}
}

// TestChatRepeatAndError: a repeat of a finished key answers ok without running again and
// publishes the remembered final chat event once more, also from a restarted service; a
// failing backend ends with an error event, which a repeat replays with status error;
// other keys do not touch the main session's route.
func TestChatRepeatAndError(t *testing.T) {
	f := newFakeOpenAI(t)
	f.set(openaiScript{deltas: []string{"one reply"}})
	cfg := openaiConfig(f, map[string]string{"OPENAI_API_KEY": "k"})
	h := start(t, cfg)
	p := schemas.ChatSendParams{SessionKey: "web-1", Message: "hi", IdempotencyKey: "c1"}
	h.chat(p)
	h.events.waitFor("c1 ended", chatEnded("c1"))
	first := chatOf(h.events.snapshot(), "c1")
	final := first[len(first)-1]

	replayed := func(n int) func([]event) bool {
		return func(evs []event) bool { return len(chatOf(evs, "c1")) == len(first)+n }
	}
	h.chatAnswer(p, "ok") // remembered: its final again
	evs := h.events.waitFor("the final replayed", replayed(1))
	if got := chatOf(evs, "c1"); !reflect.DeepEqual(got[len(got)-1], final) {
		t.Fatalf("replayed event = %+v, want the final %+v", got[len(got)-1], final)
	}
	h.stop()
	h.startService(cfg)
	h.chatAnswer(p, "ok")
	h.events.waitFor("the final replayed after a restart", replayed(2))

	h.chat(schemas.ChatSendParams{SessionKey: "web-1", Message: "later", IdempotencyKey: "c2"})
	evs = h.events.waitFor("c2 ended", chatEnded("c2"))
	if n := len(chatOf(evs, "c1")); n != len(first)+2 {
		t.Fatalf("%d chat events of c1, want its %d and two replays", n, len(first))
	}
	if n := len(f.recorded()); n != 2 {
		t.Fatalf("%d model requests, want 2 (c1 once, c2)", n)
	}
	if s, _ := h.sessions.get("web-1"); s.LastChannel != "" {
		t.Fatalf("lastChannel of a non-main session = %q", s.LastChannel)
	}

	f.set(openaiScript{status: 503, body: `{"error":{"message":"model overloaded"}}`})
	h.chat(schemas.ChatSendParams{SessionKey: "web-1", Message: "again", IdempotencyKey: "c3"})
	evs = h.events.waitFor("c3 ended", chatEnded("c3"))
	c := chatOf(evs, "c3")
	if len(c) != 1 || c[0].State != chatError || !strings.Contains(c[0].ErrorMessage, "model overloaded") {
		t.Fatalf("chat events of the failed run = %+v", c)
	}
	h.chatAnswer(schemas.ChatSendParams{SessionKey: "web-1", Message: "again", IdempotencyKey: "c3"}, "error")
	evs = h.events.waitFor("the error replayed", func(evs []event) bool { return len(chatOf(evs, "c3")) == 2 })
	if c := chatOf(evs, "c3"); !reflect.DeepEqual(c[1], c[0]) {
		t.Fatalf("replayed error = %+v, want %+v", c[1], c[0])
	}
}
