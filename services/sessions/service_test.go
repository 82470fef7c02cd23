package sessions

import (
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/clawdis/clawdis/bus/bustest"
	"github.com/clawdis/clawdis/bus/subject"
	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/schemas"
)

func ptr(s string) *string { return &s }

// TestSessionSteps runs resolve, update and append requests in order against one service
// and checks each reply: creation, ids, updatedAt bumps, nil fields untouched, validation.
func TestSessionSteps(t *testing.T) {
	clock := &fixedClock{now: t0}
	h := start(t, Config{Now: clock.Now})
	ms := func(d time.Duration) int64 { return t0.Add(d).UnixMilli() }
	steps := []struct {
		name    string
		advance time.Duration // moved before the request
		subj    string
		body    any
		want    wire.Session
		code    string // expected error code, "" for success
		errPart string
	}{
		{"resolve creates", 0, subject.SessionsResolve, wire.SessionResolve{SessionKey: "main"},
			wire.Session{SessionKey: "main", SessionID: "id-1", UpdatedAt: ms(0), Created: true}, "", ""},
		{"resolve existing does not bump", time.Second, subject.SessionsResolve, wire.SessionResolve{SessionKey: "main"},
			wire.Session{SessionKey: "main", SessionID: "id-1", UpdatedAt: ms(0)}, "", ""},
		{"key is trimmed", 0, subject.SessionsResolve, wire.SessionResolve{SessionKey: "  main\t"},
			wire.Session{SessionKey: "main", SessionID: "id-1", UpdatedAt: ms(0)}, "", ""},
		{"same id is no change", time.Second, subject.SessionsResolve, wire.SessionResolve{SessionKey: "main", SessionID: "id-1"},
			wire.Session{SessionKey: "main", SessionID: "id-1", UpdatedAt: ms(0)}, "", ""},
		{"other id re-points", time.Second, subject.SessionsResolve, wire.SessionResolve{SessionKey: "main", SessionID: "chosen"},
			wire.Session{SessionKey: "main", SessionID: "chosen", UpdatedAt: ms(3 * time.Second)}, "", ""},
		{"resolve creates with given id", 0, subject.SessionsResolve, wire.SessionResolve{SessionKey: "group:x", SessionID: "given"},
			wire.Session{SessionKey: "group:x", SessionID: "given", UpdatedAt: ms(3 * time.Second), Created: true}, "", ""},
		{"update sets fields", time.Second, subject.SessionsUpdate,
			wire.SessionUpdate{SessionKey: "main", ThinkingLevel: ptr("high"), LastChannel: ptr("telegram"), LastTo: ptr("42")},
			wire.Session{SessionKey: "main", SessionID: "chosen", UpdatedAt: ms(4 * time.Second), ThinkingLevel: "high",
				LastChannel: "telegram", LastTo: "42"}, "", ""},
		{"update nil fields untouched", time.Second, subject.SessionsUpdate,
			wire.SessionUpdate{SessionKey: "main", LastTo: ptr("43")},
			wire.Session{SessionKey: "main", SessionID: "chosen", UpdatedAt: ms(5 * time.Second), ThinkingLevel: "high",
				LastChannel: "telegram", LastTo: "43"}, "", ""},
		{"update empty string clears", 0, subject.SessionsUpdate,
			wire.SessionUpdate{SessionKey: "main", ThinkingLevel: ptr("")},
			wire.Session{SessionKey: "main", SessionID: "chosen", UpdatedAt: ms(5 * time.Second),
				LastChannel: "telegram", LastTo: "43"}, "", ""},
		{"update creates", 0, subject.SessionsUpdate, wire.SessionUpdate{SessionKey: "new", LastChannel: ptr("webchat")},
			wire.Session{SessionKey: "new", SessionID: "id-2", UpdatedAt: ms(5 * time.Second), LastChannel: "webchat", Created: true}, "", ""},
		{"append bumps", time.Second, subject.SessionsAppend,
			wire.TranscriptAppend{SessionKey: "main", Messages: []schemas.ChatMessage{text("user", "hi", 1)}},
			wire.Session{SessionKey: "main", SessionID: "chosen", UpdatedAt: ms(6 * time.Second),
				LastChannel: "telegram", LastTo: "43"}, "", ""},
		{"append creates", 0, subject.SessionsAppend,
			wire.TranscriptAppend{SessionKey: "fresh", Messages: []schemas.ChatMessage{text("user", "hi", 1)}},
			wire.Session{SessionKey: "fresh", SessionID: "id-3", UpdatedAt: ms(6 * time.Second), Created: true}, "", ""},
		{"append with id creates", 0, subject.SessionsAppend,
			wire.TranscriptAppend{SessionKey: "fresh2", SessionID: "mine", Messages: []schemas.ChatMessage{text("user", "hi", 1)}},
			wire.Session{SessionKey: "fresh2", SessionID: "mine", UpdatedAt: ms(6 * time.Second), Created: true}, "", ""},

		{"resolve blank key", 0, subject.SessionsResolve, wire.SessionResolve{SessionKey: " \t"}, wire.Session{},
			wire.CodeInvalidRequest, "sessionKey required"},
		{"resolve no key", 0, subject.SessionsResolve, struct{}{}, wire.Session{}, wire.CodeInvalidRequest, "sessionKey required"},
		{"update blank key", 0, subject.SessionsUpdate, wire.SessionUpdate{}, wire.Session{}, wire.CodeInvalidRequest, "sessionKey required"},
		{"append blank key", 0, subject.SessionsAppend,
			wire.TranscriptAppend{SessionKey: "", Messages: []schemas.ChatMessage{text("user", "x", 1)}},
			wire.Session{}, wire.CodeInvalidRequest, "sessionKey required"},
		{"bad body", 0, subject.SessionsResolve, json.RawMessage(`{"sessionKey": 5}`), wire.Session{},
			wire.CodeInvalidRequest, "invalid request body"},
		{"resolve traversal id", 0, subject.SessionsResolve, wire.SessionResolve{SessionKey: "x", SessionID: "../etc/passwd"},
			wire.Session{}, wire.CodeInvalidRequest, "sessionId"},
		{"resolve dotdot id", 0, subject.SessionsResolve, wire.SessionResolve{SessionKey: "x", SessionID: ".."},
			wire.Session{}, wire.CodeInvalidRequest, "sessionId"},
		{"append separator id", 0, subject.SessionsAppend,
			wire.TranscriptAppend{SessionKey: "x", SessionID: `a\b`, Messages: []schemas.ChatMessage{text("user", "x", 1)}},
			wire.Session{}, wire.CodeInvalidRequest, "sessionId"},
		{"append slash id", 0, subject.SessionsAppend,
			wire.TranscriptAppend{SessionKey: "x", SessionID: "a/b", Messages: []schemas.ChatMessage{text("user", "x", 1)}},
			wire.Session{}, wire.CodeInvalidRequest, "path separator"},
	}
	for _, st := range steps {
		clock.Advance(st.advance)
		got, err := call[wire.Session](h, st.subj, st.body)
		if st.code != "" {
			checkErr(t, err, st.code, st.errPart)
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if got != st.want {
			t.Errorf("%s:\n got %+v\nwant %+v", st.name, got, st.want)
		}
	}
	// Nothing was created by a refused request, and the refused ids named no file.
	sum := mustCall[wire.SessionsSummary](t, h, subject.SessionsSummary, nil)
	if sum.Count != 5 {
		t.Errorf("count = %d, want 5 (main, group:x, new, fresh, fresh2)", sum.Count)
	}
	entries, err := os.ReadDir(h.dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	want := []string{"chosen.jsonl", "id-3.jsonl", "mine.jsonl", "sessions.json"}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("files in the sessions dir = %q, want %q (no temp files left)", names, want)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(h.dir), "etc")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a traversal id created something outside the dir: %v", err)
	}
}

