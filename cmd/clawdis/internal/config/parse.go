package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/titanous/json5"

	"github.com/clawdis/clawdis/schemas"
)

// MaxFileSize is the largest config file accepted, in bytes.
const MaxFileSize = 1 << 20

// Error is a config error: the file, the key path (empty when the problem is not about one
// key) and the problem. Its text is one line, `config FILE: PATH: PROBLEM`, and never contains
// the value of a secret.
type Error struct {
	File    string
	Path    string
	Problem string
	// Err is the underlying error, if any (a read error, a JSON5 syntax error).
	Err error
}

func (e *Error) Error() string {
	file := e.File
	if file == "" {
		file = "<input>"
	}
	if e.Path == "" {
		return "config " + file + ": " + e.Problem
	}
	return "config " + file + ": " + e.Path + ": " + e.Problem
}

func (e *Error) Unwrap() error { return e.Err }

// Parse decodes a JSON5 config file's contents over Default(), validates it against the
// config schema (schemas/config.schema.json), applies the migration of the earlier
// gateway's keys and checks what the schema cannot say (URLs, regular expressions, keys
// that depend on each other). file only names the source in messages. It returns one
// warning per unknown key (`unknown config key "agnet" (did you mean "agent"?)`); a null
// value counts as absent. A leading UTF-8 byte order mark is skipped; a file holding only
// whitespace means all defaults.
func Parse(data []byte, file string) (Config, []string, error) {
	fail := func(path, problem string, err error) (Config, []string, error) {
		return Config{}, nil, &Error{File: file, Path: path, Problem: problem, Err: err}
	}
	cfg := Default()
	if len(data) > MaxFileSize {
		return fail("", fmt.Sprintf("file larger than %d bytes", MaxFileSize), nil)
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // a UTF-8 byte order mark
	if len(bytes.TrimSpace(data)) == 0 {
		return cfg, nil, nil
	}
	root, err := decodeJSON5(data)
	if err != nil {
		var se *json5.SyntaxError
		if errors.As(err, &se) {
			// Offset counts the offending byte itself.
			end := min(max(se.Offset-1, 0), int64(len(data)))
			line := 1 + bytes.Count(data[:end], []byte{'\n'})
			return fail("", fmt.Sprintf("syntax error at line %d: %s", line, se.Error()), err)
		}
		return fail("", "syntax error: "+err.Error(), err)
	}
	tree, pe := normalize(root, "")
	if pe != nil {
		return fail(pe.path, pe.problem, nil)
	}
	obj, ok := tree.(map[string]any)
	if !ok {
		return fail("", "the top level must be an object", nil)
	}
	sch := Schema()
	var warnings []string
	seen := map[string]bool{}
	prune(obj, sch.Document(), "", seen, &warnings)
	if err := sch.Validate(obj); err != nil {
		var ve *schemas.ValidationError
		if errors.As(err, &ve) {
			return fail(ve.Field, ve.Reason+gotType(obj, sch.Document(), ve.Field), err)
		}
		return fail("", err.Error(), err)
	}
	if err := decodeInto(obj, &cfg); err != nil {
		return fail("", err.Error(), err)
	}
	migrate(&cfg, seen)
	for _, c := range checks {
		if problem := c.fn(&cfg); problem != "" {
			return fail(c.path, problem, nil)
		}
	}
	return cfg, warnings, nil
}

// decodeJSON5 checks the whole input (so trailing garbage is an error) and then decodes it
// keeping numbers as their literal text.
func decodeJSON5(data []byte) (v any, err error) {
	defer func() {
		// The decoder is third-party code; a panic in it must not take the gateway down with a
		// stack trace instead of a config error.
		if r := recover(); r != nil {
			err = fmt.Errorf("decoder failure: %v", r)
		}
	}()
	// RawMessage only copies: this validates the syntax without converting any number.
	var probe json5.RawMessage
	if err := json5.Unmarshal(data, &probe); err != nil {
		return nil, err
	}
	dec := json5.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

type pathError struct{ path, problem string }

// normalize turns the JSON5 tree into plain JSON values for the schema: numbers become
// json.Number in plain decimal notation (whole numbers as integers, so 1e3 and 0x10 are the
// integers 1000 and 16). Infinity, NaN and whole numbers beyond 64 bits are errors.
func normalize(v any, path string) (any, *pathError) {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			n, pe := normalize(x, join(path, k))
			if pe != nil {
				return nil, pe
			}
			v[k] = n
		}
		return v, nil
	case []any:
		for i, x := range v {
			n, pe := normalize(x, fmt.Sprintf("%s[%d]", path, i))
			if pe != nil {
				return nil, pe
			}
			v[i] = n
		}
		return v, nil
	case json5.Number:
		if i, err := v.Int64(); err == nil {
			return json.Number(strconv.FormatInt(i, 10)), nil
		}
		f, err := v.Float64()
		if err != nil || math.IsInf(f, 0) {
			return nil, &pathError{path, "number out of range"}
		}
		if f == math.Trunc(f) {
			if f < math.MinInt64 || f >= math.MaxInt64 {
				return nil, &pathError{path, "number out of range"}
			}
			return json.Number(strconv.FormatInt(int64(f), 10)), nil
		}
		return json.Number(strconv.FormatFloat(f, 'g', -1, 64)), nil
	case float64: // Infinity and NaN
		return nil, &pathError{path, "must be a finite number"}
	}
	return v, nil
}

