package wire_test

import (
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/nats-io/nats.go/micro"

	"github.com/clawdis/clawdis/bus/wire"
)

// answers is a micro.Request that records what it was answered.
type answers struct {
	mu   sync.Mutex
	got  []string // "ok:<data>" or the error body
	data []byte
}

func (a *answers) Respond(b []byte, _ ...micro.RespondOpt) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.got = append(a.got, "ok:"+string(b))
	return nil
}
func (a *answers) RespondJSON(v any, _ ...micro.RespondOpt) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return a.Respond(b)
}
func (a *answers) Error(_, _ string, data []byte, _ ...micro.RespondOpt) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.got = append(a.got, string(data))
	return nil
}
func (a *answers) Data() []byte           { return a.data }
func (a *answers) Headers() micro.Headers { return nil }
func (a *answers) Subject() string        { return "gw.v1.req.test.gate" }
func (a *answers) Reply() string          { return "_INBOX.test" }

func (a *answers) all() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.got...)
}

// echo answers every request with its data.
var echo = micro.HandlerFunc(func(req micro.Request) { _ = req.Respond(req.Data()) })

// TestSetUpGateWaits: a request that arrives during the set-up is handled once the set-up
// succeeded, not before; one that arrives after is handled at once.
func TestSetUpGateWaits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := wire.NewSetUp()
		gate := s.Gate("test service", time.Minute, echo)
		early := &answers{data: []byte("early")}
		go gate.Handle(early)
		synctest.Wait() // the handler is blocked in the gate
		if got := early.all(); len(got) != 0 {
			t.Fatalf("answered during the set-up: %q", got)
		}
		s.Finish(nil)
		synctest.Wait()
		if got := early.all(); len(got) != 1 || got[0] != "ok:early" {
			t.Fatalf("after the set-up: %q, want the handler's one answer", got)
		}
		late := &answers{data: []byte("late")}
		gate.Handle(late)
		if got := late.all(); len(got) != 1 || got[0] != "ok:late" {
			t.Fatalf("after the set-up: %q", got)
		}
	})
}

// TestSetUpGateTooLong: a set-up that outlasts the wait answers the request UNAVAILABLE,
// retryable, without calling the handler.
func TestSetUpGateTooLong(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := wire.NewSetUp()
		req := &answers{data: []byte("x")}
		start := time.Now()
		s.Gate("test service", 5*time.Second, echo).Handle(req)
		if waited := time.Since(start); waited != 5*time.Second {
			t.Errorf("waited %v, want the 5 s bound", waited)
		}
		wantError(t, req.all(), "test service is still starting")
	})
}

// TestSetUpGateFailed: after a failed set-up every request is answered UNAVAILABLE, and
// Finish's later calls change nothing.
func TestSetUpGateFailed(t *testing.T) {
	s := wire.NewSetUp()
	s.Finish(errors.New("no space left on device"))
	s.Finish(nil)
	req := &answers{data: []byte("x")}
	s.Gate("test service", time.Minute, echo).Handle(req)
	wantError(t, req.all(), "test service is not running")
}

func wantError(t *testing.T, got []string, message string) {
	t.Helper()
	if len(got) != 1 {
		t.Fatalf("answers %q, want one error", got)
	}
	var e wire.Error
	if err := json.Unmarshal([]byte(got[0]), &e); err != nil || strings.HasPrefix(got[0], "ok:") {
		t.Fatalf("answer %q is not an error body (%v)", got[0], err)
	}
	if e.Code != "UNAVAILABLE" || !e.Retryable || e.Message != message {
		t.Fatalf("error %+v, want UNAVAILABLE retryable %q", e, message)
	}
}