// TestFileModes: the store and transcripts are 0600 in a 0700 directory, and the store is
// the earlier gateway's shape (an object of entries, two-space indented).
func TestFileModes(t *testing.T) {
	h := start(t, Config{})
	s := mustCall[wire.Session](t, h, subject.SessionsAppend,
		wire.TranscriptAppend{SessionKey: "main", Messages: []schemas.ChatMessage{text("user", "hi", 5)}})
	for path, want := range map[string]os.FileMode{
		h.dir:                           os.ModeDir | 0o700,
		filepath.Join(h.dir, StoreFile): 0o600,
		filepath.Join(h.dir, s.SessionID+".jsonl"): 0o600,
	} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want {
			t.Errorf("%s mode = %s, want %s", path, fi.Mode(), want)
		}
	}
	store := string(readFile(t, filepath.Join(h.dir, StoreFile)))
	wantStore := "{\n  \"main\": {\n    \"sessionId\": \"id-1\",\n    \"updatedAt\": " +
		jsonInt(t0.UnixMilli()) + "\n  }\n}\n"
	if store != wantStore {
		t.Errorf("store file:\n%s\nwant:\n%s", store, wantStore)
	}
	line := string(readFile(t, filepath.Join(h.dir, "id-1.jsonl")))
	if want := `{"message":{"role":"user","content":[{"type":"text","text":"hi"}],"timestamp":5}}` + "\n"; line != want {
		t.Errorf("transcript = %q, want %q", line, want)
	}
	if h.svc.StorePath() != filepath.Join(h.dir, StoreFile) {
		t.Errorf("StorePath = %q", h.svc.StorePath())
	}
}

