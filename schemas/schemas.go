package schemas

//go:generate go run ./internal/gen

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

//go:embed *.schema.json
var files embed.FS

// BaseURL is the URL every schema $id is relative to.
const BaseURL = "https://clawdis.dev/schemas/"

// BundleFile is the generated single-document bundle (see Bundle). It is embedded with the
// sources but never compiled by Load.
const BundleFile = "protocol.schema.json"

// sourceFiles are the hand-written schema files, in compile order (dependencies first).
var sourceFiles = []string{"common.schema.json", "events.schema.json", "methods.schema.json", "frames.schema.json"}

// Frame definitions, in the order the bundle lists them.
var frameDefs = []string{"Hello", "HelloOK", "HelloError", "Request", "Response", "Event"}

// methodSchema names a method's params and payload definitions ("file#Def").
type methodSchema struct {
	params   string
	payload  string
	noParams bool // params may be absent (nil)
}

// methodTable maps every method to its schemas.
var methodTable = map[string]methodSchema{
	MethodHealth:         {params: "methods.schema.json#NoParams", payload: "common.schema.json#HealthSummary", noParams: true},
	MethodStatus:         {params: "methods.schema.json#NoParams", payload: "common.schema.json#StatusSummary", noParams: true},
	MethodSystemPresence: {params: "methods.schema.json#NoParams", payload: "common.schema.json#PresenceList", noParams: true},
	MethodSystemEvent:    {params: "methods.schema.json#SystemEventParams", payload: "methods.schema.json#OKPayload"},
	MethodSend:           {params: "methods.schema.json#SendParams", payload: "methods.schema.json#SendResult"},
	MethodAgent:          {params: "methods.schema.json#AgentParams", payload: "methods.schema.json#AgentResult"},
	MethodChatHistory:    {params: "methods.schema.json#ChatHistoryParams", payload: "methods.schema.json#ChatHistoryResult"},
	MethodChatSend:       {params: "methods.schema.json#ChatSendParams", payload: "methods.schema.json#ChatSendResult"},
	MethodChatAbort:      {params: "methods.schema.json#ChatAbortParams", payload: "methods.schema.json#ChatAbortResult"},
	MethodSessionsList:   {params: "methods.schema.json#SessionsListParams", payload: "methods.schema.json#SessionsListResult", noParams: true},
	MethodSessionsReset:  {params: "methods.schema.json#SessionsResetParams", payload: "methods.schema.json#SessionsResetResult"},
	MethodWebLoginStart:  {params: "methods.schema.json#WebLoginStartParams", payload: "methods.schema.json#WebLoginStartResult", noParams: true},
	MethodWebLoginWait:   {params: "methods.schema.json#WebLoginWaitParams", payload: "methods.schema.json#WebLoginWaitResult", noParams: true},
}

// defURL turns "file#Def" into the definition's absolute URL.
func defURL(ref string) string {
	file, def, _ := strings.Cut(ref, "#")
	return BaseURL + file + "#/$defs/" + def
}

type method struct {
	params   *jsonschema.Schema
	payload  *jsonschema.Schema
	noParams bool
}

// Set holds every schema, compiled once. It is safe for concurrent use.
type Set struct {
	hello       *jsonschema.Schema
	request     *jsonschema.Schema
	serverFrame *jsonschema.Schema            // the union; used when the type selects no frame
	server      map[string]*jsonschema.Schema // frame type -> schema of that server frame
	methods     map[string]method
	docs        map[string]any // schema documents by URL, for error messages
}

// Load compiles every embedded schema. A broken schema yields an error naming its file.
func Load() (*Set, error) {
	return load(files)
}

