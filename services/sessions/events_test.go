package sessions

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/clawdis/clawdis/bus/subject"
	"github.com/clawdis/clawdis/bus/wire"
)

// changedEvents subscribes the harness's connection to subject.SessionsChanged.
func changedEvents(t *testing.T, h *harness) chan *nats.Msg {
	t.Helper()
	ch := make(chan *nats.Msg, 64)
	sub, err := h.nc.ChanSubscribe(subject.SessionsChanged, ch)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := h.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return ch
}

// nextChanged decodes the next sessions changed event.
func nextChanged(t *testing.T, ch chan *nats.Msg) wire.SessionsSummary {
	t.Helper()
	select {
	case m := <-ch:
		var sum wire.SessionsSummary
		if err := json.Unmarshal(m.Data, &sum); err != nil {
			t.Fatalf("bad sessions changed event %s: %v", m.Data, err)
		}
		return sum
	case <-time.After(waitLimit):
		t.Fatalf("no sessions changed event within %s", waitLimit)
		return wire.SessionsSummary{}
	}
}

func keysOf(sum wire.SessionsSummary) []string {
	var keys []string
	for _, s := range sum.Sessions {
		keys = append(keys, s.Key)
	}
	return keys
}

// TestChangedEvents: the first change is published at once; the changes within the event
// interval make exactly one more event, here when the service stops, with the final state.
func TestChangedEvents(t *testing.T) {
	clock := &fixedClock{now: t0}
	h := start(t, Config{Now: clock.Now, EventInterval: time.Hour})
	events := changedEvents(t, h)

	clock.Advance(time.Second)
	mustCall[wire.Session](t, h, subject.SessionsResolve, wire.SessionResolve{SessionKey: "a"})
	first := nextChanged(t, events)
	if first.Count != 1 || !slices.Equal(keysOf(first), []string{"a"}) || first.Path != filepath.Join(h.dir, StoreFile) {
		t.Errorf("first event = %+v, want session a and the store path", first)
	}
	for _, key := range []string{"b", "c", "d", "e", "f"} {
		clock.Advance(time.Second)
		mustCall[wire.Session](t, h, subject.SessionsResolve, wire.SessionResolve{SessionKey: key})
	}
	clock.Advance(time.Second)
	mustCall[wire.Session](t, h, subject.SessionsUpdate, wire.SessionUpdate{SessionKey: "a", ThinkingLevel: ptr("high")})
	mustCall[wire.SessionsSummary](t, h, subject.SessionsSummary, nil) // reads change nothing

	h.stop()
	final := nextChanged(t, events)
	if want := []string{"a", "f", "e", "d", "c"}; final.Count != 6 || !slices.Equal(keysOf(final), want) ||
		final.Sessions[0].ThinkingLevel != "high" || final.Sessions[0].UpdatedAt != t0.Add(7*time.Second).UnixMilli() {
		t.Errorf("final event = %+v, want 6 sessions, newest %q", final, want)
	}
	// Everything the service published has reached the test's connection after these.
	for _, nc := range []*nats.Conn{h.svc.nc, h.nc} {
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(events); n != 0 {
		t.Errorf("%d more events, want the seven changes coalesced into two", n)
	}
}

// TestChangedByAnotherWriter: a store file changed behind the service's back is published
// once the service reads it again.
func TestChangedByAnotherWriter(t *testing.T) {
	h := start(t, Config{})
	events := changedEvents(t, h)
	mustCall[wire.Session](t, h, subject.SessionsResolve, wire.SessionResolve{SessionKey: "a"})
	if got := nextChanged(t, events); got.Count != 1 {
		t.Fatalf("first event = %+v", got)
	}
	store := `{"x": {"sessionId": "x1", "updatedAt": 5}, "y": {"sessionId": "y1", "updatedAt": 9}}`
	if err := os.WriteFile(filepath.Join(h.dir, StoreFile), []byte(store), 0o600); err != nil {
		t.Fatal(err)
	}
	mustCall[wire.SessionsSummary](t, h, subject.SessionsSummary, nil)
	if got := nextChanged(t, events); got.Count != 2 || !slices.Equal(keysOf(got), []string{"y", "x"}) {
		t.Errorf("event after the outside change = %+v, want y and x", got)
	}
}

// TestStorePathMetadata: the store path travels in the micro metadata, which the $SRV.PING
// reply carries.
func TestStorePathMetadata(t *testing.T) {
	h := start(t, Config{})
	subj, err := micro.ControlSubject(micro.PingVerb, subject.ServiceSessions, "")
	if err != nil {
		t.Fatal(err)
	}
	msg, err := h.nc.Request(subj, nil, waitLimit)
	if err != nil {
		t.Fatal(err)
	}
	var ping micro.Ping
	if err := json.Unmarshal(msg.Data, &ping); err != nil {
		t.Fatal(err)
	}
	if got, want := ping.Metadata[wire.MetaStorePath], filepath.Join(h.dir, StoreFile); got != want {
		t.Errorf("metadata %s = %q, want %q", wire.MetaStorePath, got, want)
	}
}
