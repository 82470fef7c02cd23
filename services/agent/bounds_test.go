package agent

import (
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/clawdis/clawdis/bus/subject"
	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/schemas"
)

// sizeWatch records the largest run event (any kind, final included) published on the bus.
type sizeWatch struct {
	mu      sync.Mutex
	largest int
	kind    string
}

func watchSizes(t testing.TB, nc *nats.Conn) *sizeWatch {
	t.Helper()
	w := &sizeWatch{}
	sub, err := nc.Subscribe(subject.AgentRunAll, func(m *nats.Msg) {
		w.mu.Lock()
		defer w.mu.Unlock()
		if len(m.Data) > w.largest {
			w.largest, w.kind = len(m.Data), m.Header.Get(wire.HeaderRunEvent)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return w
}

// check fails when an event was larger than limit bytes.
func (w *sizeWatch) check(t testing.TB, limit int) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.largest > limit {
		t.Fatalf("a %s event of %d bytes was published, over %d", w.kind, w.largest, limit)
	}
}

// floodCommand prints n bytes of text (lines of hex digits) on stdout.
func floodCommand(n int) Config {
	return commandConfig("sh", "-c", "yes 0123456789abcdef | head -c "+strconv.Itoa(n))
}

// TestReplyCappedAtMaxReplyBytes: a reply longer than MaxReplyBytes is cut there with the
// truncation line, the run still ends ok, the chat deltas are prefixes of the final, and
// the transcript stores the cut reply.
func TestReplyCappedAtMaxReplyBytes(t *testing.T) {
	cfg := floodCommand(50_000)
	cfg.MaxReplyBytes = 1000
	h := start(t, cfg)
	h.chat(schemas.ChatSendParams{SessionKey: "main", Message: "flood", IdempotencyKey: "cap"})
	evs := h.events.waitFor("chat final", chatEnded("cap"))
	c := chatOf(evs, "cap")
	final := c[len(c)-1]
	if final.State != chatFinal {
		t.Fatalf("last chat event = %+v", final)
	}
	want := strings.Repeat("0123456789abcdef\n", 1000/17) + "0123456789abcdef\n"[:1000%17]
	want = strings.TrimSpace(want) + "\n[reply truncated at 1000 bytes]"
	if got := chatText(&final); got != want {
		t.Fatalf("final text ends %q (%d bytes), want %d bytes ending %q", tail(got), len(got), len(want), tail(want))
	}
	for _, e := range c[:len(c)-1] {
		if !strings.HasPrefix(want, chatText(&e)) {
			t.Fatalf("delta %q… is not a prefix of the final", tail(chatText(&e)))
		}
	}
	_, transcript := h.sessions.get("main")
	if len(transcript) != 2 || transcript[1].Content[0].Text != want {
		t.Fatalf("stored reply = %+v", transcript)
	}
}

func tail(s string) string { return s[max(len(s)-40, 0):] }

// TestFloodEndsWithFinal: a command printing 20 MB ends ok with a final whose reply is cut at
// the default 262144 bytes; no event is larger than the frame bound.
func TestFloodEndsWithFinal(t *testing.T) {
	h := start(t, floodCommand(20<<20))
	sizes := watchSizes(t, h.nc)
	h.run(schemas.AgentParams{Message: "flood", IdempotencyKey: "f20"})
	text := h.finalOK("f20").Text
	if !strings.HasSuffix(text, "\n[reply truncated at 262144 bytes]") || len(text) > DefaultMaxReplyBytes+64 {
		t.Fatalf("text of %d bytes ends %q", len(text), tail(text))
	}
	h.events.waitFor("job done", ended("f20"))
	sizes.check(t, DefaultMaxPayload)
}

// TestEscapedReplyFitsAFrame: a reply whose JSON encoding is six times its size (HTML
// characters, control characters) is cut so that every event and the final stay under
// MaxPayload, though it is shorter than MaxReplyBytes.
func TestEscapedReplyFitsAFrame(t *testing.T) {
	for _, tc := range []struct{ name, tr string }{{"html", "<"}, {"control", "\\001"}} {
		t.Run(tc.name, func(t *testing.T) {
			h := start(t, commandConfig("sh", "-c", "head -c 300000 /dev/zero | tr '\\000' '"+tc.tr+"'"))
			sizes := watchSizes(t, h.nc)
			h.chat(schemas.ChatSendParams{SessionKey: "main", Message: "x", IdempotencyKey: "esc"})
			evs := h.events.waitFor("chat final", chatEnded("esc"))
			c := chatOf(evs, "esc")
			text := chatText(&c[len(c)-1])
			if c[len(c)-1].State != chatFinal || !strings.Contains(text, "[reply truncated at ") || len(text) > DefaultMaxPayload/6 {
				t.Fatalf("final %s of %d bytes ends %q", c[len(c)-1].State, len(text), tail(text))
			}
			sizes.check(t, DefaultMaxPayload)
		})
	}
}

// TestOpenAIReplyCapped: the openai backend keeps MaxReplyBytes too and stops reading.
func TestOpenAIReplyCapped(t *testing.T) {
	f := newFakeOpenAI(t)
	deltas := make([]string, 500)
	for i := range deltas {
		deltas[i] = "0123456789"
	}
	f.set(openaiScript{deltas: deltas})
	cfg := openaiConfig(f, map[string]string{"OPENAI_API_KEY": "k"})
	cfg.MaxReplyBytes = 95
	h := start(t, cfg)
	h.run(schemas.AgentParams{Message: "long", IdempotencyKey: "o1"})
	want := strings.Repeat("0123456789", 9) + "01234\n[reply truncated at 95 bytes]"
	if got := h.finalOK("o1").Text; got != want {
		t.Fatalf("text = %q, want %q", got, want)
	}
	var streamed strings.Builder
	for _, e := range agentOf(h.events.waitFor("job done", ended("o1")), "o1") {
		streamed.WriteString(assistantText(e))
	}
	if streamed.String() != want {
		t.Fatalf("assistant events add up to %q, want %q", streamed.String(), want)
	}
}