// gotType says what type of value the file has at field when the schema wants another
// type there (", got a string"); "" otherwise. It never shows the value itself.
func gotType(tree any, node map[string]any, field string) string {
	for _, tok := range splitField(field) {
		switch v := tree.(type) {
		case map[string]any:
			props, _ := node["properties"].(map[string]any)
			node, _ = props[tok].(map[string]any)
			tree = v[tok]
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(v) {
				return ""
			}
			node, _ = node["items"].(map[string]any)
			tree = v[i]
		default:
			return ""
		}
	}
	if node == nil {
		return ""
	}
	want := schemas.TypesOf(node)
	got := jsonType(tree)
	if len(want) == 0 || slices.Contains(want, got) || (got == "integer" && slices.Contains(want, "number")) {
		return ""
	}
	if got == "number" && slices.Contains(want, "integer") {
		return ", got a fractional number"
	}
	return ", got " + map[string]string{"string": "a string", "boolean": "a boolean", "integer": "a number",
		"number": "a number", "object": "an object", "array": "an array", "null": "null"}[got]
}

// splitField splits "a.b[2].c" into a, b, 2, c.
func splitField(field string) []string {
	var out []string
	for part := range strings.SplitSeq(field, ".") {
		name, idx, _ := strings.Cut(part, "[")
		if name != "" {
			out = append(out, name)
		}
		for idx != "" {
			var i string
			i, idx, _ = strings.Cut(idx, "]")
			out = append(out, i)
			idx = strings.TrimPrefix(idx, "[")
		}
	}
	return out
}

// jsonType is the JSON Schema type of a normalized value; whole numbers are "integer".
func jsonType(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case bool:
		return "boolean"
	case json.Number:
		if _, err := v.Int64(); err == nil {
			return "integer"
		}
		return "number"
	case map[string]any:
		return "object"
	case []any:
		return "array"
	}
	return fmt.Sprintf("%T", v)
}

// decodeInto decodes a validated tree over cfg: keys present replace cfg's values, absent
// keys keep them.
func decodeInto(tree map[string]any, cfg *Config) error {
	b, err := json.Marshal(tree)
	if err != nil {
		return fmt.Errorf("re-encode: %w", err)
	}
	if err := json.Unmarshal(b, cfg); err != nil {
		// Only reachable when Config and the schema disagree; a test decodes every key.
		return fmt.Errorf("decode: %w", err)
	}
	return nil
}

// IDs is a list of chat ids, written as numbers or strings in the file and kept as strings.
type IDs []string

// UnmarshalJSON accepts an array of numbers and strings.
func (l *IDs) UnmarshalJSON(b []byte) error {
	var raw []json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return fmt.Errorf("chat ids: %w", err)
	}
	out := make(IDs, 0, len(raw))
	for i, r := range raw {
		if len(r) > 0 && r[0] == '"' {
			var s string
			if err := json.Unmarshal(r, &s); err != nil {
				return fmt.Errorf("chat id %d: %w", i, err)
			}
			out = append(out, s)
			continue
		}
		n, err := strconv.ParseInt(string(r), 10, 64)
		if err != nil {
			return fmt.Errorf("chat id %d: expected an integer or a string: %w", i, err)
		}
		out = append(out, strconv.FormatInt(n, 10))
	}
	*l = out
	return nil
}

// migrate reads the earlier gateway's inbound.reply keys where the new keys are absent.
func migrate(c *Config, seen map[string]bool) {
	r := c.Inbound.Reply
	if !seen["agent.command"] && seen["inbound.reply.command"] &&
		(!seen["inbound.reply.mode"] || r.Mode == BackendCommand) {
		c.Agent.Command = slices.Clone(r.Command)
	}
	if !seen["agent.timeoutSeconds"] && r.TimeoutSeconds > 0 {
		c.Agent.TimeoutSeconds = r.TimeoutSeconds
	}
	if !seen["sessions.mainKey"] && r.Session.MainKey != "" {
		c.Sessions.MainKey = r.Session.MainKey
	}
	if c.Agent.Backend == "" && len(c.Agent.Command) > 0 {
		c.Agent.Backend = BackendCommand
	}
}
