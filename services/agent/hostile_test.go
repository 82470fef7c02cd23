package agent

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/clawdis/clawdis/bus/subject"
	"github.com/clawdis/clawdis/bus/wire"
)

// TestHostileParamsErrors: agent and chat.send params that do not decode or carry long
// values are INVALID_REQUEST with a message naming the field, repeating at most 200
// characters of the input and no Go internals.
func TestHostileParamsErrors(t *testing.T) {
	h := start(t, commandConfig("sh", script(t, "args.sh"), "x"))
	long := strings.Repeat("V", 400)
	tests := []struct{ subj, body, want string }{
		{subject.AgentRun, `{"message":"m","idempotencyKey":"k","timeout":1e300}`, "params: timeout: expected an integer"},
		{subject.AgentRun, `{"message":"m","idempotencyKey":"k","timeout":` + strings.Repeat("9", 300) + `}`, "params: timeout: expected an integer"},
		{subject.AgentRun, `{"message":"m","idempotencyKey":"k","timeout":10000000000}`, "timeout must be between 1 and 86400 seconds"},
		{subject.AgentRun, `{"message":{"` + long + `":1},"idempotencyKey":"k"}`, "params: message: expected a string"},
		{subject.AgentRun, `{"message":"m","idempotencyKey":"k","thinking":"` + long + `"}`, "invalid thinking level"},
		{subject.AgentRun, `{"message":"m","idempotencyKey":"k","channel":"` + long + `"}`, "invalid channel"},
		{subject.AgentRun, `[` + long + `]`, "malformed JSON"},
		{subject.ChatSend, `{"sessionKey":"main","message":"m","idempotencyKey":"k","timeoutMs":1e300}`, "params: timeoutMs: expected an integer"},
		{subject.ChatSend, `{"sessionKey":"main","message":"m","idempotencyKey":"k","attachments":[{"type":"file","mimeType":"a/b","fileName":"` + long + `","content":"eA=="}]}`,
			"only images are supported"},
		{subject.AgentStatus, `{"runId":["` + long + `"]}`, "runId: expected a string"},
	}
	for _, tt := range tests {
		ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
		_, err := wire.Request(ctx, h.nc, tt.subj, []byte(tt.body), nil)
		cancel()
		var werr *wire.Error
		if !errors.As(err, &werr) {
			t.Fatalf("%.60s: err = %v, want a wire error", tt.body, err)
		}
		if werr.Code != wire.CodeInvalidRequest || !strings.Contains(werr.Message, tt.want) {
			t.Errorf("%.60s: error %+v, want INVALID_REQUEST containing %q", tt.body, werr, tt.want)
		}
		if strings.Contains(werr.Message, long[:201]) || strings.Contains(werr.Message, "99999999999") {
			t.Errorf("%.60s: message of %d bytes repeats the input", tt.body, len(werr.Message))
		}
		for _, bad := range []string{"json:", "Go ", "struct", "int64", "unmarshal"} {
			if strings.Contains(werr.Message, bad) {
				t.Errorf("%.60s: message %q names Go internals", tt.body, werr.Message)
			}
		}
	}
}
