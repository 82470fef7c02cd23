package edge

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"
)

// frameStatus is what parseRequest found.
type frameStatus int

const (
	frameReq        frameStatus = iota // a valid req in the common shape: use it
	frameOther                         // valid JSON otherwise: decide with the schemas
	frameMalformed                     // not JSON: the connection closes
	frameLongNumber                    // JSON with a number literal over MaxNumberLen characters: invalid
)

// MaxNumberLen is the longest JSON number literal a frame may hold (SPEC §5.2): a longer one
// makes the frame invalid before any schema looks at it, so that no frame costs more than
// linear time to reject.
const MaxNumberLen = 64

// hasLongNumber reports whether the JSON text b holds a number literal longer than
// MaxNumberLen characters outside strings. It is one linear scan; b need not be valid.
func hasLongNumber(b []byte) bool {
	run := 0
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			run = 0
			for i++; i < len(b) && b[i] != '"'; i++ {
				if b[i] == '\\' {
					i++
				}
			}
		case c >= '0' && c <= '9' || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E':
			if run++; run > MaxNumberLen {
				return true
			}
		default:
			run = 0
		}
	}
	return false
}

// parseRequest decodes a frame in one pass when it is a req in the common shape: a JSON
// object with exactly the keys type ("req"), id and method (non-empty strings without
// escapes, in valid UTF-8) and optionally params (kept as raw bytes; null counts as absent), each once.
// Such a frame satisfies the request schema, so nothing else needs to look at it. Anything
// else that is valid JSON is frameOther, for the schema path to accept or word the error;
// valid JSON holding a number literal longer than MaxNumberLen is frameLongNumber.
func parseRequest(data []byte) (Request, frameStatus) {
	if !json.Valid(data) {
		return Request{}, frameMalformed
	}
	if hasLongNumber(data) {
		return Request{}, frameLongNumber
	}
	var req Request
	var seen [4]bool // type, id, method, params
	ok := members(data, skipSpace(data, 0), func(key, val []byte) bool {
		slot := -1
		switch string(key) {
		case "type":
			slot = 0
			if string(val) != `"req"` {
				return false
			}
		case "id", "method":
			slot = 1
			if key[0] == 'm' {
				slot = 2
			}
			s, _, ok := plainString(val, 0)
			if !ok || len(s) == 0 {
				return false
			}
			if slot == 1 {
				req.ID = string(s)
			} else if m, known := methodNames[string(s)]; known {
				req.Method = m // no copy of a name the route table knows
			} else {
				req.Method = string(s)
			}
		case "params":
			slot = 3
			if string(val) != "null" {
				req.Params = bytes.Clone(val) // the frame's buffer is reused for the next one
			}
		default:
			return false
		}
		if seen[slot] {
			return false
		}
		seen[slot] = true
		return true
	})
	if !ok || !seen[0] || !seen[1] || !seen[2] {
		return Request{}, frameOther
	}
	return req, frameReq
}

// methodNames interns the methods of the default route table.
var methodNames = func() map[string]string {
	m := make(map[string]string)
	for _, r := range DefaultRoutes() {
		m[r.Method] = r.Method
	}
	return m
}()

// skipSpace returns the index of the first non-space byte at or after p.
func skipSpace(b []byte, p int) int {
	for p < len(b) {
		switch b[p] {
		case ' ', '\t', '\n', '\r':
			p++
		default:
			return p
		}
	}
	return p
}

// members calls fn with the key and the raw value of each member of the JSON object at p,
// in order, while fn returns true; false when b[p] starts no object, a key has escapes, or fn
// said no. b is valid JSON.
func members(b []byte, p int, fn func(key, val []byte) bool) bool {
	return each(b, p, '{', fn)
}

// elements calls fn with each raw element of the JSON array b while fn returns true; false
// when b is no array or fn said no. b is valid JSON.
func elements(b []byte, fn func(val []byte) bool) bool {
	return each(b, 0, '[', func(_, val []byte) bool { return fn(val) })
}

// each walks the JSON object or array (open '{' or '[') at p, calling fn with each member's
// key (nil in an array) and raw value while fn returns true.
func each(b []byte, p int, open byte, fn func(key, val []byte) bool) bool {
	if p >= len(b) || b[p] != open {
		return false
	}
	end := byte('}')
	if open == '[' {
		end = ']'
	}
	p++
	for {
		p = skipSpace(b, p)
		if b[p] == end {
			return true
		}
		if b[p] == ',' {
			p = skipSpace(b, p+1)
		}
		var key []byte
		if open == '{' {
			k, next, ok := plainString(b, p)
			if !ok {
				return false
			}
			key = k
			p = skipSpace(b, skipSpace(b, next)+1) // past the ':'
		}
		start := p
		p = skipValue(b, p)
		if !fn(key, b[start:p]) {
			return false
		}
	}
}

// plainString reads the JSON string at p when it has no escapes and is valid UTF-8: its contents and the index
// after its closing quote. b is valid JSON.
func plainString(b []byte, p int) (s []byte, next int, ok bool) {
	if p >= len(b) || b[p] != '"' {
		return nil, p, false
	}
	end := bytes.IndexByte(b[p+1:], '"')
	if end < 0 {
		return nil, p, false
	}
	s = b[p+1 : p+1+end]
	if bytes.IndexByte(s, '\\') >= 0 || !utf8.Valid(s) {
		return nil, p, false
	}
	return s, p + end + 2, true
}

// skipValue returns the index just after the JSON value at p; b is valid JSON.
func skipValue(b []byte, p int) int {
	depth := 0
	for p < len(b) {
		switch c := b[p]; c {
		case '"':
			p++
			for p < len(b) && b[p] != '"' {
				if b[p] == '\\' {
					p++
				}
				p++
			}
			p++
			if depth == 0 {
				return p
			}
			continue
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 {
				return p
			}
			depth--
			if depth == 0 {
				return p + 1
			}
		case ',':
			if depth == 0 {
				return p
			}
		case ' ', '\t', '\n', '\r':
			if depth == 0 {
				return p
			}
		}
		p++
	}
	return p
}