func load(fsys fs.FS) (*Set, error) {
	c := jsonschema.NewCompiler()
	docs := make(map[string]any, len(sourceFiles))
	for _, name := range sourceFiles {
		_, doc, err := addResource(c, fsys, name)
		if err != nil {
			return nil, err
		}
		docs[BaseURL+name] = doc
	}
	// Compile every file and every definition in it, so that a broken definition is reported
	// against its own file even when nothing uses it yet.
	for _, name := range sourceFiles {
		if _, err := c.Compile(BaseURL + name); err != nil {
			return nil, fmt.Errorf("schemas: %s: %w", name, err)
		}
		defs, _ := docs[BaseURL+name].(map[string]any)["$defs"].(map[string]any)
		for _, def := range sortedKeys(defs) {
			if _, err := c.Compile(defURL(name + "#" + def)); err != nil {
				return nil, fmt.Errorf("schemas: %s: $defs/%s: %w", name, def, err)
			}
		}
	}
	get := func(ref string) (*jsonschema.Schema, error) {
		sch, err := c.Compile(defURL(ref))
		if err != nil {
			return nil, fmt.Errorf("schemas: %s: %w", ref, err)
		}
		return sch, nil
	}
	s := &Set{
		server:  make(map[string]*jsonschema.Schema, 4),
		methods: make(map[string]method, len(methodTable)),
		docs:    docs,
	}
	var errs []error
	must := func(ref string) *jsonschema.Schema {
		sch, err := get(ref)
		errs = append(errs, err)
		return sch
	}
	s.hello = must("frames.schema.json#Hello")
	s.request = must("frames.schema.json#Request")
	s.serverFrame = must("frames.schema.json#ServerFrame")
	s.server[TypeHelloOK] = must("frames.schema.json#HelloOK")
	s.server[TypeHelloError] = must("frames.schema.json#HelloError")
	s.server[TypeRes] = must("frames.schema.json#Response")
	s.server[TypeEvent] = must("frames.schema.json#Event")
	for name, m := range methodTable {
		s.methods[name] = method{params: must(m.params), payload: must(m.payload), noParams: m.noParams}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return s, nil
}

// addResource reads the schema file name from fsys and adds it to c under BaseURL+name,
// returning its bytes and decoded document. Errors name the file.
func addResource(c *jsonschema.Compiler, fsys fs.FS, name string) ([]byte, any, error) {
	b, err := fs.ReadFile(fsys, name)
	if err != nil {
		return nil, nil, fmt.Errorf("schemas: %s: %w", name, err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		return nil, nil, fmt.Errorf("schemas: %s: malformed JSON: %w", name, err)
	}
	if err := c.AddResource(BaseURL+name, doc); err != nil {
		return nil, nil, fmt.Errorf("schemas: %s: %w", name, err)
	}
	return b, doc, nil
}

// Decode parses one JSON value for validation: objects become map[string]any, arrays []any
// and numbers json.Number. Invalid JSON (including trailing data) yields an error whose text
// starts with "malformed JSON: ".
func Decode(b []byte) (any, error) {
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("malformed JSON: %w", err)
	}
	return v, nil
}

// Hello validates a hello frame. A failure is a *ValidationError.
func (s *Set) Hello(v any) error {
	return s.validate(s.hello, v, rootFrame)
}

// Request validates a req frame (not its params; see Params). A failure is a *ValidationError.
func (s *Set) Request(v any) error {
	return s.validate(s.request, v, rootFrame)
}

// HasMethod reports whether method is a method of the protocol, with params and payload
// schemas.
func (s *Set) HasMethod(method string) bool {
	_, ok := s.methods[method]
	return ok
}

// Params validates the params of method. v is the decoded params value, or nil when the
// frame has no params (so a JSON null is treated as absent). health, status and
// system-presence accept absent params or an empty object; the other methods require an
// object. An unknown method is an error; a validation failure is a *ValidationError whose
// root is named "params".
func (s *Set) Params(method string, v any) error {
	m, ok := s.methods[method]
	if !ok {
		return fmt.Errorf("unknown method: %s", clip(method))
	}
	if v == nil && m.noParams {
		return nil
	}
	return s.validate(m.params, v, rootParams)
}

// Payload validates the payload of a successful response to method (for agent: both the
// ack and the final). An unknown method is an error; a validation failure is a
// *ValidationError whose root is named "payload".
func (s *Set) Payload(method string, v any) error {
	m, ok := s.methods[method]
	if !ok {
		return fmt.Errorf("unknown method: %s", clip(method))
	}
	return s.validate(m.payload, v, rootPayload)
}

// ServerFrame validates a frame the server sends: one of hello-ok, hello-error, res or
// event, and for an event with a known name, its payload (and stateVersion for presence and
// health). Malformed JSON yields Decode's error; a validation failure is a *ValidationError.
func (s *Set) ServerFrame(b []byte) error {
	v, err := Decode(b)
	if err != nil {
		return err
	}
	return s.ServerFrameValue(v)
}

// ServerFrameValue is ServerFrame for an already decoded value.
func (s *Set) ServerFrameValue(v any) error {
	sch := s.serverFrame
	if m, ok := v.(map[string]any); ok {
		if t, ok := m["type"].(string); ok {
			if one, ok := s.server[t]; ok {
				sch = one
			}
		}
	}
	return s.validate(sch, v, rootFrame)
}

// validate runs sch and turns a failure into one readable *ValidationError.
func (s *Set) validate(sch *jsonschema.Schema, v any, root string) error {
	err := sch.Validate(v)
	if err == nil {
		return nil
	}
	var verr *jsonschema.ValidationError
	if !errors.As(err, &verr) {
		return fmt.Errorf("%s: %w", root, err)
	}
	return s.render(verr, v, root)
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
