package config

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/titanous/json5"
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

// Parse decodes a JSON5 config file's contents over Default(), applies the migration of the
// earlier gateway's keys and validates every value. file only names the source in messages.
// It returns one warning per unknown key (`unknown config key "gateway.prot"`); a null value
// counts as absent. A leading UTF-8 byte order mark is skipped; a file holding only whitespace
// means all defaults.
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
	obj, ok := root.(map[string]any)
	if !ok {
		return fail("", "expected an object at the top level, got "+typeName(root), nil)
	}
	w := walker{seen: map[string]bool{}}
	if pe := w.object(obj, reflect.ValueOf(&cfg).Elem(), ""); pe != nil {
		return fail(pe.path, pe.problem, nil)
	}
	migrate(&cfg, w.seen)
	for _, c := range checks {
		if problem := c.fn(&cfg); problem != "" {
			return fail(c.path, problem, nil)
		}
	}
	return cfg, w.warnings, nil
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

// walker decodes the generic JSON5 tree into the Config struct following its json tags.
type walker struct {
	seen     map[string]bool // paths present with a non-null value
	warnings []string
}

func (w *walker) object(obj map[string]any, v reflect.Value, prefix string) *pathError {
	t := v.Type()
	index := make(map[string]int, t.NumField())
	for i := range t.NumField() {
		index[t.Field(i).Tag.Get("json")] = i
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		path := k
		if prefix != "" {
			path = prefix + "." + k
		}
		i, known := index[k]
		if !known {
			w.warnings = append(w.warnings, fmt.Sprintf("unknown config key %q", path))
			continue
		}
		raw := obj[k]
		if raw == nil {
			continue
		}
		w.seen[path] = true
		if pe := w.value(raw, v.Field(i), t.Field(i), path); pe != nil {
			return pe
		}
	}
	return nil
}

func (w *walker) value(raw any, v reflect.Value, sf reflect.StructField, path string) *pathError {
	mismatch := func(want string) *pathError {
		return &pathError{path, "expected " + want + ", got " + typeName(raw)}
	}
	switch v.Kind() {
	case reflect.Struct:
		obj, ok := raw.(map[string]any)
		if !ok {
			return mismatch("an object")
		}
		return w.object(obj, v, path)
	case reflect.String:
		s, ok := raw.(string)
		if !ok {
			return mismatch("a string")
		}
		v.SetString(s)
	case reflect.Bool:
		b, ok := raw.(bool)
		if !ok {
			return mismatch("a boolean")
		}
		v.SetBool(b)
	case reflect.Int:
		n, problem := toInt(raw)
		if problem != "" {
			return &pathError{path, problem}
		}
		if v.OverflowInt(n) {
			return &pathError{path, "expected an integer, got a number out of range"}
		}
		v.SetInt(n)
	case reflect.Float64:
		f, problem := toFloat(raw)
		if problem != "" {
			return &pathError{path, problem}
		}
		v.SetFloat(f)
	case reflect.Slice:
		arr, ok := raw.([]any)
		if !ok {
			return mismatch("an array")
		}
		ids := sf.Tag.Get("cfg") == "ids"
		out := make([]string, 0, len(arr))
		for i, el := range arr {
			s, problem := toListString(el, ids)
			if problem != "" {
				return &pathError{fmt.Sprintf("%s[%d]", path, i), problem}
			}
			out = append(out, s)
		}
		v.Set(reflect.ValueOf(out))
	default:
		// Only reachable when a field of an unsupported type is added to Config; the tests
		// decode every key, so this is caught there.
		return &pathError{path, "unsupported field type " + v.Type().String()}
	}
	return nil
}

func toListString(el any, ids bool) (string, string) {
	if s, ok := el.(string); ok {
		return s, ""
	}
	if !ids {
		return "", "expected a string, got " + typeName(el)
	}
	if _, isNum := el.(json5.Number); !isNum {
		if _, isFloat := el.(float64); !isFloat {
			return "", "expected a chat id (number or string), got " + typeName(el)
		}
	}
	n, problem := toInt(el)
	if problem != "" {
		return "", problem
	}
	return strconv.FormatInt(n, 10), ""
}

// toInt accepts a number literal with a whole value that fits an int64 (1e3 and 0x10 count).
func toInt(raw any) (int64, string) {
	switch n := raw.(type) {
	case json5.Number:
		if i, err := n.Int64(); err == nil {
			return i, ""
		}
		f, err := n.Float64()
		if err != nil || math.IsInf(f, 0) || f < math.MinInt64 || f >= math.MaxInt64 {
			return 0, "expected an integer, got a number out of range"
		}
		if f != math.Trunc(f) {
			return 0, "expected an integer, got a fractional number"
		}
		return int64(f), ""
	case float64: // Infinity and NaN
		return 0, "expected an integer, got a non-finite number"
	}
	return 0, "expected an integer, got " + typeName(raw)
}

func toFloat(raw any) (float64, string) {
	switch n := raw.(type) {
	case json5.Number:
		f, err := n.Float64()
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return 0, "expected a number, got a number out of range"
		}
		return f, ""
	case float64:
		return 0, "expected a finite number, got a non-finite number"
	}
	return 0, "expected a number, got " + typeName(raw)
}

func typeName(raw any) string {
	switch raw.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case bool:
		return "boolean"
	case json5.Number, float64:
		return "number"
	case map[string]any:
		return "object"
	case []any:
		return "array"
	}
	return fmt.Sprintf("%T", raw)
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

// quoteValue renders a user value for an error message, shortened. Only used for keys that are
// never secrets.
func quoteValue(s string) string {
	const limit = 40
	if len(s) > limit {
		s = strings.ToValidUTF8(s[:limit], "") + "…"
	}
	return strconv.Quote(s)
}
