package sessions

import (
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"unicode"

	"github.com/clawdis/clawdis/bus/wire"
)

// MaxSessionIDLen is the longest session id accepted (it names a file).
const MaxSessionIDLen = 128

// ErrInvalidSessionID is wrapped by ValidateSessionID's errors.
var ErrInvalidSessionID = errors.New("invalid session id")

// ValidateSessionID reports whether id can name a transcript file <Dir>/<id>.jsonl: non-empty,
// at most MaxSessionIDLen bytes, no path separators, no "..", no leading dot, no control or
// space characters.
func ValidateSessionID(id string) error {
	var why string
	switch {
	case id == "":
		why = "empty"
	case len(id) > MaxSessionIDLen:
		why = fmt.Sprintf("longer than %d bytes", MaxSessionIDLen)
	case strings.ContainsAny(id, `/\`):
		why = "contains a path separator"
	case strings.Contains(id, ".."):
		why = `contains ".."`
	case strings.HasPrefix(id, "."):
		why = "starts with a dot"
	case strings.IndexFunc(id, func(r rune) bool {
		return unicode.IsControl(r) || unicode.IsSpace(r) || r == unicode.ReplacementChar
	}) >= 0:
		why = "contains a space, control or invalid character"
	default:
		return nil
	}
	return fmt.Errorf("%w %q: %s", ErrInvalidSessionID, wire.Clip(id), why)
}

// newUUID returns a random (version 4) UUID, the earlier gateway's kind of session id.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (it panics instead)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
