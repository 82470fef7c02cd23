package health

import (
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/clawdis/clawdis/bus/bustest"
	"github.com/clawdis/clawdis/bus/subject"
	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/schemas"
)

// TestReadyMeansAnswering: a request sent from another connection right after Ready is
// closed is answered, with no retry; startup relies on this before the edge accepts clients.
func TestReadyMeansAnswering(t *testing.T) {
	b := bustest.New(t)
	s, err := New(fastConfig(subject.ServiceHealth), b.Conn("health"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	b.RequireAnswersAfterReady(s, subject.HealthGet, nil)
}

// TestReadyWaitsForListedServices: Ready waits until every listed service has answered once,
// so the first status after start-up is complete (the store path, not ""), and no longer
// than ReadyWait when one never answers.
func TestReadyWaitsForListedServices(t *testing.T) {
	h := startHarness(t)
	cfg := fastConfig(subject.ServiceSessions)
	cfg.ReadyWait = time.Hour
	s := h.run(t, cfg)
	h.waitEvent(t, "the first probe", func(sum schemas.HealthSummary) bool { return !sum.OK })
	select {
	case <-s.Ready():
		t.Fatal("ready while the listed sessions service never answered")
	default:
	}
	h.addSessions(t, wire.SessionsSummary{Path: "/s/sessions.json"}, nil)
	select {
	case <-s.Ready():
	case <-time.After(waitTimeout):
		t.Fatal("not ready after the sessions service answered")
	}
	var st schemas.StatusSummary
	if err := json.Unmarshal(h.request(t, subject.HealthStatus), &st); err != nil || st.Sessions.Path != "/s/sessions.json" {
		t.Fatalf("status after ready: %+v (%v)", st.Sessions, err)
	}

	h2 := startHarness(t)
	cfg.ReadyWait = 50 * time.Millisecond
	s2 := h2.run(t, cfg)
	select {
	case <-s2.Ready():
	case <-time.After(waitTimeout):
		t.Fatal("not ready after ReadyWait with a listed service that never answers")
	}
}