func jsonInt(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// TestAppendValidation: malformed messages are refused naming the field, and nothing is
// written.
func TestAppendValidation(t *testing.T) {
	h := start(t, Config{})
	img := func(mime, data string) schemas.ChatMessage {
		return schemas.ChatMessage{Role: "user", Content: []schemas.ChatContent{{Type: "image", MimeType: mime, Data: data}}}
	}
	tests := []struct {
		name string
		msgs []schemas.ChatMessage
		part string
	}{
		{"no messages", nil, "messages required"},
		{"system role", []schemas.ChatMessage{text("system", "x", 1)}, "messages[0].role"},
		{"empty role", []schemas.ChatMessage{text("user", "ok", 1), text("", "x", 1)}, "messages[1].role"},
		{"no content", []schemas.ChatMessage{{Role: "user", Timestamp: 1}}, "messages[0].content must not be empty"},
		{"empty text", []schemas.ChatMessage{text("assistant", "", 1)}, "messages[0].content[0].text"},
		{"unknown part", []schemas.ChatMessage{{Role: "user", Content: []schemas.ChatContent{{Type: "audio", Data: "x"}}}},
			"messages[0].content[0].type"},
		{"image without data", []schemas.ChatMessage{img("image/png", "")}, "messages[0].content[0]: an image needs"},
		{"image without type", []schemas.ChatMessage{img("", "AAAA")}, "messages[0].content[0]: an image needs"},
		{"negative timestamp", []schemas.ChatMessage{text("user", "x", -1)}, "messages[0].timestamp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := call[wire.Session](h, subject.SessionsAppend, wire.TranscriptAppend{SessionKey: "main", Messages: tt.msgs})
			checkErr(t, err, wire.CodeInvalidRequest, tt.part)
		})
	}
	if _, err := os.Stat(h.dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("refused appends wrote to the sessions dir: %v", err)
	}
}

// TestSummary: count of all sessions, newest first (ties by key), at most limit (default 5).
func TestSummary(t *testing.T) {
	clock := &fixedClock{now: t0}
	h := start(t, Config{Now: clock.Now})
	for _, key := range []string{"a", "b", "c", "d", "e", "f", "g"} {
		clock.Advance(time.Second)
		mustCall[wire.Session](t, h, subject.SessionsResolve, wire.SessionResolve{SessionKey: key})
	}
	mustCall[wire.Session](t, h, subject.SessionsUpdate, wire.SessionUpdate{SessionKey: "a", ThinkingLevel: ptr("low")})
	// "a" and "g" now share the newest updatedAt; the key breaks the tie.
	tests := []struct {
		body     any
		wantKeys []string
		code     string
	}{
		{nil, []string{"a", "g", "f", "e", "d"}, ""},
		{map[string]int{"limit": 0}, []string{"a", "g", "f", "e", "d"}, ""},
		{map[string]int{"limit": 2}, []string{"a", "g"}, ""},
		{map[string]int{"limit": 100}, []string{"a", "g", "f", "e", "d", "c", "b"}, ""},
		{map[string]int{"limit": -1}, nil, wire.CodeInvalidRequest},
		{map[string]int{"limit": MaxSummaryLimit + 1}, nil, wire.CodeInvalidRequest},
	}
	for _, tt := range tests {
		sum, err := call[wire.SessionsSummary](h, subject.SessionsSummary, tt.body)
		if tt.code != "" {
			checkErr(t, err, tt.code, "limit")
			continue
		}
		if err != nil {
			t.Fatalf("summary %v: %v", tt.body, err)
		}
		var keys []string
		for _, s := range sum.Sessions {
			keys = append(keys, s.Key)
		}
		if !reflect.DeepEqual(keys, tt.wantKeys) {
			t.Errorf("summary %v keys = %q, want %q", tt.body, keys, tt.wantKeys)
		}
		if sum.Count != 7 || sum.Path != filepath.Join(h.dir, StoreFile) {
			t.Errorf("summary count %d path %q, want 7 and the store path", sum.Count, sum.Path)
		}
		if first := sum.Sessions[0]; first.ThinkingLevel != "low" || first.SessionID != "id-1" ||
			first.UpdatedAt != t0.Add(7*time.Second).UnixMilli() {
			t.Errorf("first session = %+v", first)
		}
	}
}

