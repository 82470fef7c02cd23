package agent

import (
	"log/slog"
	"testing"

	"github.com/clawdis/clawdis/bus/bustest"
	"github.com/clawdis/clawdis/bus/subject"
)

// TestReadyMeansAnswering: a request sent from another connection right after Ready is
// closed is answered, with no retry.
func TestReadyMeansAnswering(t *testing.T) {
	b := bustest.New(t)
	s, err := New(Config{}, b.Conn("agent"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	b.RequireAnswersAfterReady(s, subject.AgentStatus, []byte(`{"runId":"x"}`))
}

func TestNewRejectsNilConn(t *testing.T) {
	if _, err := New(Config{}, nil, nil); err == nil {
		t.Fatal("New accepted a nil connection")
	}
}
