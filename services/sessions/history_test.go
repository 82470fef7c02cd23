package sessions

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/clawdis/clawdis/bus/subject"
	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/schemas"
)

// appendN appends messages "m1".."mN" (alternating user/assistant, timestamp = number) to
// key in batches.
func appendN(t *testing.T, h *harness, key string, n int) {
	t.Helper()
	var batch []schemas.ChatMessage
	for i := 1; i <= n; i++ {
		role := "user"
		if i%2 == 0 {
			role = "assistant"
		}
		batch = append(batch, text(role, fmt.Sprintf("m%d", i), int64(i)))
		if len(batch) == 100 || i == n {
			mustCall[wire.Session](t, h, subject.SessionsAppend, wire.TranscriptAppend{SessionKey: key, Messages: batch})
			batch = nil
		}
	}
}

// rangeTexts returns "m<from>".."m<to>".
func rangeTexts(from, to int) []string {
	var out []string
	for i := from; i <= to; i++ {
		out = append(out, fmt.Sprintf("m%d", i))
	}
	return out
}

func TestHistoryLimit(t *testing.T) {
	h := start(t, Config{})
	appendN(t, h, "main", 1200)
	mustCall[wire.Session](t, h, subject.SessionsUpdate, wire.SessionUpdate{SessionKey: "main", ThinkingLevel: ptr("high")})
	appendN(t, h, "short", 3)
	tests := []struct {
		name  string
		req   wire.HistoryRequest
		want  []string
		think string
		code  string
	}{
		{"default 200", wire.HistoryRequest{SessionKey: "main"}, rangeTexts(1001, 1200), "high", ""},
		{"limit 5", wire.HistoryRequest{SessionKey: "main", Limit: 5}, rangeTexts(1196, 1200), "high", ""},
		{"limit 1", wire.HistoryRequest{SessionKey: "main", Limit: 1}, rangeTexts(1200, 1200), "high", ""},
		{"max 1000", wire.HistoryRequest{SessionKey: "main", Limit: 1000}, rangeTexts(201, 1200), "high", ""},
		{"fewer than limit", wire.HistoryRequest{SessionKey: "short", Limit: 10}, rangeTexts(1, 3), "off", ""},
		{"unknown key", wire.HistoryRequest{SessionKey: "nobody"}, []string{}, "off", ""},
		{"over max", wire.HistoryRequest{SessionKey: "main", Limit: 1001}, nil, "", wire.CodeInvalidRequest},
		{"negative", wire.HistoryRequest{SessionKey: "main", Limit: -1}, nil, "", wire.CodeInvalidRequest},
		{"blank key", wire.HistoryRequest{SessionKey: " "}, nil, "", wire.CodeInvalidRequest},
		{"negative bytes", wire.HistoryRequest{SessionKey: "main", MaxBytes: -1}, nil, "", wire.CodeInvalidRequest},
	}
	set, err := schemas.Load()
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
			defer cancel()
			body, _ := json.Marshal(tt.req)
			raw, err := wire.Request(ctx, h.nc, subject.SessionsHistory, body, nil)
			if tt.code != "" {
				part := "limit"
				if tt.req.MaxBytes < 0 {
					part = "maxBytes"
				} else if strings.TrimSpace(tt.req.SessionKey) == "" {
					part = "sessionKey required"
				}
				checkErr(t, err, tt.code, part)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var res schemas.ChatHistoryResult
			if err := json.Unmarshal(raw, &res); err != nil {
				t.Fatal(err)
			}
			if got := texts(res.Messages); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("%d messages %s…, want %d from %v", len(got), strings.Join(got[:min(3, len(got))], ","),
					len(tt.want), tt.want[:min(1, len(tt.want))])
			}
			if res.ThinkingLevel != tt.think || res.SessionKey != tt.req.SessionKey {
				t.Errorf("thinking %q key %q, want %q %q", res.ThinkingLevel, res.SessionKey, tt.think, tt.req.SessionKey)
			}
			v, err := schemas.Decode(raw)
			if err != nil {
				t.Fatal(err)
			}
			if err := set.Payload("chat.history", v); err != nil {
				t.Errorf("payload does not match the chat.history schema: %v", err)
			}
		})
	}
	// History of an unknown key created nothing.
	if sum := mustCall[wire.SessionsSummary](t, h, subject.SessionsSummary, nil); sum.Count != 2 {
		t.Errorf("count after reading an unknown key = %d, want 2", sum.Count)
	}
	res := mustCall[schemas.ChatHistoryResult](t, h, subject.SessionsHistory, wire.HistoryRequest{SessionKey: "main", Limit: 2})
	if res.SessionID != "id-1" || res.Messages[0].Role != "user" || res.Messages[0].Timestamp != 1199 {
		t.Errorf("history = %+v", res)
	}
}

