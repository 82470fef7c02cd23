package wire

import (
	"sync"
	"time"

	"github.com/nats-io/nats.go/micro"
)

// SetUp is what a service opens after it subscribed its endpoints: its JetStream streams,
// consumers and buckets. Subscribing first makes the service ready (it answers on the bus,
// the gateway accepts clients) without waiting for JetStream's round trips, which are most
// of a start; a request that arrives meanwhile waits for the set-up in its handler (Gate).
// The zero value is not usable; use NewSetUp.
type SetUp struct {
	done chan struct{}
	once sync.Once
	err  error
}

// SetUpWait is how long a request that arrives during a service's set-up waits for it.
const SetUpWait = 5 * time.Second

// NewSetUp returns a set-up in progress.
func NewSetUp() *SetUp { return &SetUp{done: make(chan struct{})} }

// Finish ends the set-up: nil when the service may serve, else why it cannot (requests
// waiting and coming are answered UNAVAILABLE retryable). Later calls do nothing.
func (s *SetUp) Finish(err error) {
	s.once.Do(func() {
		s.err = err
		close(s.done)
	})
}

// Done is closed when Finish was called.
func (s *SetUp) Done() <-chan struct{} { return s.done }

// Wait waits at most d for the set-up; it returns nil once it succeeded, else an *Error
// (UNAVAILABLE, retryable) that names what ("agent service", "telegram provider").
func (s *SetUp) Wait(what string, d time.Duration) error {
	select {
	case <-s.done:
	default:
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-s.done:
		case <-t.C:
			return Unavailable(true, "%s is still starting", what)
		}
	}
	if s.err != nil {
		return Unavailable(true, "%s is not running", what)
	}
	return nil
}

// Gate wraps h so that it handles a request only after the set-up succeeded; waiting at most
// d, else the request is answered with Wait's error.
func (s *SetUp) Gate(what string, d time.Duration, h micro.Handler) micro.Handler {
	return micro.HandlerFunc(func(req micro.Request) {
		if err := s.Wait(what, d); err != nil {
			RespondError(req, what, err)
			return
		}
		h.Handle(req)
	})
}
