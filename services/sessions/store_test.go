package sessions

import (
	"bytes"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/clawdis/clawdis/bus/subject"
	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/schemas"
)

const (
	legacyMainID  = "3f2c9a1e-5b7d-4c8e-9f01-2a3b4c5d6e7f"
	legacyGroup   = "group:120363025746871234@g.us"
	legacyTgGroup = "telegram:group:-1001234567890"
)

// decodeObjects decodes a store file as generic JSON, entry by entry.
func decodeObjects(t *testing.T, data []byte) map[string]map[string]any {
	t.Helper()
	var m map[string]map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("store file is not an object of objects: %v\n%s", err, data)
	}
	return m
}

// TestLegacyStore: a store and transcript written by the earlier TypeScript gateway are read;
// rewriting the store keeps every field the service does not know, and entries it did not
// change stay exactly as they were.
func TestLegacyStore(t *testing.T) {
	dir := copyDir(t, filepath.Join("testdata", "legacy"))
	storePath := filepath.Join(dir, StoreFile)
	orig := readFile(t, storePath)
	origTranscript := readFile(t, filepath.Join(dir, legacyMainID+".jsonl"))
	h := start(t, Config{Dir: dir})

	sum := mustCall[wire.SessionsSummary](t, h, subject.SessionsSummary, nil)
	wantSum := []wire.SessionInfo{
		{Key: "main", SessionID: legacyMainID, UpdatedAt: 1733011200123, ThinkingLevel: "medium"},
		{Key: legacyGroup, SessionID: "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a", UpdatedAt: 1732924800000},
		{Key: legacyTgGroup, SessionID: "c0ffee00-1234-4abc-8def-0123456789ab", UpdatedAt: 1732838400000},
	}
	if sum.Count != 3 || !reflect.DeepEqual(sum.Sessions, wantSum) {
		t.Errorf("summary = %+v\nwant %+v", sum, wantSum)
	}

	// The transcript's headers, tool calls, tool results, thinking parts, empty and broken
	// lines are skipped; string content and line-level timestamps are understood.
	hist := mustCall[schemas.ChatHistoryResult](t, h, subject.SessionsHistory, wire.HistoryRequest{SessionKey: "main"})
	wantMsgs := []schemas.ChatMessage{
		text("user", "What's the weather?", 1733011201000),
		text("assistant", "Sunny and 21°C.", 1733011204000),
		{Role: "user", Timestamp: 1733011206000, Content: []schemas.ChatContent{
			{Type: "text", Text: "Look at this"}, {Type: "image", MimeType: "image/png", Data: "iVBORw0KGgo="}}},
		text("assistant", "Anything else?", 1733011209000),
	}
	if !reflect.DeepEqual(hist.Messages, wantMsgs) || hist.ThinkingLevel != "medium" || hist.SessionID != legacyMainID {
		t.Errorf("history = %+v\nwant messages %+v", hist, wantMsgs)
	}

	// Resolving an existing session writes nothing.
	s := mustCall[wire.Session](t, h, subject.SessionsResolve, wire.SessionResolve{SessionKey: "main"})
	want := wire.Session{SessionKey: "main", SessionID: legacyMainID, UpdatedAt: 1733011200123,
		ThinkingLevel: "medium", LastChannel: "whatsapp", LastTo: "+15555550123"}
	if s != want {
		t.Errorf("resolve main = %+v, want %+v", s, want)
	}
	if got := readFile(t, storePath); !bytes.Equal(got, orig) {
		t.Error("resolving an existing session rewrote the store")
	}

	// Changing two entries rewrites the store.
	mustCall[wire.Session](t, h, subject.SessionsUpdate, wire.SessionUpdate{SessionKey: "main", LastChannel: ptr("telegram")})
	mustCall[wire.Session](t, h, subject.SessionsAppend, wire.TranscriptAppend{SessionKey: legacyTgGroup,
		Messages: []schemas.ChatMessage{text("user", "hello group", 7)}})
	before, after := decodeObjects(t, orig), decodeObjects(t, readFile(t, storePath))
	if len(after) != 3 {
		t.Fatalf("store has %d entries after the rewrite, want 3", len(after))
	}
	wantMain := maps.Clone(before["main"])
	wantMain["lastChannel"] = "telegram"
	wantMain["updatedAt"] = float64(t0.UnixMilli())
	if !reflect.DeepEqual(after["main"], wantMain) {
		t.Errorf("main after update:\n got %v\nwant %v", after["main"], wantMain)
	}
	if !reflect.DeepEqual(after[legacyGroup], before[legacyGroup]) {
		t.Errorf("untouched entry changed:\n got %v\nwant %v", after[legacyGroup], before[legacyGroup])
	}
	wantTg := maps.Clone(before[legacyTgGroup])
	delete(wantTg, "lastChannel") // null: absent
	wantTg["updatedAt"] = float64(t0.UnixMilli())
	if !reflect.DeepEqual(after[legacyTgGroup], wantTg) {
		t.Errorf("appended entry:\n got %v\nwant %v", after[legacyTgGroup], wantTg)
	}

	// Appending to the legacy transcript keeps its lines and adds one at the end.
	mustCall[wire.Session](t, h, subject.SessionsAppend, wire.TranscriptAppend{SessionKey: "main",
		Messages: []schemas.ChatMessage{text("user", "thanks", 8)}})
	tr := readFile(t, filepath.Join(dir, legacyMainID+".jsonl"))
	wantLine := `{"message":{"role":"user","content":[{"type":"text","text":"thanks"}],"timestamp":8}}` + "\n"
	if !bytes.HasPrefix(tr, origTranscript) || string(tr[len(origTranscript):]) != wantLine {
		t.Errorf("transcript after append ends with %q, want the original lines then %q",
			tr[min(len(tr), len(origTranscript)):], wantLine)
	}
	hist = mustCall[schemas.ChatHistoryResult](t, h, subject.SessionsHistory, wire.HistoryRequest{SessionKey: "main", Limit: 2})
	if got := texts(hist.Messages); !reflect.DeepEqual(got, []string{"Anything else?", "thanks"}) {
		t.Errorf("history after append = %q", got)
	}
}

