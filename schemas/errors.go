package schemas

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
)

// Names of the validated value in messages about the value as a whole.
const (
	rootFrame   = "frame"
	rootParams  = "params"
	rootPayload = "payload"
)

// ValidationError is one readable reason why a value does not match its schema.
type ValidationError struct {
	// Field is the dotted path of the offending value, like "client.name" or
	// "snapshot.presence[0].ts"; for a missing or unexpected property it is the object that
	// holds it. It is empty for the validated value itself.
	Field string
	// Reason is the message without the field, like "must not be empty" or
	// `missing property "mode"`.
	Reason string

	text string
}

// Error returns one line naming the field, like "client.name must not be empty",
// `client: missing property "mode"` or "frame must be an object".
func (e *ValidationError) Error() string { return e.text }

// render picks the most useful single cause of verr and phrases it.
func (s *Set) render(verr *jsonschema.ValidationError, v any, root string) *ValidationError {
	ls := leaves(verr, nil)
	if len(ls) == 0 { // never happens: a failure always has a cause
		return &ValidationError{Reason: "is invalid", text: root + " is invalid"}
	}
	best := ls[0]
	for _, l := range ls[1:] {
		if better(l, best) {
			best = l
		}
	}
	return s.phrase(best, v, root)
}

// leaves collects the causes that are not mere groupings of other causes.
func leaves(e *jsonschema.ValidationError, out []*jsonschema.ValidationError) []*jsonschema.ValidationError {
	if k, ok := e.ErrorKind.(*kind.OneOf); ok && k.Subschemas == nil {
		return append(out, oneOfLeaves(e)...)
	}
	if len(e.Causes) == 0 {
		return append(out, e)
	}
	for _, c := range e.Causes {
		out = leaves(c, out)
	}
	return out
}

// oneOfLeaves picks the causes of a oneOf that no branch matched. The branches are objects
// told apart by their "type" property: the causes of the branch whose type matched are the
// useful ones. When no branch's type matched, the cause is the type itself.
func oneOfLeaves(e *jsonschema.ValidationError) []*jsonschema.ValidationError {
	loc := e.InstanceLocation
	typeLoc := append(slices.Clip(loc), "type")
	var (
		wants      []any
		missing    bool
		notObject  *jsonschema.ValidationError
		allLeaves  []*jsonschema.ValidationError
		gotType    any
		branchLeft []*jsonschema.ValidationError
	)
	for _, branch := range e.Causes {
		ls := leaves(branch, nil)
		discriminated := false
		for _, l := range ls {
			switch k := l.ErrorKind.(type) {
			case *kind.Const:
				if slices.Equal(l.InstanceLocation, typeLoc) {
					discriminated = true
					wants = append(wants, k.Want)
					gotType = k.Got
				}
			case *kind.Enum:
				if slices.Equal(l.InstanceLocation, typeLoc) {
					discriminated = true
					wants = append(wants, k.Want...)
					gotType = k.Got
				}
			case *kind.Required:
				if slices.Equal(l.InstanceLocation, loc) && slices.Contains(k.Missing, "type") {
					discriminated = true
					missing = true
				}
			case *kind.Type:
				if slices.Equal(l.InstanceLocation, loc) {
					discriminated = true
					notObject = l
				}
			}
		}
		if !discriminated && branchLeft == nil {
			branchLeft = ls
		}
		allLeaves = append(allLeaves, ls...)
	}
	switch {
	case branchLeft != nil:
		return branchLeft
	case notObject != nil:
		return []*jsonschema.ValidationError{notObject}
	case missing:
		return []*jsonschema.ValidationError{{InstanceLocation: loc, ErrorKind: &kind.Required{Missing: []string{"type"}}}}
	case len(wants) > 0:
		return []*jsonschema.ValidationError{{InstanceLocation: typeLoc, ErrorKind: &kind.Enum{Got: gotType, Want: wants}}}
	}
	return allLeaves
}

