package agent

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/clawdis/clawdis/bus/bustest"
	"github.com/clawdis/clawdis/bus/subject"
	"github.com/clawdis/clawdis/bus/wire"
)

// TestReadyMeansAnswering: a request sent from another connection right after Ready is
// closed is answered, with no retry.
func TestReadyMeansAnswering(t *testing.T) {
	b := bustest.New(t)
	s, err := New(Config{}, b.Conn("agent"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.Ready():
		t.Fatal("Ready closed before Run")
	default:
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run returned %v", err)
		}
	}()
	select {
	case <-s.Ready():
	case err := <-done:
		t.Fatalf("Run returned %v before Ready", err)
	case <-time.After(waitLimit):
		t.Fatalf("not Ready within %s", waitLimit)
	}
	rctx, rcancel := context.WithTimeout(context.Background(), time.Second)
	defer rcancel()
	if _, err := wire.Request(rctx, b.Conn("client"), subject.AgentWait, []byte(`{"runId":"x"}`), nil); err != nil {
		t.Fatalf("agent.wait right after Ready: %v", err)
	}
}

func TestNewRejectsNilConn(t *testing.T) {
	if _, err := New(Config{}, nil, nil); err == nil {
		t.Fatal("New accepted a nil connection")
	}
}
