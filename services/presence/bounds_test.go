package presence

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/clawdis/clawdis/bus/subject"
	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/schemas"
)

// TestListTrimmedToMaxBytes: with many large entries the published list and the
// system-presence answer stay within half of MaxBytes, keeping the newest entries and the
// gateway's own; the oldest are left out.
func TestListTrimmedToMaxBytes(t *testing.T) {
	const maxBytes = 64 << 10
	h := start(t, Config{Host: "gw-host", MaxBytes: maxBytes})
	var last []byte
	for i := range 60 {
		h.clock.Advance(time.Second)
		h.ok(subject.PresenceEvent, schemas.SystemEventParams{Text: fmt.Sprintf("node %02d ", i) + strings.Repeat("<", 2000),
			InstanceID: fmt.Sprintf("node-%02d", i)})
		msg := <-h.changes
		last = msg.Data
		if len(msg.Data) > maxBytes/2 {
			t.Fatalf("presence event of %d bytes after %d entries, over %d", len(msg.Data), i+1, maxBytes/2)
		}
	}
	reply, err := h.request(subject.PresenceList, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(reply) > maxBytes/2 {
		t.Fatalf("system-presence answer of %d bytes", len(reply))
	}
	list := h.list()
	if len(list) < 3 || list[0].Reason != reasonSelf || list[1].InstanceID != "node-59" {
		t.Fatalf("list of %d entries starting %q, %q; want the gateway's, then the newest", len(list), list[0].Reason, list[1].InstanceID)
	}
	self := 0
	for i, e := range list {
		if e.Reason == reasonSelf {
			self++
		}
		if i > 0 && e.Reason != reasonSelf && list[i-1].Reason != reasonSelf && e.Ts > list[i-1].Ts {
			t.Fatalf("entry %d is newer than the one before it", i)
		}
	}
	if self != 1 || len(list) == 61 {
		t.Fatalf("%d self entries in a list of %d (of 61): want the gateway's own and the oldest left out", self, len(list))
	}
	if !strings.Contains(string(last), "node-59") || strings.Contains(string(last), `"node-00"`) {
		t.Fatal("the last event does not keep the newest and drop the oldest")
	}
}

// TestClientPresenceClipped: the fields of a client hello become an entry of at most
// MaxFieldChars characters each.
func TestClientPresenceClipped(t *testing.T) {
	h := start(t, testSelf)
	long := strings.Repeat("ü", 60_000)
	h.ok(subject.PresenceClient, wire.ClientPresence{Key: long, Event: wire.ClientConnect, Host: long, Version: long,
		Mode: long, InstanceID: long})
	for _, e := range h.nextChange() {
		for _, v := range []string{e.Host, e.Version, e.Mode, e.InstanceID, e.IP} {
			if utf8.RuneCountInString(v) > MaxFieldChars {
				t.Fatalf("entry field of %d characters", utf8.RuneCountInString(v))
			}
		}
	}
}

// TestRequeue: events put back by a failed turn come first, before the ones queued since,
// and the queue keeps its cap.
func TestRequeue(t *testing.T) {
	h := start(t, Config{Host: "gw-host", MaxQueue: 4})
	h.ok(subject.PresenceEvent, schemas.SystemEventParams{Text: "a"})
	h.ok(subject.PresenceEvent, schemas.SystemEventParams{Text: "b"})
	drained := h.queue(subject.PresenceDrain)
	h.ok(subject.PresenceEvent, schemas.SystemEventParams{Text: "c"})
	h.ok(subject.PresenceRequeue, wire.SystemEventQueue{Events: drained})
	if got, want := h.queue(subject.PresenceQueue), []string{"a", "b", "c"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("queue = %q, want %q", got, want)
	}
	h.ok(subject.PresenceRequeue, wire.SystemEventQueue{Events: []string{"x", " ", "y"}})
	if got, want := h.queue(subject.PresenceQueue), []string{"y", "a", "b", "c"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("queue = %q, want %q (the oldest dropped beyond the cap, blanks skipped)", got, want)
	}
}

// TestHostileParamsErrors: bodies that do not decode, or break a limit, are INVALID_REQUEST
// with a message that names the field and echoes neither the value nor Go internals.
func TestHostileParamsErrors(t *testing.T) {
	h := start(t, testSelf)
	huge := strings.Repeat("Z", 300)
	tests := []struct {
		subj, body, want string
	}{
		{subject.PresenceEvent, `{"text":"x","lastInputSeconds":1e300}`, "lastInputSeconds: expected an integer"},
		{subject.PresenceEvent, `{"text":"x","lastInputSeconds":` + strings.Repeat("9", 400) + `}`, "lastInputSeconds: expected an integer"},
		{subject.PresenceEvent, `{"text":{"` + huge + `":1}}`, "text: expected a string"},
		{subject.PresenceEvent, `{"text":"x","tags":["a",{"` + huge + `":1}]}`, "tags: expected a string"},
		{subject.PresenceEvent, `{"text":"` + strings.Repeat(huge, 20) + `"}`, "text must be at most 4096 characters"},
		{subject.PresenceEvent, `{"text":"x","host":"` + huge + `"}`, "host must be at most 256 characters"},
		{subject.PresenceEvent, `{"text":"x"` + huge, "malformed JSON"},
		{subject.PresenceClient, `{"key":"k","event":"` + huge + `"}`, `event must be "connect" or "disconnect"`},
		{subject.PresenceRequeue, `{"events":"` + huge + `"}`, "events: expected an array"},
	}
	for _, tt := range tests {
		_, err := h.request(tt.subj, []byte(tt.body))
		var werr *wire.Error
		if !errors.As(err, &werr) || werr.Code != wire.CodeInvalidRequest {
			t.Fatalf("%s %.50s: err %v, want INVALID_REQUEST", tt.subj, tt.body, err)
		}
		checkErrorText(t, werr.Message, tt.want, huge)
	}
}

// checkErrorText fails unless msg contains want, repeats at most 200 characters of hostile
// (a run of one character) and names no Go internals.
func checkErrorText(t *testing.T, msg, want, hostile string) {
	t.Helper()
	if !strings.Contains(msg, want) {
		t.Errorf("message %q does not contain %q", msg, want)
	}
	if strings.Contains(msg, hostile[:201]) || strings.Contains(msg, "9999999999") {
		t.Errorf("message %q echoes the input", msg)
	}
	for _, bad := range []string{"json:", "Go ", "struct", "int64", "unmarshal", "[]string"} {
		if strings.Contains(msg, bad) {
			t.Errorf("message %q names Go internals (%q)", msg, bad)
		}
	}
}