// TestCorruptStore: a store that is not a JSON object of objects is never overwritten; every
// request answers a clear, non-retryable UNAVAILABLE naming the path; one Error is logged;
// and fixing the file recovers without a restart.
func TestCorruptStore(t *testing.T) {
	tests := []struct {
		name, content, reason string
	}{
		{"not json", `{"main": {"sessionId": `, "not JSON"},
		{"garbage", "hello", "not JSON"},
		{"empty file", "", "not JSON"},
		{"array", `[{"sessionId": "a"}]`, "not a JSON object"},
		{"null", `null`, "not a JSON object"},
		{"entry not an object", `{"main": 5}`, `entry "main": not a JSON object`},
		{"entry null", `{"main": null}`, `entry "main": not a JSON object`},
		{"wrong field type", `{"main": {"sessionId": "a", "updatedAt": "yesterday"}}`, `entry "main": field updatedAt`},
	}
	requests := []struct {
		subj string
		body any
	}{
		{subject.SessionsSummary, map[string]int{"limit": 5}},
		{subject.SessionsResolve, wire.SessionResolve{SessionKey: "main"}},
		{subject.SessionsUpdate, wire.SessionUpdate{SessionKey: "main", LastTo: ptr("x")}},
		{subject.SessionsAppend, wire.TranscriptAppend{SessionKey: "main", Messages: []schemas.ChatMessage{text("user", "x", 1)}}},
		{subject.SessionsHistory, wire.HistoryRequest{SessionKey: "main"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "sessions")
			if err := os.MkdirAll(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, StoreFile)
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			h := start(t, Config{Dir: dir})
			for round := range 2 {
				for _, r := range requests {
					_, err := call[json.RawMessage](h, r.subj, r.body)
					werr := checkErr(t, err, wire.CodeUnavailable, "session store "+path+" is unreadable: ",
						tt.reason, "; fix or move the file")
					if werr.Retryable {
						t.Errorf("round %d %s: retryable, want not", round, r.subj)
					}
				}
			}
			if got := readFile(t, path); string(got) != tt.content {
				t.Errorf("corrupt store was overwritten with %q", got)
			}
			if names, _ := filepath.Glob(filepath.Join(dir, "*")); len(names) != 1 {
				t.Errorf("files in the dir: %q, want only the store", names)
			}
			logged := h.logs.errors()
			if len(logged) != 1 || logged[0]["path"] != path || !strings.Contains(logged[0]["err"], tt.reason) {
				t.Errorf("error logs = %v, want one naming %s and %q", logged, path, tt.reason)
			}

			// Fixing the file recovers without a restart.
			fixed := `{"main": {"sessionId": "fixed", "updatedAt": 10, "keep": [1, 2]}}`
			if err := os.WriteFile(path, []byte(fixed), 0o600); err != nil {
				t.Fatal(err)
			}
			s := mustCall[wire.Session](t, h, subject.SessionsUpdate, wire.SessionUpdate{SessionKey: "main", LastTo: ptr("y")})
			if s.SessionID != "fixed" || s.LastTo != "y" || s.Created {
				t.Errorf("update after the fix = %+v", s)
			}
			if got := decodeObjects(t, readFile(t, path))["main"]["keep"]; !reflect.DeepEqual(got, []any{1.0, 2.0}) {
				t.Errorf("unknown field after the fix = %v", got)
			}

			// Breaking it again while the service runs is noticed, and it is not overwritten.
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := call[wire.Session](h, subject.SessionsResolve, wire.SessionResolve{SessionKey: "other"})
			checkErr(t, err, wire.CodeUnavailable, "is unreadable")
			if got := readFile(t, path); string(got) != tt.content {
				t.Errorf("store broken again was overwritten with %q", got)
			}
		})
	}
}

// TestUnusableStoredID: a session id in the store that could escape the directory is never
// used as a path.
func TestUnusableStoredID(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "sessions")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, StoreFile)
	content := `{"evil": {"sessionId": "../../escape", "updatedAt": 1}}`
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	h := start(t, Config{Dir: dir})
	_, err := call[wire.Session](h, subject.SessionsAppend, wire.TranscriptAppend{SessionKey: "evil",
		Messages: []schemas.ChatMessage{text("user", "x", 1)}})
	checkErr(t, err, wire.CodeUnavailable, `session "evil"`, "unusable session id")
	_, err = call[schemas.ChatHistoryResult](h, subject.SessionsHistory, wire.HistoryRequest{SessionKey: "evil"})
	checkErr(t, err, wire.CodeUnavailable, "unusable session id")
	if got := readFile(t, path); string(got) != content {
		t.Errorf("store changed to %q", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "../../escape.jsonl")); !os.IsNotExist(err) {
		t.Errorf("a transcript was created outside the dir: %v", err)
	}
	// Re-pointing the key at a valid id makes it usable again.
	s := mustCall[wire.Session](t, h, subject.SessionsAppend, wire.TranscriptAppend{SessionKey: "evil", SessionID: "good",
		Messages: []schemas.ChatMessage{text("user", "x", 1)}})
	if s.SessionID != "good" {
		t.Errorf("append with a new id = %+v", s)
	}
}
