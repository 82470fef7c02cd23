package providertest

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// NextEvent decodes the bus messages arriving on ch as T and returns the first one accept
// takes (accept also sees the raw message, for checks of its own). It fails t when a message
// does not decode or none is taken within WaitLimit; what names the awaited event.
func NextEvent[T any](t testing.TB, ch <-chan *nats.Msg, what string, accept func(v T, raw []byte) bool) T {
	t.Helper()
	timeout := time.After(WaitLimit)
	for {
		select {
		case m := <-ch:
			var v T
			if err := json.Unmarshal(m.Data, &v); err != nil {
				t.Fatalf("bad %s %s: %v", what, m.Data, err)
			}
			if accept(v, m.Data) {
				return v
			}
		case <-timeout:
			t.Fatalf("no %s within %s", what, WaitLimit)
		}
	}
}

// AnyEvent is the accept function of NextEvent that takes the first message.
func AnyEvent[T any](T, []byte) bool { return true }