// rank orders error kinds at the same depth: the first is the most telling.
func rank(k jsonschema.ErrorKind) int {
	switch k.(type) {
	case *kind.Type:
		return 0
	case *kind.Const, *kind.Enum:
		return 1
	case *kind.Required:
		return 2
	case *kind.AdditionalProperties, *kind.FalseSchema:
		return 3
	case *kind.MinLength, *kind.Minimum, *kind.Maximum, *kind.ExclusiveMinimum, *kind.ExclusiveMaximum:
		return 4
	}
	return 5
}

// better reports whether a is a more useful cause than b: deeper first, then by kind, then
// by location and schema so that the choice never depends on map order.
func better(a, b *jsonschema.ValidationError) bool {
	if da, db := len(a.InstanceLocation), len(b.InstanceLocation); da != db {
		return da > db
	}
	if ra, rb := rank(a.ErrorKind), rank(b.ErrorKind); ra != rb {
		return ra < rb
	}
	if c := slices.Compare(a.InstanceLocation, b.InstanceLocation); c != 0 {
		return c < 0
	}
	if a.SchemaURL != b.SchemaURL {
		return a.SchemaURL < b.SchemaURL
	}
	return fmt.Sprintf("%T", a.ErrorKind) < fmt.Sprintf("%T", b.ErrorKind)
}

// phrase turns one cause into a ValidationError.
func (s *Set) phrase(e *jsonschema.ValidationError, v any, root string) *ValidationError {
	loc := e.InstanceLocation
	var reason string
	prefixed := false // reason is about the object at loc, not loc itself
	switch k := e.ErrorKind.(type) {
	case *kind.Required:
		prefixed = true
		reason = "missing " + plural(len(k.Missing), "property", "properties") + " " + quoteAll(k.Missing)
	case *kind.AdditionalProperties:
		prefixed = true
		props := slices.Sorted(slices.Values(k.Properties))
		reason = "unexpected " + plural(len(props), "property", "properties") + " " + quoteSome(props)
	case *kind.FalseSchema:
		if len(loc) == 0 {
			reason = "is not allowed"
			break
		}
		prefixed = true
		reason = "unexpected property " + strconv.Quote(clip(loc[len(loc)-1]))
		loc = loc[:len(loc)-1]
	case *kind.Type:
		reason = "must be " + s.describe(e.SchemaURL, k.Want)
	case *kind.Minimum, *kind.Maximum, *kind.ExclusiveMinimum, *kind.ExclusiveMaximum:
		reason = "must be " + s.describe(e.SchemaURL, nil)
	case *kind.Const:
		reason = "must be " + display(k.Want)
	case *kind.Enum:
		reason = "must be " + oneOf(k.Want)
	case *kind.MinLength:
		if k.Want == 1 {
			reason = "must not be empty"
		} else {
			reason = fmt.Sprintf("must be at least %d characters long", k.Want)
		}
	case *kind.MaxLength:
		reason = fmt.Sprintf("must be at most %d characters long", k.Want)
	case *kind.MinItems:
		reason = fmt.Sprintf("must have at least %d %s", k.Want, plural(k.Want, "item", "items"))
	case *kind.MaxItems:
		reason = fmt.Sprintf("must have at most %d %s", k.Want, plural(k.Want, "item", "items"))
	case *kind.UniqueItems:
		reason = fmt.Sprintf("must not repeat items (%d and %d are equal)", k.Duplicates[0], k.Duplicates[1])
	case *kind.OneOf:
		reason = "matches more than one allowed shape"
	case *kind.InvalidJsonValue:
		reason = "is not a JSON value"
	default:
		reason = "is invalid"
	}
	field := path(v, loc)
	text := reason
	switch {
	case prefixed && field != "":
		text = field + ": " + reason
	case !prefixed && field == "":
		text = root + " " + reason
	case !prefixed:
		text = field + " " + reason
	}
	return &ValidationError{Field: field, Reason: reason, text: text}
}

