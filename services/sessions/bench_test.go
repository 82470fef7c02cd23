package sessions

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/clawdis/clawdis/bus/subject"
	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/schemas"
)

// BenchmarkAppend measures a SessionsAppend round trip over the in-process bus: one message
// appended to a session of a store holding 50 sessions (each append rewrites and fsyncs the
// store).
func BenchmarkAppend(b *testing.B) {
	h := start(b, Config{})
	for i := range 50 {
		mustCall[wire.Session](b, h, subject.SessionsResolve, wire.SessionResolve{SessionKey: "peer-" + string(rune('a'+i%26)) + string(rune('a'+i/26))})
	}
	body, err := json.Marshal(wire.TranscriptAppend{SessionKey: "main",
		Messages: []schemas.ChatMessage{text("user", "hello there, how are you today?", 1)}})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := wire.Request(ctx, h.nc, subject.SessionsAppend, body, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHistory measures a SessionsHistory round trip returning the default 200 of 1,000
// messages.
func BenchmarkHistory(b *testing.B) {
	h := start(b, Config{})
	msgs := make([]schemas.ChatMessage, 100)
	for i := range msgs {
		msgs[i] = text("assistant", "a reply of moderate length, about sixty characters long....", int64(i+1))
	}
	for range 10 {
		mustCall[wire.Session](b, h, subject.SessionsAppend, wire.TranscriptAppend{SessionKey: "main", Messages: msgs})
	}
	body, _ := json.Marshal(wire.HistoryRequest{SessionKey: "main"})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := wire.Request(ctx, h.nc, subject.SessionsHistory, body, nil); err != nil {
			b.Fatal(err)
		}
	}
}
