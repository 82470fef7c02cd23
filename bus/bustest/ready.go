package bustest

import (
	"context"
	"time"

	"github.com/clawdis/clawdis/bus/wire"
)

// Service is a component with the house lifecycle: Run serves until ctx ends, Ready closes
// once its endpoints are subscribed.
type Service interface {
	Run(ctx context.Context) error
	Ready() <-chan struct{}
}

// readyLimit bounds the wait for Ready.
const readyLimit = 10 * time.Second

// RequireAnswersAfterReady checks the Ready contract of svc, which must not be running yet:
// Ready is open before Run, closes after Run starts, and a request with body to subj sent
// from another connection right after it is answered, with no retry. svc is stopped at the
// end and its Run must return nil.
func (b *Bus) RequireAnswersAfterReady(svc Service, subj string, body []byte) {
	t := b.t
	t.Helper()
	select {
	case <-svc.Ready():
		t.Fatal("Ready closed before Run")
	default:
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run returned %v", err)
		}
	}()
	select {
	case <-svc.Ready():
	case err := <-done:
		t.Fatalf("Run returned %v before Ready", err)
	case <-time.After(readyLimit):
		t.Fatalf("not Ready within %s", readyLimit)
	}
	rctx, rcancel := context.WithTimeout(context.Background(), time.Second)
	defer rcancel()
	if _, err := wire.Request(rctx, b.Conn("ready-client"), subj, body, nil); err != nil {
		t.Fatalf("%s right after Ready: %v", subj, err)
	}
}