// TestHistoryMaxBytes: messages are dropped from the oldest end until the encoded result
// fits; a single message too big for the bound leaves none.
func TestHistoryMaxBytes(t *testing.T) {
	h := start(t, Config{})
	msgs := []schemas.ChatMessage{
		text("user", strings.Repeat("a", 500), 1),
		text("assistant", strings.Repeat("b", 100), 2),
		text("user", strings.Repeat("c", 50), 3),
		{Role: "assistant", Timestamp: 4, Content: []schemas.ChatContent{
			{Type: "text", Text: "see"}, {Type: "image", MimeType: "image/png", Data: strings.Repeat("Q", 40)}}},
	}
	mustCall[wire.Session](t, h, subject.SessionsAppend, wire.TranscriptAppend{SessionKey: "main", Messages: msgs})
	// sizeOf is the encoding of the result holding the newest n messages.
	sizeOf := func(n int) int {
		b, err := json.Marshal(schemas.ChatHistoryResult{SessionKey: "main", SessionID: "id-1",
			ThinkingLevel: "off", Messages: append([]schemas.ChatMessage{}, msgs[len(msgs)-n:]...)})
		if err != nil {
			t.Fatal(err)
		}
		return len(b)
	}
	tests := []struct {
		name     string
		maxBytes int
		want     int // newest messages kept
	}{
		{"unbounded", 0, 4},
		{"exactly all", sizeOf(4), 4},
		{"one byte short of all", sizeOf(4) - 1, 3},
		{"exactly three", sizeOf(3), 3},
		{"exactly two", sizeOf(2), 2},
		{"between one and two", sizeOf(2) - 1, 1},
		{"exactly one", sizeOf(1), 1},
		{"newest too big", sizeOf(1) - 1, 0},
		{"tiny", 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
			defer cancel()
			body, _ := json.Marshal(wire.HistoryRequest{SessionKey: "main", MaxBytes: tt.maxBytes})
			raw, err := wire.Request(ctx, h.nc, subject.SessionsHistory, body, nil)
			if err != nil {
				t.Fatal(err)
			}
			var res schemas.ChatHistoryResult
			if err := json.Unmarshal(raw, &res); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(res.Messages, msgs[len(msgs)-tt.want:]) {
				t.Errorf("kept %d messages %v, want the newest %d", len(res.Messages), texts(res.Messages), tt.want)
			}
			if tt.maxBytes > 0 && tt.want > 0 && len(raw) > tt.maxBytes {
				t.Errorf("reply is %d bytes, over maxBytes %d", len(raw), tt.maxBytes)
			}
			if res.Messages == nil {
				t.Error("messages is null, want a list")
			}
		})
	}
}

// TestHistoryBusLimit: without MaxBytes, or with one above it, a reply never exceeds what
// the bus can carry; the oldest messages are dropped instead of the request failing.
func TestHistoryBusLimit(t *testing.T) {
	h := start(t, Config{})
	limit := int(h.nc.MaxPayload())
	big := strings.Repeat("z", limit*2/5)
	for i := range 3 {
		mustCall[wire.Session](t, h, subject.SessionsAppend, wire.TranscriptAppend{SessionKey: "main",
			Messages: []schemas.ChatMessage{text("user", fmt.Sprint(i)+big, int64(i+1))}})
	}
	for _, maxBytes := range []int{0, 2 * limit} {
		ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
		body, _ := json.Marshal(wire.HistoryRequest{SessionKey: "main", MaxBytes: maxBytes})
		raw, err := wire.Request(ctx, h.nc, subject.SessionsHistory, body, nil)
		cancel()
		if err != nil {
			t.Fatalf("maxBytes %d: %v", maxBytes, err)
		}
		var res schemas.ChatHistoryResult
		if err := json.Unmarshal(raw, &res); err != nil {
			t.Fatal(err)
		}
		if len(raw) > limit || len(res.Messages) != 2 || res.Messages[0].Timestamp != 2 {
			t.Errorf("maxBytes %d: %d bytes (bus limit %d), %d messages", maxBytes, len(raw), limit, len(res.Messages))
		}
	}
}
