package sessions

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"

	"github.com/clawdis/clawdis/bus/subject"
	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/schemas"
)

func textMessage(role, text string) schemas.ChatMessage {
	return schemas.ChatMessage{Role: role, Content: []schemas.ChatContent{{Type: contentText, Text: text}}}
}

// TestListLimitsAndOrder: newest first, 50 by default, the limit honoured, out of range
// refused.
func TestListLimitsAndOrder(t *testing.T) {
	clock := &fixedClock{now: t0}
	h := start(t, Config{Now: clock.Now})
	for i := range 60 {
		clock.Advance(time.Second)
		mustCall[wire.Session](t, h, subject.SessionsResolve, wire.SessionResolve{SessionKey: "k" + string(rune('A'+i))})
	}
	all := mustCall[schemas.SessionsListResult](t, h, subject.SessionsList, nil)
	if len(all.Sessions) != DefaultListLimit {
		t.Fatalf("default list has %d sessions, want %d", len(all.Sessions), DefaultListLimit)
	}
	for i := 1; i < len(all.Sessions); i++ {
		if all.Sessions[i].UpdatedAt > all.Sessions[i-1].UpdatedAt {
			t.Fatalf("not newest first at %d: %+v", i, all.Sessions[i-1:i+1])
		}
	}
	if first := all.Sessions[0]; first.Key != "k"+string(rune('A'+59)) || first.MessageCount == nil || *first.MessageCount != 0 {
		t.Errorf("first = %+v, want the newest session, no messages", first)
	}
	if got := mustCall[schemas.SessionsListResult](t, h, subject.SessionsList, map[string]int{"limit": 500}); len(got.Sessions) != 60 {
		t.Errorf("limit 500 gave %d sessions, want 60", len(got.Sessions))
	}
	for _, limit := range []int{0, MaxListLimit + 1} {
		_, err := call[schemas.SessionsListResult](h, subject.SessionsList, map[string]int{"limit": limit})
		checkErr(t, err, wire.CodeInvalidRequest, "limit")
	}
}

// TestListCountsAndPreview: counts follow appends without re-reading; a transcript that
// changed behind the service's back is read again; the preview is cut at 120 characters
// without splitting one.
func TestListCountsAndPreview(t *testing.T) {
	h := start(t, Config{})
	long := strings.Repeat("ü", 150)
	mustCall[wire.Session](t, h, subject.SessionsAppend, wire.TranscriptAppend{SessionKey: "main",
		Messages: []schemas.ChatMessage{textMessage(roleUser, "hi"), textMessage(roleAssistant, "  hello\n\n there ")}})
	row := mustCall[schemas.SessionsListResult](t, h, subject.SessionsList, nil).Sessions[0]
	if row.MessageCount == nil || *row.MessageCount != 2 || row.LastMessagePreview != "hello there" {
		t.Fatalf("row = %+v, want 2 messages and the folded preview", row)
	}
	mustCall[wire.Session](t, h, subject.SessionsAppend, wire.TranscriptAppend{SessionKey: "main",
		Messages: []schemas.ChatMessage{textMessage(roleUser, long)}})
	row = mustCall[schemas.SessionsListResult](t, h, subject.SessionsList, nil).Sessions[0]
	if row.MessageCount == nil || *row.MessageCount != 3 {
		t.Errorf("count after an append = %v, want 3", row.MessageCount)
	}
	if n := utf8.RuneCountInString(row.LastMessagePreview); n != MaxPreviewRunes || !utf8.ValidString(row.LastMessagePreview) ||
		!strings.HasSuffix(row.LastMessagePreview, "…") {
		t.Errorf("preview %q has %d characters, want %d ending with …", row.LastMessagePreview, n, MaxPreviewRunes)
	}
	// Another writer adds a line (and a header line that is no message): read again.
	path := transcriptPath(h.dir, row.SessionID)
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = f.WriteString(`{"type":"session","id":"x"}` + "\n" + `{"message":{"role":"assistant","content":"from elsewhere","timestamp":1}}` + "\n")
	f.Close()
	row = mustCall[schemas.SessionsListResult](t, h, subject.SessionsList, nil).Sessions[0]
	if row.MessageCount == nil || *row.MessageCount != 4 || row.LastMessagePreview != "from elsewhere" {
		t.Errorf("row after an outside write = %+v, want 4 messages", row)
	}
}

