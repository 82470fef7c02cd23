package sessions

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/clawdis/clawdis/bus/subject"
	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/schemas"
)

// TestSummaryWithinMaxBytes: sessions with long keys are left out of the summary, oldest
// first, so that it takes at most MaxBytes encoded; the count still says how many exist.
func TestSummaryWithinMaxBytes(t *testing.T) {
	const maxBytes = 64 << 10
	clock := &fixedClock{now: t0}
	h := start(t, Config{Now: clock.Now, MaxBytes: maxBytes})
	for _, c := range []string{"a", "b", "c", "d", "e"} {
		clock.Advance(time.Second)
		mustCall[wire.Session](t, h, subject.SessionsResolve, wire.SessionResolve{SessionKey: c + strings.Repeat("<", 5000)})
	}
	raw, err := json.Marshal(mustCall[wire.SessionsSummary](t, h, subject.SessionsSummary, map[string]int{"limit": 5}))
	if err != nil {
		t.Fatal(err)
	}
	var sum wire.SessionsSummary
	if err := json.Unmarshal(raw, &sum); err != nil {
		t.Fatal(err)
	}
	if len(raw) > maxBytes || sum.Count != 5 || len(sum.Sessions) == 0 || len(sum.Sessions) == 5 || sum.Sessions[0].Key[0] != 'e' {
		t.Fatalf("summary of %d bytes lists %d of %d sessions, first %.1q; want at most %d bytes with the newest",
			len(raw), len(sum.Sessions), sum.Count, sum.Sessions[0].Key, maxBytes)
	}
}

// TestHostileRequestErrors: bodies that do not decode and long client values give
// INVALID_REQUEST messages naming the field, without repeating the value or Go internals.
func TestHostileRequestErrors(t *testing.T) {
	h := start(t, Config{})
	long := strings.Repeat("Q", 300)
	tests := []struct {
		subj string
		body any
		want string
	}{
		{subject.SessionsSummary, json.RawMessage(`{"limit":1e300}`), "limit: expected an integer"},
		{subject.SessionsHistory, json.RawMessage(`{"sessionKey":{"` + long + `":1}}`), "sessionKey: expected a string"},
		{subject.SessionsResolve, json.RawMessage(`{"sessionKey":"k","sessionId":"` + long + `/x"}`), "sessionId: invalid session id"},
		{subject.SessionsAppend, wire.TranscriptAppend{SessionKey: "k", Messages: []schemas.ChatMessage{
			{Role: long, Content: []schemas.ChatContent{{Type: "text", Text: "x"}}}}}, "must be user or assistant"},
		{subject.SessionsAppend, json.RawMessage(`{"sessionKey":"k","messages":[{"role":"user","timestamp":"` + long + `"}]}`),
			"messages.timestamp: expected an integer"},
	}
	for _, tt := range tests {
		_, err := call[json.RawMessage](h, tt.subj, tt.body)
		werr := checkErr(t, err, wire.CodeInvalidRequest, tt.want)
		if strings.Contains(werr.Message, long[:201]) {
			t.Errorf("%s: message %q echoes the input", tt.subj, werr.Message)
		}
		for _, bad := range []string{"json:", "Go ", "struct", "int64", "unmarshal"} {
			if strings.Contains(werr.Message, bad) {
				t.Errorf("%s: message %q names Go internals", tt.subj, werr.Message)
			}
		}
	}
}
