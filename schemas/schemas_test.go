package schemas

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
)

func mustLoad(tb testing.TB) *Set {
	tb.Helper()
	s, err := Load()
	if err != nil {
		tb.Fatalf("Load: %v", err)
	}
	return s
}

// goldenValidator says which validation a golden frame gets, from its name: hello-ok-* and
// hello-error-* are server frames, other hello-* are Hello, req-* are Request, anything else
// is a server frame.
func goldenValidator(s *Set, name string) (string, func(any) error) {
	switch {
	case strings.HasPrefix(name, "hello-ok-"), strings.HasPrefix(name, "hello-error-"):
	case strings.HasPrefix(name, "hello-"):
		return "Hello", s.Hello
	case strings.HasPrefix(name, "req-"):
		return "Request", s.Request
	}
	return "ServerFrame", s.ServerFrameValue
}

type golden struct {
	name string // file name without .json
	data []byte
	want string // expected error text; empty for valid frames
}

func goldens(tb testing.TB, dir string) []golden {
	tb.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", dir, "*.json"))
	if err != nil || len(paths) == 0 {
		tb.Fatalf("no golden frames in testdata/%s (%v)", dir, err)
	}
	var out []golden
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			tb.Fatal(err)
		}
		g := golden{name: strings.TrimSuffix(filepath.Base(p), ".json"), data: data}
		if dir == "invalid" {
			e, err := os.ReadFile(strings.TrimSuffix(p, ".json") + ".err")
			if err != nil {
				tb.Fatalf("%s has no .err file: %v", p, err)
			}
			g.want = strings.TrimSpace(string(e))
		}
		out = append(out, g)
	}
	return out
}

func TestGoldenValid(t *testing.T) {
	s := mustLoad(t)
	for _, g := range goldens(t, "valid") {
		t.Run(g.name, func(t *testing.T) {
			v, err := Decode(g.data)
			if err != nil {
				t.Fatal(err)
			}
			which, validate := goldenValidator(s, g.name)
			if err := validate(v); err != nil {
				t.Errorf("%s: %v", which, err)
			}
		})
	}
}

func TestGoldenInvalid(t *testing.T) {
	s := mustLoad(t)
	for _, g := range goldens(t, "invalid") {
		t.Run(g.name, func(t *testing.T) {
			v, err := Decode(g.data)
			if err != nil {
				t.Fatal(err)
			}
			which, validate := goldenValidator(s, g.name)
			err = validate(v)
			if err == nil {
				t.Fatalf("%s accepted it, want %q", which, g.want)
			}
			if err.Error() != g.want {
				t.Errorf("%s error\n got: %s\nwant: %s", which, err, g.want)
			}
			var verr *ValidationError
			if !errors.As(err, &verr) {
				t.Errorf("error is %T, want *ValidationError", err)
			}
			// The choice among several causes must not depend on map order.
			for range 20 {
				if again := validate(v); again == nil || again.Error() != err.Error() {
					t.Fatalf("unstable error: %v, then %v", err, again)
				}
			}
		})
	}
}

