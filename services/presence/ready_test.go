package presence

import (
	"log/slog"
	"testing"

	"github.com/clawdis/clawdis/bus/bustest"
	"github.com/clawdis/clawdis/bus/subject"
)

// TestReadyMeansAnswering: a request sent from another connection right after Ready is
// closed is answered, with no retry; startup relies on this before the edge accepts clients.
func TestReadyMeansAnswering(t *testing.T) {
	b := bustest.New(t)
	s, err := New(testSelf, b.Conn("presence"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	b.RequireAnswersAfterReady(s, subject.PresenceList, nil)
}
