package schemas

import (
	"bytes"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"reflect"
	"strings"
	"testing"
)

func ptr[T any](v T) *T { return &v }

func fullHealth() HealthSummary {
	return HealthSummary{
		OK: true, Ts: 1735689600000, DurationMs: 2,
		Web: WebHealth{Linked: true, Connected: true, State: WebConnected, AuthAgeMs: ptr(int64(3600000)), LastError: "stream error"},
		Telegram: TelegramHealth{Configured: true, State: TelegramPolling, Probe: &TelegramProbe{
			OK: true, Status: ptr(200), Error: ptr("none"), ElapsedMs: 120,
			Bot: &TelegramBot{ID: 42, Username: "clawdis_bot"},
		}},
		HeartbeatSeconds: 1800,
		Sessions: SessionsHealth{Path: "/s/sessions.json", Count: 1, Recent: []SessionRecent{
			{Key: "main", UpdatedAt: ptr(int64(1735689000000)), Age: ptr(int64(600000))},
		}},
		Services: []ServiceHealth{{Name: "presence", OK: true, LatencyMs: 1}},
	}
}

// nullHealth has every nullable field null.
func nullHealth() HealthSummary {
	h := fullHealth()
	h.Web.AuthAgeMs = nil
	h.Telegram.Probe.Status = nil
	h.Telegram.Probe.Error = nil
	h.Sessions.Recent[0].UpdatedAt = nil
	h.Sessions.Recent[0].Age = nil
	return h
}

func fullStatus() StatusSummary {
	return StatusSummary{
		Web:                StatusWeb{Linked: true, AuthAgeMs: ptr(int64(10800000))},
		HeartbeatSeconds:   1800,
		ProviderSummary:    []string{"WhatsApp: linked as +4366… (auth 3h ago)", "Telegram: configured (@bot)"},
		QueuedSystemEvents: []string{"Node: mac · reason periodic"},
		Sessions: StatusSessions{
			Path: "/s/sessions.json", Count: 1,
			Defaults: SessionDefaults{Backend: "openai", Model: "gpt-4o-mini"},
			Recent:   []StatusSession{{Key: "main", Kind: "direct", SessionID: "s-1", UpdatedAt: 1735689000000, Age: 600000, ThinkingLevel: "low"}},
		},
		ConfigPath: "/home/u/.clawdis/clawdis.json",
		WebChatURL: "http://127.0.0.1:18788/",
	}
}

func fullPresence() PresenceEntry {
	return PresenceEntry{
		Host: "mac", IP: "192.168.1.20", Version: "2.3.1", Mode: "app", LastInputSeconds: ptr(int64(12)),
		Reason: "periodic", Tags: []string{"laptop"}, Text: "Node: mac", Ts: 1735689600000, InstanceID: "mac-7f3a",
	}
}

func fullMessage() ChatMessage {
	return ChatMessage{Role: "assistant", Timestamp: 1735689600000, Content: []ChatContent{
		{Type: "text", Text: "a picture:"},
		{Type: "image", MimeType: "image/png", Data: "iVBORw0KGgo="},
	}, Aborted: true, Channel: "telegram", Sender: "Ada (@ada)"}
}

