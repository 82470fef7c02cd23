package client

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/clawdis/clawdis/schemas"
)

func TestEventsAndGaps(t *testing.T) {
	s := newFakeServer(t, fakeConfig{})
	rec := newRecorder()
	dial(t, s, rec.options(Options{}))
	fc := recv(t, s.connected, "connection")
	send := []struct {
		name string
		seq  int64
	}{
		{schemas.EventTick, 1}, {schemas.EventPresence, 2}, {schemas.EventHealth, 5},
		{schemas.EventAgent, 6}, {"custom", 0}, {schemas.EventShutdown, 9}, {schemas.EventTick, 10},
	}
	for _, e := range send {
		if err := fc.event(e.name, e.seq); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{
		"connect " + fc.id,
		"event tick 1", "event presence 2", "gap 3 5", "event health 5", "event agent 6",
		"event custom 0", "gap 7 9", "event shutdown 9", "event tick 10",
	}
	if got := rec.take(t, len(want)); !reflect.DeepEqual(got, want) {
		t.Errorf("callbacks:\n got %q\nwant %q", got, want)
	}
	var shutdown schemas.Event
	for range send {
		if ev := recv(t, rec.events, "event"); ev.Event == schemas.EventShutdown {
			shutdown = ev
		}
	}
	if !jsonEqual(t, shutdown.Payload, []byte(`{"reason":"gateway stopping"}`)) {
		t.Errorf("shutdown payload = %s", shutdown.Payload)
	}
}

func TestReadLimit(t *testing.T) {
	// A hello-ok well above the library's 32 KiB default, and an event above maxPayload.
	presence := make([]schemas.PresenceEntry, 400)
	for i := range presence {
		presence[i] = schemas.PresenceEntry{Host: fmt.Sprintf("host-%d", i), Text: strings.Repeat("p", 200), Ts: int64(i)}
	}
	s := newFakeServer(t, fakeConfig{presence: presence, maxPayload: 256 << 10})
	rec := newRecorder()
	c := dial(t, s, rec.options(Options{}))
	if n := len(c.Hello().Snapshot.Presence); n != len(presence) {
		t.Fatalf("snapshot has %d entries, want %d", n, len(presence))
	}
	fc := recv(t, s.connected, "connection")
	blob := strings.Repeat("x", 900<<10)
	seq := int64(1)
	if err := fc.send(schemas.Event{Type: schemas.TypeEvent, Event: "blob", Seq: &seq, Payload: mustJSON(map[string]string{"blob": blob})}); err != nil {
		t.Fatal(err)
	}
	ev := recv(t, rec.events, "big event")
	if len(ev.Payload) < len(blob) {
		t.Errorf("event payload has %d bytes, want more than %d", len(ev.Payload), len(blob))
	}
}
