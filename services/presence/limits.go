package presence

import (
	"strings"
	"unicode/utf8"

	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/schemas"
)

// Limits of the system-event params (SPEC §6.4). Lengths are in characters (Unicode code
// points, as JSON Schema's maxLength counts them).
const (
	MaxTextChars        = 4096
	MaxFieldChars       = 256
	MaxTags             = 16
	MaxTagChars         = 64
	MaxLastInputSeconds = 1_000_000_000
)

// checkSystemEvent validates system-event params against the limits of SPEC §6.4; text is
// the trimmed text. The error is an INVALID_REQUEST naming the field and the limit, never
// the value.
func checkSystemEvent(p schemas.SystemEventParams, text string) error {
	if text == "" {
		return wire.Invalid("text required")
	}
	if utf8.RuneCountInString(text) > MaxTextChars {
		return wire.Invalid("text must be at most %d characters (after trimming)", MaxTextChars)
	}
	for _, f := range []struct{ name, v string }{
		{"instanceId", p.InstanceID}, {"host", p.Host}, {"ip", p.IP}, {"mode", p.Mode},
		{"version", p.Version}, {"reason", p.Reason},
	} {
		if utf8.RuneCountInString(f.v) > MaxFieldChars {
			return wire.Invalid("%s must be at most %d characters", f.name, MaxFieldChars)
		}
	}
	if n := p.LastInputSeconds; n != nil && (*n < 0 || *n > MaxLastInputSeconds) {
		return wire.Invalid("lastInputSeconds must be an integer between 0 and %d", MaxLastInputSeconds)
	}
	if len(p.Tags) > MaxTags {
		return wire.Invalid("tags must have at most %d items", MaxTags)
	}
	for i, tag := range p.Tags {
		if strings.TrimSpace(tag) == "" {
			return wire.Invalid("tags[%d] must not be empty", i)
		}
		if utf8.RuneCountInString(tag) > MaxTagChars {
			return wire.Invalid("tags[%d] must be at most %d characters", i, MaxTagChars)
		}
	}
	return nil
}

// clipChars cuts s to at most n characters. Client presence comes from a hello, whose
// fields the edge does not bound; an entry keeps the first n characters of each.
func clipChars(s string, n int) string {
	if len(s) <= n {
		return s
	}
	count := 0
	for i := range s {
		if count == n {
			return s[:i]
		}
		count++
	}
	return s
}
