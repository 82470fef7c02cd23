package agent

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// frameReserve is the room a reply's text leaves in a frame for everything else: the
// envelope of the event or res, its request id, the message around the text, timestamps.
// The run id and session key are counted on top of it.
const frameReserve = 4 << 10

// minTextBudget is the least encoded text a reply may take, even when the run id and
// session key are so long that nothing would be left.
const minTextBudget = 1 << 10

// truncationReserve is the encoded size of "\n" + truncationLine(n) for any int n, at most.
const truncationReserve = 50

// truncationLine is the last line of a reply that was cut after n bytes (SPEC §3
// agent.maxReplyBytes).
func truncationLine(n int) string {
	return "[reply truncated at " + strconv.Itoa(n) + " bytes]"
}

// replyBuffer collects the text of a backend's reply: at most maxBytes bytes, and no more
// than maxEncoded bytes once encoded as a JSON string, so that every event and the final
// fit in a frame (and on the bus). Past either bound the rest is dropped and the reply ends
// with the truncation line. It is used by one goroutine.
type replyBuffer struct {
	maxBytes   int
	maxEncoded int // room for the truncation line already taken off
	b          strings.Builder
	encoded    int
	full       bool
}

// newReplyBuffer returns a buffer for a reply of at most maxBytes bytes whose JSON encoding,
// truncation line included, takes at most maxEncoded bytes.
func newReplyBuffer(maxBytes, maxEncoded int) *replyBuffer {
	return &replyBuffer{maxBytes: maxBytes, maxEncoded: maxEncoded - truncationReserve}
}

// add appends what fits of s (whole runes; an invalid byte counts as one) and returns the
// part kept, followed by "\n" and the truncation line when s filled the reply. Once full it
// keeps and returns nothing. The cost is linear in the part kept.
func (r *replyBuffer) add(s string) string {
	if r.full || s == "" {
		return ""
	}
	bytesLeft, encLeft := r.maxBytes-r.b.Len(), r.maxEncoded-r.encoded
	n, enc := 0, 0
	for n < len(s) {
		c, size := utf8.DecodeRuneInString(s[n:])
		e := jsonRuneLen(c, size)
		if n+size > bytesLeft || enc+e > encLeft {
			kept := s[:n]
			r.b.WriteString(kept)
			r.encoded += enc
			line := "\n" + truncationLine(r.b.Len())
			r.b.WriteString(line)
			r.full = true
			return kept + line
		}
		n += size
		enc += e
	}
	r.b.WriteString(s)
	r.encoded += enc
	return s
}

// isFull reports whether the reply was cut: whatever comes next is dropped.
func (r *replyBuffer) isFull() bool { return r.full }

// text is the reply with surrounding whitespace trimmed.
func (r *replyBuffer) text() string { return strings.TrimSpace(r.b.String()) }

// jsonLen bounds the length of s encoded as a JSON string by encoding/json, quotes
// included.
func jsonLen(s string) int {
	n := 2
	for i := 0; i < len(s); {
		c, size := utf8.DecodeRuneInString(s[i:])
		n += jsonRuneLen(c, size)
		i += size
	}
	return n
}

// jsonRuneLen bounds the length of one rune (size bytes of the input) encoded inside a JSON
// string by encoding/json: control characters, invalid bytes, the HTML-sensitive <, > and
// &, and U+2028/U+2029 become six-byte \u escapes.
func jsonRuneLen(c rune, size int) int {
	switch {
	case c == utf8.RuneError && size == 1, c < 0x20, c == '<', c == '>', c == '&', c == '\u2028', c == '\u2029':
		return 6
	case c == '"', c == '\\':
		return 2
	}
	return size
}

// textBudget is the encoded size a reply of the run may take: what a frame of maxPayload
// bytes leaves for it next to the run id, the session key and the rest of the frame.
func textBudget(maxPayload int, runID, sessionKey string) int {
	return max(maxPayload-frameReserve-jsonLen(runID)-jsonLen(sessionKey), minTextBudget)
}
