package provider_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/clawdis/clawdis/bus/subject"
	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/services/provider/providertest"
)

// TestSendHostileInputErrors: send requests that do not decode, name another provider, an
// unusable recipient, or make the network fail with a text repeating them, are answered
// with messages naming the field, repeating at most 200 characters of the input and no Go
// internals.
func TestSendHostileInputErrors(t *testing.T) {
	h := newHarness(t)
	f := providertest.NewFake(netID)
	f.SetAutoConnect(true)
	h.start(h.config(f))
	h.waitConnected()
	long := strings.Repeat("W", 400)
	tests := []struct {
		name, subj, body string
		fail             error
		code, want       string
	}{
		{"number for to", must(subject.ProviderSend(netID)), `{"to":1e300,"message":"x","idempotencyKey":"k1"}`, nil,
			wire.CodeInvalidRequest, "send params: to: expected a string"},
		{"object for message", must(subject.ProviderSend(netID)), `{"to":"+1","message":{"` + long + `":1},"idempotencyKey":"k2"}`, nil,
			wire.CodeInvalidRequest, "send params: message: expected a string"},
		{"long provider", must(subject.ProviderSend(netID)), `{"to":"+1","message":"x","provider":"` + long + `","idempotencyKey":"k3"}`, nil,
			wire.CodeInvalidRequest, "sent to the " + netID + " provider"},
		{"long bad recipient", must(subject.ProviderSend(netID)), `{"to":"a ` + long + `","message":"x","idempotencyKey":"k4"}`, nil,
			wire.CodeInvalidRequest, "invalid recipient"},
		{"network error repeating the input", must(subject.ProviderSend(netID)), `{"to":"+1","message":"x","idempotencyKey":"k5"}`,
			errors.New("cannot fetch " + long + long), wire.CodeUnavailable, "send failed: cannot fetch"},
		{"typing with a number", must(subject.ProviderTyping(netID)), `{"chatId":1e300}`, nil,
			wire.CodeInvalidRequest, "typing request: chatId: expected a string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.FailSends(tt.fail)
			ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
			defer cancel()
			_, err := wire.Request(ctx, h.nc, tt.subj, []byte(tt.body), nil)
			var werr *wire.Error
			if !errors.As(err, &werr) || werr.Code != tt.code {
				t.Fatalf("err = %v, want %s", err, tt.code)
			}
			if !strings.Contains(werr.Message, tt.want) {
				t.Errorf("message %q does not contain %q", werr.Message, tt.want)
			}
			if strings.Contains(werr.Message, long[:201]) {
				t.Errorf("message of %d bytes repeats the input", len(werr.Message))
			}
			for _, bad := range []string{"json:", "Go ", "struct", "unmarshal", "float64"} {
				if strings.Contains(werr.Message, bad) {
					t.Errorf("message %q names Go internals", werr.Message)
				}
			}
		})
	}
}