func TestServerFrameBytes(t *testing.T) {
	s := mustLoad(t)
	tests := []struct {
		in, want string
	}{
		{`{"type":"res","id":"1","ok":true}`, ""},
		{`{"type":"res","id":"1","ok":true,"payload":null}`, ""},
		{`{"type":"res","id":"1","ok":true,"error":{"code":"UNAVAILABLE","message":"x"}}`, `unexpected property "error"`},
		{`{"type":"event","event":"custom.thing"}`, ""},
		{`{"type":"event","event":"shutdown"}`, `missing property "payload"`},
		{`{"type":"event","event":"agent","payload":{"runId":"r","seq":1,"stream":"job","ts":1,"data":{}}}`, `payload.data: missing property "state"`},
		{`{"type":"event","event":"agent","payload":{"runId":"r","seq":0,"stream":"x","ts":1,"data":{}}}`, `payload.seq must be an integer >= 1`},
		{`{"type":"event","event":"chat","payload":{"runId":"r","sessionKey":"k","seq":1,"state":"delta"}}`, `payload: missing property "message"`},
		{`{"type":"event","event":"chat","payload":{"runId":"r","sessionKey":"k","seq":1,"state":"final","message":{"role":"assistant","content":[{"type":"video"}],"timestamp":1}}}`, `payload.message.content[0].type must be one of "text", "image"`},
		{`{"type":"hello-ok"}`, `missing properties "protocol", "server", "features", "snapshot", "policy"`},
		{`{"type":"hello-error","reason":"x","expectedProtocol":0}`, `expectedProtocol must be an integer >= 1`},
		{`{"type":"res","id":"1","ok":true} x`, `malformed JSON: invalid character after top-level value`},
		{``, `malformed JSON: EOF`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			err := s.ServerFrame([]byte(tt.in))
			if got := errText(err); got != tt.want {
				t.Errorf("ServerFrame(%s)\n got: %s\nwant: %s", tt.in, got, tt.want)
			}
		})
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestDecode(t *testing.T) {
	tests := []struct {
		in      string
		wantErr bool
	}{
		{`{"a":1.5,"b":[1,2]}`, false},
		{`null`, false},
		{`{"a":`, true},
		{`{} {}`, true},
		{`nope`, true},
		{``, true},
	}
	for _, tt := range tests {
		v, err := Decode([]byte(tt.in))
		if (err != nil) != tt.wantErr {
			t.Errorf("Decode(%q) = %v, %v", tt.in, v, err)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "malformed JSON: ") {
			t.Errorf("Decode(%q) error %q lacks the malformed JSON prefix", tt.in, err)
		}
	}
}

func TestParams(t *testing.T) {
	s := mustLoad(t)
	tests := []struct {
		method, params string // params "" means absent
		want           string
	}{
		{MethodHealth, ``, ""},
		{MethodHealth, `{}`, ""},
		{MethodHealth, `{"x":1}`, `unexpected property "x"`},
		{MethodHealth, `[]`, `params must be an object`},
		{MethodStatus, ``, ""},
		{MethodSystemPresence, `{}`, ""},
		{MethodSystemEvent, `{"text":"hi","whatever":{"nested":true}}`, ""},
		{MethodSystemEvent, `{"text":"   "}`, ""}, // the service rejects whitespace-only text
		{MethodSystemEvent, `{}`, `missing property "text"`},
		{MethodSystemEvent, `{"text":5}`, `text must be a string`},
		{MethodSystemEvent, `{"text":"x","lastInputSeconds":-1}`, `lastInputSeconds must be an integer between 0 and 1000000000`},
		{MethodSystemEvent, `{"text":"x","tags":[""]}`, `tags[0] must not be empty`},
		{MethodSystemEvent, ``, `params must be an object`},
		// SPEC §6.4 limits name the field and the limit, never the value.
		{MethodSystemEvent, `{"text":"x","host":"` + strings.Repeat("h", 257) + `"}`, `host must be at most 256 characters long`},
		{MethodSystemEvent, `{"text":"x","instanceId":"` + strings.Repeat("i", 257) + `"}`, `instanceId must be at most 256 characters long`},
		{MethodSystemEvent, `{"text":"x","reason":"` + strings.Repeat("r", 257) + `"}`, `reason must be at most 256 characters long`},
		{MethodSystemEvent, `{"text":"x","lastInputSeconds":1000000001}`, `lastInputSeconds must be an integer between 0 and 1000000000`},
		{MethodSystemEvent, `{"text":"x","lastInputSeconds":1e300}`, `lastInputSeconds must be an integer between 0 and 1000000000`},
		{MethodSystemEvent, `{"text":"x","tags":[` + strings.Repeat(`"t",`, 16) + `"t"]}`, `tags must have at most 16 items`},
		{MethodSystemEvent, `{"text":"x","tags":["` + strings.Repeat("t", 65) + `"]}`, `tags[0] must be at most 64 characters long`},
		{MethodSystemEvent, `{"text":"x","host":"` + strings.Repeat("h", 256) + `","tags":["` + strings.Repeat("t", 64) + `"],"lastInputSeconds":1000000000}`, ""},
		{MethodSend, `{"to":"+4366","message":"hi","idempotencyKey":"k"}`, ""},
		{MethodSend, `{"to":"+4366","message":"hi","idempotencyKey":"k","provider":"sms"}`, `provider must be one of "whatsapp", "telegram"`},
		{MethodSend, `{"to":"+4366","message":"","idempotencyKey":"k"}`, `message must not be empty`},
		{MethodSend, `{"to":"+4366","message":"hi"}`, `missing property "idempotencyKey"`},
		{MethodAgent, `{"message":"hi","idempotencyKey":"k","timeout":0}`, `timeout must be an integer between 1 and 86400`},
		{MethodAgent, `{"message":"hi","idempotencyKey":"k","timeout":1e10}`, `timeout must be an integer between 1 and 86400`},
		{MethodAgent, `{"message":"hi","idempotencyKey":"k","timeout":86400}`, ""},
		{MethodChatSend, `{"sessionKey":"main","message":"hi","idempotencyKey":"k","timeoutMs":86400001}`, `timeoutMs must be an integer between 1 and 86400000`},
		{MethodAgent, `{"message":"hi","idempotencyKey":"k","channel":"sms"}`, `channel must be one of "last", "whatsapp", "telegram", "webchat"`},
		{MethodChatHistory, `{"sessionKey":"main","limit":1001}`, `limit must be an integer between 1 and 1000`},
		{MethodChatHistory, `{"sessionKey":"main","limit":1.5}`, `limit must be an integer between 1 and 1000`},
		{MethodChatSend, `{"sessionKey":"main","message":"hi","idempotencyKey":"k","attachments":[{"type":"image","mimeType":"image/png"}]}`, `attachments[0]: missing property "content"`},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.params, func(t *testing.T) {
			var v any
			if tt.params != "" {
				var err error
				if v, err = Decode([]byte(tt.params)); err != nil {
					t.Fatal(err)
				}
			}
			if got := errText(s.Params(tt.method, v)); got != tt.want {
				t.Errorf("Params\n got: %s\nwant: %s", got, tt.want)
			}
		})
	}
}