// TestEmptyStore: with no directory at all, the summary is empty and nothing is created.
func TestEmptyStore(t *testing.T) {
	h := start(t, Config{})
	sum := mustCall[wire.SessionsSummary](t, h, subject.SessionsSummary, map[string]int{"limit": 5})
	if sum.Count != 0 || sum.Sessions == nil || len(sum.Sessions) != 0 {
		t.Errorf("summary of a missing store = %+v, want count 0 and an empty list", sum)
	}
	if _, err := os.Stat(h.dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("reading created the dir: %v", err)
	}
}

// TestReadyAndStop: Ready is closed only by Run, a request right after it is answered, and
// after Run returns nobody answers.
func TestReadyAndStop(t *testing.T) {
	b := bustest.New(t)
	svc, err := New(Config{Dir: t.TempDir()}, b.Conn("sessions"), nil)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-svc.Ready():
		t.Fatal("Ready closed before Run")
	default:
	}
	h := startOn(t, b, Config{Dir: t.TempDir()})
	mustCall[wire.SessionsSummary](t, h, subject.SessionsSummary, nil)
	h.stop()
	_, err = call[wire.SessionsSummary](h, subject.SessionsSummary, nil)
	if werr := checkErr(t, err, wire.CodeUnavailable); !werr.Retryable {
		t.Errorf("request after stop: %+v, want retryable", werr)
	}
}

func TestNewConfig(t *testing.T) {
	nc := bustest.New(t).Conn("x")
	tests := []struct {
		name string
		cfg  Config
		nc   *nats.Conn
		want string
	}{
		{"no dir", Config{}, nc, "Dir is required"},
		{"blank dir", Config{Dir: "  "}, nc, "Dir is required"},
		{"nil conn", Config{Dir: "/x"}, nil, "nil bus connection"},
		{"blank main key", Config{Dir: "/x", MainKey: " "}, nc, "MainKey"},
		{"negative event interval", Config{Dir: "/x", EventInterval: -time.Second}, nc, "EventInterval"},
		{"ok", Config{Dir: "/x"}, nc, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc, err := New(tt.cfg, tt.nc, slog.New(slog.DiscardHandler))
			if tt.want == "" {
				if err != nil || svc.cfg.MainKey != DefaultMainKey || svc.cfg.EventInterval != DefaultEventInterval {
					t.Fatalf("New = %v, main key %q, event interval %s", err, svc.cfg.MainKey, svc.cfg.EventInterval)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// TestDefaultIDs: without NewID, new sessions get distinct random UUIDs.
func TestDefaultIDs(t *testing.T) {
	b := bustest.New(t)
	dir := t.TempDir()
	svc, err := New(Config{Dir: dir}, b.Conn("sessions"), nil)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for range 50 {
		id := svc.cfg.NewID()
		if err := ValidateSessionID(id); err != nil || len(id) != 36 || id[14] != '4' || seen[id] {
			t.Fatalf("default id %q: %v (or repeated)", id, err)
		}
		seen[id] = true
	}
}

func TestValidateSessionID(t *testing.T) {
	tests := []struct {
		id string
		ok bool
	}{
		{"0b6f3c1e-8a2d-4f5e-9c7b-1a2b3c4d5e6f", true},
		{"main_2024-01-01", true},
		{"a.b", true},
		{"", false},
		{"..", false},
		{".", false},
		{".hidden", false},
		{"a..b", false},
		{"../x", false},
		{"x/..", false},
		{"a/b", false},
		{`a\b`, false},
		{"/abs", false},
		{"a b", false},
		{"a\x00b", false},
		{"a\nb", false},
		{"\xff", false},
		{strings.Repeat("a", MaxSessionIDLen), true},
		{strings.Repeat("a", MaxSessionIDLen+1), false},
	}
	for _, tt := range tests {
		err := ValidateSessionID(tt.id)
		if (err == nil) != tt.ok {
			t.Errorf("ValidateSessionID(%q) = %v, want ok=%v", tt.id, err, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalidSessionID) {
			t.Errorf("ValidateSessionID(%q) error %v does not wrap ErrInvalidSessionID", tt.id, err)
		}
	}
}
