package wire

import (
	"encoding/json"
	"errors"
	"reflect"

	"github.com/clawdis/clawdis/schemas"
)

// MaxEcho is the most characters of one client-supplied value an error message repeats
// (SPEC §5.2 allows 200 characters of client input in an error text in all; a message
// quotes at most two values).
const MaxEcho = 64

// Clip returns s cut to MaxEcho characters, with "…" appended when it was longer, for
// error messages that repeat a client-supplied value (quote it with %q).
func Clip(s string) string { return ClipTo(s, MaxEcho) }

// ClipTo returns s cut to n characters, with "…" appended when it was longer: for an error
// text from elsewhere (a network library) that may repeat client input.
func ClipTo(s string, n int) string { return schemas.Clip(s, n) }

// DecodeParams unmarshals a request body into v. A body that does not decode is an
// INVALID_REQUEST whose message names the offending field and the expected type, never the
// value, nor Go types or library internals ("lastInputSeconds: expected an integer").
// what names the body in messages ("params", "send params", …).
func DecodeParams(data []byte, v any, what string) error {
	err := json.Unmarshal(data, v)
	if err == nil {
		return nil
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := te.Field
		if field == "" {
			field = what
		}
		return Invalid("invalid %s: %s: expected %s", what, field, describeType(te.Type))
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return Invalid("invalid %s: malformed JSON at byte %d", what, se.Offset)
	}
	return Invalid("invalid %s", what)
}

// describeType says in JSON terms what a Go type accepts.
func describeType(t reflect.Type) string {
	if t == nil {
		return "another value"
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer within range"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a non-negative integer within range"
	case reflect.Float32, reflect.Float64:
		return "a number within range"
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return "a base64 string"
		}
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return "another value"
}
