package agent

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestReplyBufferBounds: the reply keeps at most maxBytes bytes (whole runes) and no more
// than maxEncoded bytes of JSON, ends with the truncation line once cut, and keeps nothing
// after that.
func TestReplyBufferBounds(t *testing.T) {
	tests := []struct {
		name         string
		maxBytes     int
		maxEncoded   int
		chunks       []string
		want         string // the kept text, before the truncation line
		wantTruncate bool
	}{
		{"fits", 10, 1000, []string{"hello", " you"}, "hello you", false},
		{"exactly", 5, 1000, []string{"hel", "lo"}, "hello", false},
		{"cut in a chunk", 5, 1000, []string{"hel", "lo world"}, "hello", true},
		{"cut before a rune", 4, 1000, []string{"abc€"}, "abc", true},
		{"encoded bound: escapes count six", 1000, truncationReserve + 12, []string{"<<<<<"}, "<<", true},
		{"invalid bytes count six", 1000, truncationReserve + 12, []string{"\xff\xfe\xfd"}, "\xff\xfe", true},
		{"nothing after the cut", 3, 1000, []string{"abcd", "efg"}, "abc", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newReplyBuffer(tt.maxBytes, tt.maxEncoded)
			var streamed strings.Builder
			for _, c := range tt.chunks {
				streamed.WriteString(r.add(c))
			}
			want := tt.want
			if tt.wantTruncate {
				want += "\n" + truncationLine(len(tt.want))
			}
			if got := r.text(); got != strings.TrimSpace(want) {
				t.Fatalf("text = %q, want %q", got, want)
			}
			if streamed.String() != want {
				t.Fatalf("streamed %q, want %q", streamed.String(), want)
			}
			if r.isFull() != tt.wantTruncate {
				t.Fatalf("full = %v", r.isFull())
			}
			if enc, _ := json.Marshal(r.text()); len(enc) > tt.maxEncoded+2 {
				t.Fatalf("encoded %d bytes, over %d", len(enc), tt.maxEncoded)
			}
		})
	}
}

// TestJSONLenBounds: jsonLen is never below what encoding/json produces.
func TestJSONLenBounds(t *testing.T) {
	for _, s := range []string{"", "plain", "<a href=\"x\">&</a>", "\x00\x01\n\t\\", "\xff\xfe", "é€😀", "\u2028\u2029",
		strings.Repeat("\x1b[31m", 100)} {
		enc, _ := json.Marshal(s)
		if got := jsonLen(s); got < len(enc) {
			t.Errorf("jsonLen(%q) = %d < %d", s, got, len(enc))
		}
	}
}

// TestFrameLimitIsTheBusAtMost: a configured MaxPayload larger than the bus's limit does not
// let a reply grow past what the bus carries.
func TestFrameLimitIsTheBusAtMost(t *testing.T) {
	cfg := commandConfig("true")
	cfg.MaxPayload = 1 << 30
	h := start(t, cfg)
	bus := h.svc.nc.MaxPayload()
	if got := h.svc.frameLimit(); bus <= 0 || int64(got) != bus {
		t.Fatalf("frameLimit = %d, want the bus's %d", got, bus)
	}
	cfg.MaxPayload = 1000
	h = start(t, cfg)
	if got := h.svc.frameLimit(); got != 1000 {
		t.Fatalf("frameLimit = %d, want the configured 1000", got)
	}
}
