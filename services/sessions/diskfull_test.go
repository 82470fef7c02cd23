package sessions

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/clawdis/clawdis/bus/subject"
	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/schemas"
)

// checkLines fails unless every line of the transcript at path is complete JSON.
func checkLines(t *testing.T, path string) {
	t.Helper()
	b := readFile(t, path)
	if len(b) > 0 && b[len(b)-1] != '\n' {
		t.Fatalf("transcript ends with a partial line: %q", b[max(0, len(b)-80):])
	}
	for i, line := range bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n")) {
		if len(line) > 0 && !json.Valid(line) {
			t.Fatalf("transcript line %d is not JSON: %q", i+1, line)
		}
	}
}

// TestAppendCutsOffAPartialLine: a partial last line (what a crash in the middle of a write
// leaves) is cut off before the next append, which then starts on a line of its own.
func TestAppendCutsOffAPartialLine(t *testing.T) {
	h := start(t, Config{})
	mustCall[wire.Session](t, h, subject.SessionsAppend,
		wire.TranscriptAppend{SessionKey: "k", Messages: []schemas.ChatMessage{text("user", "one", 1)}})
	s := mustCall[wire.Session](t, h, subject.SessionsResolve, wire.SessionResolve{SessionKey: "k"})
	path := transcriptPath(h.dir, s.SessionID)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(`{"message":{"role":"assistant","content":[{"type":"text","text":"torn`); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()
	mustCall[wire.Session](t, h, subject.SessionsAppend,
		wire.TranscriptAppend{SessionKey: "k", Messages: []schemas.ChatMessage{text("user", "two", 2)}})
	checkLines(t, path)
	hist := mustCall[schemas.ChatHistoryResult](t, h, subject.SessionsHistory, wire.HistoryRequest{SessionKey: "k"})
	if got := texts(hist.Messages); strings.Join(got, ",") != "one,two" {
		t.Fatalf("history %v, want one,two", got)
	}
}

// TestFullDisk: on a full file system (a small tmpfs) an append fails UNAVAILABLE,
// retryable, and leaves no partial line; once there is space again the same append works
// and the history holds everything that was acknowledged. Needs root to mount the tmpfs.
func TestFullDisk(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the full-disk test mounts a tmpfs: run it as root (CI does)")
	}
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=256k"); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(dir, unix.MNT_DETACH) })
	h := start(t, Config{Dir: filepath.Join(dir, "sessions")})
	mustCall[wire.Session](t, h, subject.SessionsAppend,
		wire.TranscriptAppend{SessionKey: "k", Messages: []schemas.ChatMessage{text("user", "before", 1)}})
	s := mustCall[wire.Session](t, h, subject.SessionsResolve, wire.SessionResolve{SessionKey: "k"})
	path := transcriptPath(h.dir, s.SessionID)

	filler := filepath.Join(dir, "filler")
	fill := func() {
		t.Helper()
		f, err := os.Create(filler)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		chunk := make([]byte, 4096)
		for {
			if _, err := f.Write(chunk); err != nil {
				return // full
			}
		}
	}
	fill()
	big := strings.Repeat("x", 64<<10) // larger than what is left, smaller than the tmpfs
	_, err := call[wire.Session](h, subject.SessionsAppend,
		wire.TranscriptAppend{SessionKey: "k", Messages: []schemas.ChatMessage{text("assistant", big, 2)}})
	if werr := checkErr(t, err, wire.CodeUnavailable, "no space left"); !werr.Retryable {
		t.Fatalf("full disk: %+v, want retryable", werr)
	}
	checkLines(t, path)
	_, err = call[wire.Session](h, subject.SessionsAppend,
		wire.TranscriptAppend{SessionKey: "new-session", Messages: []schemas.ChatMessage{text("user", "x", 3)}})
	if werr := checkErr(t, err, wire.CodeUnavailable); !werr.Retryable {
		t.Fatalf("a new session on a full disk: %+v, want retryable", werr)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	mustCall[wire.Session](t, h, subject.SessionsAppend,
		wire.TranscriptAppend{SessionKey: "k", Messages: []schemas.ChatMessage{text("assistant", big, 2)}})
	mustCall[wire.Session](t, h, subject.SessionsAppend,
		wire.TranscriptAppend{SessionKey: "new-session", Messages: []schemas.ChatMessage{text("user", "x", 3)}})
	checkLines(t, path)
	hist := mustCall[schemas.ChatHistoryResult](t, h, subject.SessionsHistory, wire.HistoryRequest{SessionKey: "k"})
	if got := texts(hist.Messages); len(got) != 2 || got[0] != "before" || got[1] != big {
		t.Fatalf("history after the space came back: %d messages", len(got))
	}
}