func TestUnknownMethod(t *testing.T) {
	s := mustLoad(t)
	if s.HasMethod("reboot") {
		t.Error("HasMethod(reboot) = true")
	}
	for _, m := range []string{MethodHealth, MethodStatus, MethodSystemPresence, MethodSystemEvent, MethodSend, MethodAgent, MethodChatHistory, MethodChatSend} {
		if !s.HasMethod(m) {
			t.Errorf("HasMethod(%s) = false", m)
		}
	}
	if err := s.Params("reboot", nil); err == nil || err.Error() != "unknown method: reboot" {
		t.Errorf("Params(reboot) = %v", err)
	}
	if err := s.Payload("reboot", nil); err == nil || err.Error() != "unknown method: reboot" {
		t.Errorf("Payload(reboot) = %v", err)
	}
}

func TestValidationErrorFields(t *testing.T) {
	s := mustLoad(t)
	tests := []struct {
		in, field, reason string
	}{
		{`{"type":"hello","minProtocol":1,"maxProtocol":1,"client":{"name":"","version":"1","platform":"p","mode":"m"}}`, "client.name", "must not be empty"},
		{`{"type":"hello","minProtocol":1,"maxProtocol":1,"client":{"name":"n","version":"1","platform":"p"}}`, "client", `missing property "mode"`},
		{`null`, "", "must be an object"},
	}
	for _, tt := range tests {
		v, _ := Decode([]byte(tt.in))
		var verr *ValidationError
		if !errors.As(s.Hello(v), &verr) {
			t.Fatalf("Hello(%s): no *ValidationError", tt.in)
		}
		if verr.Field != tt.field || verr.Reason != tt.reason {
			t.Errorf("Hello(%s) = {%q, %q}, want {%q, %q}", tt.in, verr.Field, verr.Reason, tt.field, tt.reason)
		}
	}
}

func TestLoadNamesBrokenFile(t *testing.T) {
	base := fstest.MapFS{}
	for _, name := range sourceFiles {
		b, err := files.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		base[name] = &fstest.MapFile{Data: b}
	}
	if _, err := load(base); err != nil {
		t.Fatalf("load of the embedded files: %v", err)
	}
	tests := []struct {
		name, file, content string
	}{
		{"malformed JSON", "events.schema.json", `{"$defs": `},
		{"bad keyword value", "methods.schema.json", `{"$schema":"https://json-schema.org/draft/2020-12/schema","$id":"https://clawdis.dev/schemas/methods.schema.json","$defs":{"X":{"type":"strang"}}}`},
		{"dangling ref", "common.schema.json", `{"$schema":"https://json-schema.org/draft/2020-12/schema","$id":"https://clawdis.dev/schemas/common.schema.json","$defs":{"X":{"$ref":"#/$defs/Nope"}}}`},
		{"missing file", "frames.schema.json", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys := fstest.MapFS{}
			for k, v := range base {
				fsys[k] = v
			}
			if tt.content == "" {
				delete(fsys, tt.file)
			} else {
				fsys[tt.file] = &fstest.MapFile{Data: []byte(tt.content)}
			}
			_, err := load(fsys)
			if err == nil || !strings.Contains(err.Error(), tt.file) {
				t.Errorf("load = %v, want an error naming %s", err, tt.file)
			}
		})
	}
}

// TestObjectsAreClosed keeps the SPEC rule that every object schema rejects unknown
// properties, apart from the deliberate exceptions.
func TestObjectsAreClosed(t *testing.T) {
	open := map[string]bool{
		"methods.schema.json#/$defs/SystemEventParams": true, // SPEC §6.4: unknown keys ignored
		"events.schema.json#/$defs/AgentEventData":     true, // backend-defined keys (timings, tool args)
	}
	for _, name := range sourceFiles {
		b, err := files.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		doc, err := Decode(b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		walkSchemas(doc, name+"#", func(ptr string, sch map[string]any) {
			if sch["type"] != "object" {
				return
			}
			ap, has := sch["additionalProperties"]
			switch {
			case open[ptr]:
				if ap != true {
					t.Errorf("%s: listed as open but additionalProperties is %v", ptr, ap)
				}
			case !has || ap != false:
				t.Errorf("%s: object schema without additionalProperties: false", ptr)
			}
		})
	}
}

func walkSchemas(node any, ptr string, fn func(string, map[string]any)) {
	switch n := node.(type) {
	case map[string]any:
		fn(ptr, n)
		for k, v := range n {
			walkSchemas(v, ptr+"/"+k, fn)
		}
	case []any:
		for i, v := range n {
			walkSchemas(v, ptr+"/"+strconv.Itoa(i), fn)
		}
	}
}