func raw(tb testing.TB, v any) json.RawMessage {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

type sample struct {
	name  string
	value any
	// partial marks a sample that deliberately leaves fields unset or null; every other
	// sample must set every field.
	partial bool
	check   func(s *Set, b []byte) error
}

func decoded(fn func(s *Set, v any) error) func(*Set, []byte) error {
	return func(s *Set, b []byte) error {
		v, err := Decode(b)
		if err != nil {
			return err
		}
		return fn(s, v)
	}
}

func asHello(s *Set, b []byte) error   { return decoded((*Set).Hello)(s, b) }
func asRequest(s *Set, b []byte) error { return decoded((*Set).Request)(s, b) }
func asServer(s *Set, b []byte) error  { return s.ServerFrame(b) }

func asParams(method string) func(*Set, []byte) error {
	return decoded(func(s *Set, v any) error { return s.Params(method, v) })
}

func asPayload(method string) func(*Set, []byte) error {
	return decoded(func(s *Set, v any) error { return s.Payload(method, v) })
}

// asEvent wraps the payload in an event frame and validates the frame.
func asEvent(tb testing.TB, event string) func(*Set, []byte) error {
	return func(s *Set, b []byte) error {
		return s.ServerFrame(raw(tb, Event{
			Type: TypeEvent, Event: event, Payload: b, Seq: ptr(int64(1)),
			StateVersion: &StateVersion{Presence: 1, Health: 1},
		}))
	}
}

func samples(tb testing.TB) []sample {
	return []sample{
		{name: "Hello", check: asHello, value: Hello{
			Type: TypeHello, MinProtocol: 1, MaxProtocol: 1,
			Client: ClientInfo{Name: "mac", Version: "2.3.1", Platform: "darwin", Mode: "app", InstanceID: "mac-7f3a"},
			Caps:   []string{"chat"}, Auth: &HelloAuth{Token: "t"}, Locale: "de-AT", UserAgent: "clawdis-mac/2.3.1",
		}},
		{name: "HelloOK", check: asServer, value: HelloOK{
			Type: TypeHelloOK, Protocol: ProtocolVersion,
			Server:   ServerInfo{Version: "1.4.0", Commit: "3f9c2ab", Host: "studio", ConnID: "c-1"},
			Features: Features{Methods: []string{MethodHealth, MethodChatSend}, Events: []string{EventTick, EventShutdown}},
			Snapshot: Snapshot{Presence: []PresenceEntry{fullPresence()}, Health: fullHealth(), StateVersion: StateVersion{Presence: 3, Health: 2}, UptimeMs: 1000},
			Policy:   Policy{MaxPayload: 524288, MaxBufferedBytes: 1572864, TickIntervalMs: 30000},
		}},
		{name: "HelloOK null snapshot fields", partial: true, check: asServer, value: HelloOK{
			Type: TypeHelloOK, Protocol: ProtocolVersion,
			Server:   ServerInfo{Version: "1.4.0", ConnID: "c-1"},
			Features: Features{Methods: []string{}, Events: []string{}},
			Snapshot: Snapshot{Presence: []PresenceEntry{}, Health: nullHealth()},
			Policy:   Policy{MaxPayload: 1, MaxBufferedBytes: 1, TickIntervalMs: 1},
		}},
		{name: "HelloError", check: asServer, value: HelloError{Type: TypeHelloError, Reason: "protocol mismatch", ExpectedProtocol: 1, MinClient: "2.0.0"}},
		{name: "Request", check: asRequest, value: Request{Type: TypeReq, ID: "1", Method: MethodSend, Params: raw(tb, SendParams{To: "+4366", Message: "hi", IdempotencyKey: "k"})}},
		{name: "Response ok", partial: true, check: asServer, value: Response{Type: TypeRes, ID: "1", OK: true, Payload: raw(tb, OKPayload{OK: true})}},
		{name: "Response error", check: asServer, value: Response{Type: TypeRes, ID: "1", Payload: raw(tb, AgentResult{RunID: "r", Status: "timeout"}),
			Error: &ErrorShape{Code: "AGENT_TIMEOUT", Message: "agent run exceeded 600s", Details: raw(tb, map[string]int{"timeoutSeconds": 600}), Retryable: ptr(false), RetryAfterMs: ptr(int64(0))}}},
		{name: "Event", check: asServer, value: Event{Type: TypeEvent, Event: EventTick, Payload: raw(tb, TickPayload{Ts: 1}), Seq: ptr(int64(1)), StateVersion: &StateVersion{Presence: 1, Health: 1}}},

		{name: "health payload", check: asPayload(MethodHealth), value: fullHealth()},
		{name: "health payload nulls", partial: true, check: asPayload(MethodHealth), value: nullHealth()},
		{name: "status payload", check: asPayload(MethodStatus), value: fullStatus()},
		{name: "status payload nulls", partial: true, check: asPayload(MethodStatus), value: func() StatusSummary { s := fullStatus(); s.Web.AuthAgeMs = nil; return s }()},
		{name: "system-presence payload", check: asPayload(MethodSystemPresence), value: []PresenceEntry{fullPresence()}},
		{name: "system-event params", check: asParams(MethodSystemEvent), value: SystemEventParams{
			Text: "Node: mac", InstanceID: "mac-7f3a", Host: "mac", IP: "192.168.1.20", Mode: "app", Version: "2.3.1",
			Reason: "periodic", LastInputSeconds: ptr(int64(5)), Tags: []string{"laptop"},
		}},
		{name: "system-event payload", check: asPayload(MethodSystemEvent), value: OKPayload{OK: true}},
		{name: "send params", check: asParams(MethodSend), value: SendParams{To: "+4366", Message: "hi", MediaURL: "https://x/y.png", Provider: "whatsapp", IdempotencyKey: "k"}},
		{name: "send payload", check: asPayload(MethodSend), value: SendResult{RunID: "k", MessageID: "3EB0", Provider: "telegram", ToJID: "4366@s.whatsapp.net", ChatID: "12345"}},
		{name: "agent params", check: asParams(MethodAgent), value: AgentParams{
			Message: "hi", To: "+4366", SessionID: "s-1", SessionKey: "main", Thinking: "high", Deliver: true,
			Channel: "telegram", Timeout: ptr(int64(60)), IdempotencyKey: "k",
		}},
		{name: "agent payload", check: asPayload(MethodAgent), value: AgentResult{RunID: "k", Status: "ok", Summary: "completed", Text: "hello"}},
		{name: "chat.history params", check: asParams(MethodChatHistory), value: ChatHistoryParams{SessionKey: "main", Limit: ptr(200)}},
		{name: "chat.history payload", check: asPayload(MethodChatHistory), value: ChatHistoryResult{SessionKey: "main", SessionID: "s-1", Messages: []ChatMessage{fullMessage()}, ThinkingLevel: "low"}},
		{name: "chat.send params", check: asParams(MethodChatSend), value: ChatSendParams{
			SessionKey: "main", Message: "look", Thinking: "low", Deliver: true, TimeoutMs: ptr(int64(30000)), IdempotencyKey: "k",
			Attachments: []ChatAttachment{{Type: "image", MimeType: "image/png", FileName: "a.png", Content: "iVBORw0KGgo="}},
		}},
		{name: "chat.send payload", check: asPayload(MethodChatSend), value: ChatSendResult{RunID: "k", Status: "started"}},

		{name: "chat.abort params", check: asParams(MethodChatAbort), value: ChatAbortParams{SessionKey: "main", RunID: "k"}},
		{name: "chat.abort payload", check: asPayload(MethodChatAbort), value: ChatAbortResult{OK: true, Aborted: []string{"k"}}},
		{name: "sessions.list params", check: asParams(MethodSessionsList), value: SessionsListParams{Limit: ptr(50)}},
		{name: "sessions.list payload", check: asPayload(MethodSessionsList), value: SessionsListResult{Sessions: []SessionRow{{
			Key: "main", SessionID: "s-1", UpdatedAt: 1735689600000, ThinkingLevel: "low", LastChannel: "telegram",
			LastTo: "12345", MessageCount: ptr(4), LastMessagePreview: "hello",
		}}}},
		{name: "sessions.reset params", check: asParams(MethodSessionsReset), value: SessionsResetParams{SessionKey: "main"}},
		{name: "sessions.reset payload", check: asPayload(MethodSessionsReset), value: SessionsResetResult{SessionKey: "main", SessionID: "s-2"}},
		{name: "web.login.start params", check: asParams(MethodWebLoginStart), value: WebLoginStartParams{Force: true}},
		{name: "web.login.start payload", check: asPayload(MethodWebLoginStart), value: WebLoginStartResult{QR: "2@abc", QRDataURL: "data:image/png;base64,iVBORw0KGgo=", ExpiresInMs: 60000}},
		{name: "web.login.wait params", check: asParams(MethodWebLoginWait), value: WebLoginWaitParams{TimeoutMs: ptr(int64(60000))}},
		{name: "web.login.wait payload", check: asPayload(MethodWebLoginWait), value: WebLoginWaitResult{
			Linked: true, JID: "4366@s.whatsapp.net", Phone: "+4366", QR: "2@abc", QRDataURL: "data:image/png;base64,iVBORw0KGgo=", ExpiresInMs: 20000,
		}},
		{name: "tick event", check: asEvent(tb, EventTick), value: TickPayload{Ts: 1735689600000}},
		{name: "presence event", check: asEvent(tb, EventPresence), value: PresencePayload{Presence: []PresenceEntry{fullPresence()}}},
		{name: "health event", check: asEvent(tb, EventHealth), value: fullHealth()},
		{name: "health event nulls", partial: true, check: asEvent(tb, EventHealth), value: nullHealth()},
		{name: "agent event", check: asEvent(tb, EventAgent), value: AgentEventPayload{RunID: "k", SessionKey: "main", Seq: 1, Stream: "assistant", Ts: 1, Data: raw(tb, map[string]string{"text": "hi"})}},
		{name: "chat event", check: asEvent(tb, EventChat), value: ChatEventPayload{RunID: "k", SessionKey: "main", Seq: 2, State: "final", Message: ptr(fullMessage()), ErrorMessage: "none"}},
		{name: "shutdown event", check: asEvent(tb, EventShutdown), value: ShutdownPayload{Reason: "gateway stopping", RestartExpectedMs: ptr(int64(5000))}},
	}
}

// mayBeZero lists fields a full sample cannot set without being invalid.
var mayBeZero = map[string]bool{
	"Response.OK":          true, // a response with an error has ok false
	"ChatContent.Text":     true, // a text part has no image fields and the other way round
	"ChatContent.MimeType": true,
	"ChatContent.Data":     true,
}

// TestGoTypesMatchSchemas marshals a populated value of every frame and payload type and
// validates it against its schema.
func TestGoTypesMatchSchemas(t *testing.T) {
	s := mustLoad(t)
	for _, sm := range samples(t) {
		t.Run(sm.name, func(t *testing.T) {
			if !sm.partial {
				for _, f := range zeroFields(reflect.ValueOf(sm.value), "") {
					t.Errorf("sample leaves %s unset; set every optional field", f)
				}
			}
			if err := sm.check(s, raw(t, sm.value)); err != nil {
				t.Errorf("%s: %v\n%s", sm.name, err, raw(t, sm.value))
			}
		})
	}
}

// zeroFields lists the struct fields under v that hold their zero value.
func zeroFields(v reflect.Value, where string) []string {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil
		}
		return zeroFields(v.Elem(), where)
	case reflect.Slice:
		if v.Type() == reflect.TypeFor[json.RawMessage]() {
			return nil
		}
		var out []string
		for i := range v.Len() {
			out = append(out, zeroFields(v.Index(i), where)...)
		}
		return out
	case reflect.Struct:
		var out []string
		for i := range v.NumField() {
			name := v.Type().Name() + "." + v.Type().Field(i).Name
			f := v.Field(i)
			if f.IsZero() && !mayBeZero[name] {
				out = append(out, name)
			}
			out = append(out, zeroFields(f, name)...)
		}
		return out
	}
	return nil
}

