package health

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/clawdis/clawdis/bus/subject"
	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/schemas"
)

// TestSummariesWithinMaxBytes: sessions with long keys (as clients may create them) and
// twenty queued system events of 4096 HTML characters (24 KB each once encoded) are left
// out, oldest first, so that the health summary fits in a quarter of MaxBytes and the status
// answer in MaxBytes; the newest are kept.
func TestSummariesWithinMaxBytes(t *testing.T) {
	const maxBytes = 128 << 10
	h := startHarness(t)
	key := func(c string) string { return c + strings.Repeat("k", 20_000) }
	sum := wire.SessionsSummary{Path: "/s/sessions.json", Count: 5}
	for i, c := range []string{"e", "d", "c", "b", "a"} { // newest first
		sum.Sessions = append(sum.Sessions, wire.SessionInfo{Key: key(c), SessionID: "id-" + c, UpdatedAt: int64(1e12 - i)})
	}
	h.addSessions(t, sum, nil)
	events := make([]string, 20)
	for i := range events {
		events[i] = string(rune('A'+i)) + strings.Repeat("<", 4095)
	}
	nc := h.bus.Conn("fake-presence")
	if _, err := nc.Subscribe(subject.PresenceQueue, func(m *nats.Msg) {
		data, _ := json.Marshal(wire.SystemEventQueue{Events: events})
		_ = m.Respond(data)
	}); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	cfg := fastConfig(subject.ServiceSessions)
	cfg.MaxBytes = maxBytes
	cfg.QueueWait = time.Minute // a loaded machine must not make status list no events
	h.run(t, cfg)
	ev := h.waitEvent(t, "the sessions known", func(s schemas.HealthSummary) bool { return s.Sessions.Count == 5 })
	if b, _ := json.Marshal(ev); len(b) > maxBytes/4 {
		t.Fatalf("health event of %d bytes, over %d", len(b), maxBytes/4)
	}

	hs, raw := h.health(t)
	if len(raw) > maxBytes/4 {
		t.Fatalf("health answer of %d bytes, over %d", len(raw), maxBytes/4)
	}
	if n := len(hs.Sessions.Recent); n == 0 || n == 5 || hs.Sessions.Recent[0].Key != key("e") {
		t.Fatalf("health lists %d recent sessions, want the newest and not all five", n)
	}

	raw = h.request(t, subject.HealthStatus)
	if len(raw) > maxBytes-statusReserve {
		t.Fatalf("status answer of %d bytes, over %d", len(raw), maxBytes-statusReserve)
	}
	var st schemas.StatusSummary
	if err := json.Unmarshal(raw, &st); err != nil {
		t.Fatal(err)
	}
	q := st.QueuedSystemEvents
	if len(q) == 0 || len(q) == 20 || q[len(q)-1] != events[19] {
		t.Fatalf("status lists %d queued events, want the newest and not all twenty", len(q))
	}
	if st.Sessions.Count != 5 {
		t.Fatalf("sessions.count = %d", st.Sessions.Count)
	}
}

// TestBoundStatusOrder: queued events go first, oldest first, then recent sessions, oldest
// first; a summary that fits is left alone.
func TestBoundStatusOrder(t *testing.T) {
	base := func() schemas.StatusSummary {
		return schemas.StatusSummary{
			ProviderSummary:    []string{"WhatsApp: disabled"},
			QueuedSystemEvents: []string{strings.Repeat("1", 100), strings.Repeat("2", 100)},
			Sessions: schemas.StatusSessions{Recent: []schemas.StatusSession{
				{Key: strings.Repeat("n", 100)}, {Key: strings.Repeat("o", 100)}}},
		}
	}
	full := base()
	size := encodedLen(full)
	boundStatus(&full, size)
	if len(full.QueuedSystemEvents) != 2 || len(full.Sessions.Recent) != 2 {
		t.Fatalf("a summary that fits was trimmed: %+v", full)
	}
	one := base()
	boundStatus(&one, size-50)
	if len(one.QueuedSystemEvents) != 1 || one.QueuedSystemEvents[0][0] != '2' || len(one.Sessions.Recent) != 2 {
		t.Fatalf("want the oldest event dropped only: %d events, %d sessions", len(one.QueuedSystemEvents), len(one.Sessions.Recent))
	}
	three := base()
	boundStatus(&three, size-250)
	if len(three.QueuedSystemEvents) != 0 || len(three.Sessions.Recent) != 1 || three.Sessions.Recent[0].Key[0] != 'n' {
		t.Fatalf("want both events and the oldest session dropped: %+v", three)
	}
	if got := encodedLen(three); got > size-250 {
		t.Fatalf("trimmed summary is %d bytes, over %d", got, size-250)
	}
}