// serveBusy answers agent.busy with runs for key (none for other keys).
func serveBusy(t *testing.T, h *harness, key string, runs *[]string) {
	t.Helper()
	nc := h.bus.Conn("fake-agent")
	sub, err := nc.Subscribe(subject.AgentBusy, func(m *nats.Msg) {
		var req wire.SessionBusyRequest
		_ = json.Unmarshal(m.Data, &req)
		out := wire.SessionBusy{RunIDs: []string{}}
		if req.SessionKey == key {
			out.RunIDs = *runs
		}
		b, _ := json.Marshal(out)
		_ = m.Respond(b)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
}

// TestReset: refused while the agent reports a run of the session; otherwise a new session
// id with the thinking level kept, the old transcript left on disk, and a changed event.
func TestReset(t *testing.T) {
	h := start(t, Config{})
	changed := make(chan wire.SessionsSummary, 16)
	sub, err := h.nc.Subscribe(subject.SessionsChanged, func(m *nats.Msg) {
		var s wire.SessionsSummary
		_ = json.Unmarshal(m.Data, &s)
		changed <- s
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	mustCall[wire.Session](t, h, subject.SessionsUpdate, wire.SessionUpdate{SessionKey: "main", ThinkingLevel: ptr("high")})
	before := mustCall[wire.Session](t, h, subject.SessionsAppend, wire.TranscriptAppend{SessionKey: "main",
		Messages: []schemas.ChatMessage{textMessage(roleUser, "hi")}})

	// Without an agent on the bus nothing runs: the reset goes through.
	first := mustCall[schemas.SessionsResetResult](t, h, subject.SessionsReset, schemas.SessionsResetParams{SessionKey: "main"})
	if first.SessionID == before.SessionID {
		t.Fatalf("reset without an agent kept the session id %s", first.SessionID)
	}
	runs := []string{"r1"}
	serveBusy(t, h, "main", &runs)
	_, err = call[schemas.SessionsResetResult](h, subject.SessionsReset, schemas.SessionsResetParams{SessionKey: "main"})
	checkErr(t, err, wire.CodeInvalidRequest, "main", "r1", "abort it first")

	runs = []string{}
	res := mustCall[schemas.SessionsResetResult](t, h, subject.SessionsReset, schemas.SessionsResetParams{SessionKey: "main"})
	if res.SessionKey != "main" || res.SessionID == first.SessionID || res.SessionID == "" {
		t.Fatalf("reset = %+v, old id %s", res, before.SessionID)
	}
	hist := mustCall[schemas.ChatHistoryResult](t, h, subject.SessionsHistory, wire.HistoryRequest{SessionKey: "main"})
	if hist.SessionID != res.SessionID || len(hist.Messages) != 0 || hist.ThinkingLevel != "high" {
		t.Errorf("history after reset = %+v, want the new empty session, thinking kept", hist)
	}
	if _, err := os.Stat(transcriptPath(h.dir, before.SessionID)); err != nil {
		t.Errorf("old transcript: %v", err)
	}
	// Events of the earlier changes may come first (they are coalesced).
	limit := time.After(waitLimit)
	for seen := false; !seen; {
		select {
		case s := <-changed:
			seen = len(s.Sessions) > 0 && s.Sessions[0].SessionID == res.SessionID
		case <-limit:
			t.Fatal("no changed event with the new session id after the reset")
		}
	}
}

// TestListUnusableID: a stored session id that cannot name a file is listed without
// figures (nothing is read); an entry without a session id is left out.
func TestListUnusableID(t *testing.T) {
	h := start(t, Config{})
	if err := os.MkdirAll(h.dir, 0o700); err != nil {
		t.Fatal(err)
	}
	store := `{"bad": {"sessionId": "../escape", "updatedAt": 2}, "none": {"updatedAt": 3}}`
	if err := os.WriteFile(filepath.Join(h.dir, StoreFile), []byte(store), 0o600); err != nil {
		t.Fatal(err)
	}
	rows := mustCall[schemas.SessionsListResult](t, h, subject.SessionsList, nil).Sessions
	if len(rows) != 1 || rows[0].Key != "bad" || rows[0].MessageCount != nil || rows[0].LastMessagePreview != "" {
		t.Fatalf("rows = %+v, want only bad, without figures", rows)
	}
}