// path renders an instance location as a dotted path with [i] for array indexes.
func path(v any, loc []string) string {
	var b strings.Builder
	for _, tok := range loc {
		switch cur := v.(type) {
		case []any:
			b.WriteString("[" + tok + "]")
			if i, err := strconv.Atoi(tok); err == nil && i >= 0 && i < len(cur) {
				v = cur[i]
			} else {
				v = nil
			}
			continue
		case map[string]any:
			v = cur[tok]
		default:
			v = nil
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(clip(tok))
	}
	if p := b.String(); len(p) > maxEchoPath {
		i := len(p) - maxEchoPath
		for i < len(p) && !utf8.RuneStart(p[i]) {
			i++
		}
		return "…" + p[i:]
	}
	return b.String()
}

// describe says what the schema at url accepts, like "a string", "an integer >= 1" or "an
// integer >= 0 or null". want is the fallback list of types when the schema is not found.
func (s *Set) describe(url string, want []string) string {
	sch, _ := s.lookup(url).(map[string]any)
	types := TypesOf(sch)
	if len(types) == 0 {
		types = want
	}
	if len(types) == 0 {
		return "valid"
	}
	parts := make([]string, len(types))
	for i, t := range types {
		switch t {
		case "integer", "number":
			parts[i] = article(t) + bounds(sch)
		case "null":
			parts[i] = "null"
		default:
			parts[i] = article(t)
		}
	}
	return strings.Join(parts, " or ")
}

func article(t string) string {
	switch t {
	case "integer", "object", "array":
		return "an " + t
	}
	return "a " + t
}

func bounds(sch map[string]any) string {
	minimum, hasMin := sch["minimum"]
	maximum, hasMax := sch["maximum"]
	switch {
	case hasMin && hasMax:
		return fmt.Sprintf(" between %v and %v", minimum, maximum)
	case hasMin:
		return fmt.Sprintf(" >= %v", minimum)
	case hasMax:
		return fmt.Sprintf(" <= %v", maximum)
	}
	if x, ok := sch["exclusiveMinimum"]; ok {
		return fmt.Sprintf(" > %v", x)
	}
	if x, ok := sch["exclusiveMaximum"]; ok {
		return fmt.Sprintf(" < %v", x)
	}
	return ""
}

// lookup finds the schema document node at an absolute schema location.
func (s *Set) lookup(url string) any {
	base, ptr, _ := strings.Cut(url, "#")
	node, ok := s.docs[base]
	if !ok || ptr == "" {
		return node
	}
	for _, tok := range strings.Split(strings.TrimPrefix(ptr, "/"), "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		switch cur := node.(type) {
		case map[string]any:
			node = cur[tok]
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(cur) {
				return nil
			}
			node = cur[i]
		default:
			return nil
		}
	}
	return node
}

func display(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

func oneOf(values []any) string {
	if len(values) == 1 {
		return display(values[0])
	}
	parts := make([]string, len(values))
	for i, v := range values {
		parts[i] = display(v)
	}
	return "one of " + strings.Join(parts, ", ")
}

// Bounds of client input repeated in a message (SPEC §5.2: at most 200 characters of it
// in all): a property name is cut to maxEchoName characters, at most maxEchoNames are
// listed.
// A field path longer than maxEchoPath bytes is cut to its end.
const (
	maxEchoName  = 40
	maxEchoNames = 3
	maxEchoPath  = 120
)

// clip cuts a client-supplied name to maxEchoName characters, marking the cut with "…".
func clip(s string) string { return Clip(s, maxEchoName) }

// Clip returns s cut to n characters, with "…" appended when it was longer: how an error
// text repeats client input, which it may do for at most 200 characters in all (SPEC §5.2).
func Clip(s string, n int) string {
	count := 0
	for i := range s {
		if count == n {
			return s[:i] + "…"
		}
		count++
	}
	return s
}

// quoteSome quotes the first maxEchoNames client-supplied names, clipped, and says how
// many more there are.
func quoteSome(names []string) string {
	shown := make([]string, 0, maxEchoNames)
	for _, n := range names[:min(len(names), maxEchoNames)] {
		shown = append(shown, clip(n))
	}
	out := quoteAll(shown)
	if more := len(names) - len(shown); more > 0 {
		out += fmt.Sprintf(" and %d more", more)
	}
	return out
}

func quoteAll(names []string) string {
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = strconv.Quote(n)
	}
	return strings.Join(parts, ", ")
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