// TestSamplesCoverEveryType fails when types.go gains a struct that no sample exercises.
func TestSamplesCoverEveryType(t *testing.T) {
	seen := map[string]bool{}
	var walk func(reflect.Type)
	walk = func(rt reflect.Type) {
		switch rt.Kind() {
		case reflect.Pointer, reflect.Slice:
			walk(rt.Elem())
		case reflect.Struct:
			if seen[rt.Name()] {
				return
			}
			seen[rt.Name()] = true
			for i := range rt.NumField() {
				walk(rt.Field(i).Type)
			}
		}
	}
	for _, sm := range samples(t) {
		walk(reflect.TypeOf(sm.value))
	}
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "types.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, decl := range f.Decls {
		gd, ok := decl.(*ast.GenDecl)
		if !ok || gd.Tok != token.TYPE {
			continue
		}
		for _, spec := range gd.Specs {
			ts := spec.(*ast.TypeSpec)
			if _, ok := ts.Type.(*ast.StructType); ok && !seen[ts.Name.Name] {
				t.Errorf("types.go: %s is not covered by any sample in TestGoTypesMatchSchemas", ts.Name.Name)
			}
		}
	}
}

// TestZeroishHealthSummary: the smallest HealthSummary a service can build validates and is
// complete; a literally zero one does not (its slices marshal as null).
func TestZeroishHealthSummary(t *testing.T) {
	s := mustLoad(t)
	h := HealthSummary{
		Web:      WebHealth{State: WebUnlinked},
		Telegram: TelegramHealth{State: TelegramUnconfigured},
		Sessions: SessionsHealth{Recent: []SessionRecent{}},
		Services: []ServiceHealth{},
	}
	b := raw(t, h)
	if err := asPayload(MethodHealth)(s, b); err != nil {
		t.Errorf("zero-ish HealthSummary %s: %v", b, err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"ok", "ts", "durationMs", "web", "telegram", "heartbeatSeconds", "sessions", "services"} {
		if _, ok := m[key]; !ok {
			t.Errorf("zero-ish HealthSummary lacks %q: %s", key, b)
		}
	}
	if err := asPayload(MethodHealth)(s, raw(t, HealthSummary{})); err == nil {
		t.Error("HealthSummary{} (empty states, null slices) validated")
	}
}

// TestGoldensDecodeStrictly decodes every valid golden frame into its Go type, rejecting
// fields the type does not know.
func TestGoldensDecodeStrictly(t *testing.T) {
	payloadTypes := map[string]func() any{
		EventTick:     func() any { return new(TickPayload) },
		EventPresence: func() any { return new(PresencePayload) },
		EventHealth:   func() any { return new(HealthSummary) },
		EventAgent:    func() any { return new(AgentEventPayload) },
		EventChat:     func() any { return new(ChatEventPayload) },
		EventShutdown: func() any { return new(ShutdownPayload) },
	}
	for _, g := range goldens(t, "valid") {
		t.Run(g.name, func(t *testing.T) {
			var dst any
			switch {
			case strings.HasPrefix(g.name, "hello-ok-"):
				dst = new(HelloOK)
			case strings.HasPrefix(g.name, "hello-error-"):
				dst = new(HelloError)
			case strings.HasPrefix(g.name, "hello-"):
				dst = new(Hello)
			case strings.HasPrefix(g.name, "req-"):
				dst = new(Request)
			case strings.HasPrefix(g.name, "res-"):
				dst = new(Response)
			case strings.HasPrefix(g.name, "event-"):
				dst = new(Event)
			default:
				t.Fatalf("no Go type for golden %s", g.name)
			}
			strictDecode(t, g.data, dst)
			if ev, ok := dst.(*Event); ok {
				mk, ok := payloadTypes[ev.Event]
				if !ok {
					t.Fatalf("no payload type for event %q", ev.Event)
				}
				strictDecode(t, ev.Payload, mk())
			}
		})
	}
}

func strictDecode(t *testing.T, b []byte, dst any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		t.Errorf("decode into %T: %v", dst, err)
	}
}
