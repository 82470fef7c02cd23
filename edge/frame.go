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
	p := skipSpace(data, 0)
	if p >= len(data) || data[p] != '{' {
		return req, frameOther
	}
	p++
	var seen [4]bool // type, id, method, params
	for {
		p = skipSpace(data, p)
		if data[p] == '}' {
			break
		}
		if data[p] == ',' {
			p = skipSpace(data, p+1)
		}
		key, next, ok := plainString(data, p)
		if !ok {
			return req, frameOther
		}
		p = skipSpace(data, next)
		p = skipSpace(data, p+1) // the ':'
		start := p
		p = skipValue(data, p)
		val := data[start:p]
		slot := -1
		switch string(key) {
		case "type":
			slot = 0
			if string(val) != `"req"` {
				return req, frameOther
			}
		case "id", "method":
			slot = 1
			if key[0] == 'm' {
				slot = 2
			}
			s, _, ok := plainString(val, 0)
			if !ok || len(s) == 0 {
				return req, frameOther
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
			return req, frameOther
		}
		if seen[slot] {
			return req, frameOther
		}
		seen[slot] = true
	}
	if !seen[0] || !seen[1] || !seen[2] {
		return req, frameOther
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

// appendJSONString appends s as a JSON string: as is between quotes when nothing in it
// needs escaping, else encoded.
func appendJSONString(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf {
			b, _ := json.Marshal(s)
			return append(dst, b...)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}
