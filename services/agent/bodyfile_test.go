package agent

import (
	"context"
	"encoding/json"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/clawdis/clawdis/bus/subject"
	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/schemas"
)

// fakeQueue is a presence service's system-event queue: drained once, and put back by
// requeue.
type fakeQueue struct {
	mu     sync.Mutex
	events []string
}

func serveQueue(t testing.TB, nc *nats.Conn, events ...string) *fakeQueue {
	q := &fakeQueue{events: events}
	serve(t, nc, "fake-queue", map[string]wire.HandlerFunc{
		subject.PresenceDrain: func(context.Context, []byte, nats.Header) (any, error) {
			q.mu.Lock()
			defer q.mu.Unlock()
			out := wire.SystemEventQueue{Events: append([]string{}, q.events...)}
			q.events = nil
			return out, nil
		},
		subject.PresenceRequeue: func(_ context.Context, data []byte, _ nats.Header) (any, error) {
			var in wire.SystemEventQueue
			if err := json.Unmarshal(data, &in); err != nil {
				return nil, wire.Invalid("bad requeue")
			}
			q.mu.Lock()
			defer q.mu.Unlock()
			q.events = append(in.Events, q.events...)
			return schemas.OKPayload{OK: true}, nil
		},
	})
	return q
}

func (q *fakeQueue) queued() []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	return slices.Clone(q.events)
}

// catBodyFile is a command that prints the {{BodyFile}} file's path, a line, then its
// content, and the {{Body}} argument's length.
var catBodyFile = []string{"sh", "-c", `echo "$1"; cat "$1"; echo; echo "body=${#2}"`, "sh", "{{BodyFile}}", "{{Body}}"}

// TestBodyFile: a long message reaches a command using {{BodyFile}} through a temporary
// file, removed after the run; a long {{Body}} is then passed empty.
func TestBodyFile(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	long := strings.Repeat("m", 200<<10)
	for _, tc := range []struct {
		name, msg string
		wantBody  int
	}{
		{"short body", "hello", len("hello")},
		{"body longer than one argument", long, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := start(t, commandConfig(catBodyFile...))
			h.run(schemas.AgentParams{Message: tc.msg, SessionKey: "other", IdempotencyKey: "bf"})
			text := h.finalOK("bf").Text
			path, rest, _ := strings.Cut(text, "\n")
			content, body, _ := strings.Cut(rest, "\nbody=")
			if content != tc.msg || body != strconv.Itoa(tc.wantBody) {
				t.Fatalf("the command got %d bytes in the file and {{Body}} of %s bytes, want %d and %d",
					len(content), body, len(tc.msg), tc.wantBody)
			}
			if !strings.HasPrefix(path, tmp) {
				t.Fatalf("{{BodyFile}} = %q, not in TMPDIR %s", path, tmp)
			}
			if _, err := os.Stat(path); !os.IsNotExist(err) {
				t.Fatalf("the body file is still there after the run: %v", err)
			}
		})
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Fatalf("files left in TMPDIR: %v", left)
	}
}

// TestBodyTooLongForAnArgument: with {{Body}} and no {{BodyFile}}, a message too long for
// one argument fails the run with an error naming {{BodyFile}}, and the system events
// drained into its prompt are put back for the next turn; a long session key fails naming
// {{SessionKey}}.
func TestBodyTooLongForAnArgument(t *testing.T) {
	h := start(t, commandConfig("sh", script(t, "args.sh"), "{{Body}}", "{{SessionKey}}"))
	q := serveQueue(t, h.bus.Conn("presence"), "Node: mac · reason periodic", "second")
	h.run(schemas.AgentParams{Message: strings.Repeat("x", 130<<10), IdempotencyKey: "long"})
	werr, _ := h.finalErr("long", wire.CodeUnavailable)
	if !strings.Contains(werr.Message, "{{BodyFile}}") || len(werr.Message) > 300 {
		t.Fatalf("error = %q, want a short one naming {{BodyFile}}", werr.Message)
	}
	if got := q.queued(); !slices.Equal(got, []string{"Node: mac · reason periodic", "second"}) {
		t.Fatalf("queue after the failed run = %q, want the drained events back", got)
	}
	h.run(schemas.AgentParams{Message: "short", IdempotencyKey: "next"})
	if got := h.finalOK("next").Text; !strings.HasPrefix(got, "System: Node: mac · reason periodic\nSystem: second\nshort") {
		t.Fatalf("the next turn got %q, want the requeued events first", got)
	}

	h.run(schemas.AgentParams{Message: "m", SessionKey: strings.Repeat("k", 130<<10), IdempotencyKey: "key"})
	werr, _ = h.finalErr("key", wire.CodeUnavailable)
	if !strings.Contains(werr.Message, "{{SessionKey}}") || strings.Contains(werr.Message, "{{BodyFile}}") {
		t.Fatalf("error = %q, want one naming {{SessionKey}}", werr.Message)
	}
}

// TestLongSystemEventsThroughBodyFile: queued system events that make the prompt longer
// than one argument (20 of 4096 characters, the most system-event allows) reach a command
// using {{BodyFile}} whole; the turn does not fail and the events are not requeued.
func TestLongSystemEventsThroughBodyFile(t *testing.T) {
	events := make([]string, 20)
	for i := range events {
		events[i] = strings.Repeat("é", 4096)
	}
	h := start(t, commandConfig(catBodyFile...))
	q := serveQueue(t, h.bus.Conn("presence"), events...)
	h.run(schemas.AgentParams{Message: "what happened?", IdempotencyKey: "sys"})
	text := h.finalOK("sys").Text
	if got := strings.Count(text, "System: "+events[0]+"\n"); got != 20 || !strings.Contains(text, "\nwhat happened?\n") {
		t.Fatalf("the command got %d of the 20 system lines (reply %d bytes)", got, len(text))
	}
	if got := q.queued(); len(got) != 0 {
		t.Fatalf("%d events requeued after a good turn", len(got))
	}
}

// TestSystemEventsRequeuedWhenTheModelRefuses: an openai server that refuses the turn
// (HTTP 500) did not consume the system events drained into it: they are queued again.
func TestSystemEventsRequeuedWhenTheModelRefuses(t *testing.T) {
	f := newFakeOpenAI(t)
	f.set(openaiScript{status: 500, body: `{"error":{"message":"overloaded"}}`})
	h := start(t, openaiConfig(f, map[string]string{"OPENAI_API_KEY": "k"}))
	q := serveQueue(t, h.bus.Conn("presence"), "Node: mac · reason periodic")
	h.run(schemas.AgentParams{Message: "hi", IdempotencyKey: "refused"})
	if werr, _ := h.finalErr("refused", wire.CodeUnavailable); !strings.Contains(werr.Message, "overloaded") {
		t.Fatalf("error = %q", werr.Message)
	}
	if got := q.queued(); !slices.Equal(got, []string{"Node: mac · reason periodic"}) {
		t.Fatalf("queue after the refused turn = %q, want the drained event back", got)
	}
}
