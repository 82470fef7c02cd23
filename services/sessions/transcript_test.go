package sessions

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/clawdis/clawdis/schemas"
)

// TestReadTail: reading backwards in blocks of any size finds the same newest messages as
// parsing every line in order, whatever the line lengths, blank, CRLF, broken or
// unterminated lines.
func TestReadTail(t *testing.T) {
	var lines []string
	for i := range 30 {
		switch i % 6 {
		case 0:
			lines = append(lines, fmt.Sprintf(`{"message":{"role":"user","content":"short %d","timestamp":%d}}`, i, i))
		case 1:
			lines = append(lines, fmt.Sprintf(`{"message":{"role":"assistant","content":[{"type":"text","text":"%s %d"}],"timestamp":%d}}`,
				strings.Repeat("x", 300), i, i))
		case 2:
			lines = append(lines, "", `{"type":"session","id":"s"}`)
		case 3:
			lines = append(lines, fmt.Sprintf(`{"message":{"role":"user","content":"crlf %d","timestamp":%d}}`+"\r", i, i))
		case 4:
			lines = append(lines, `{"message":{"role":"user","content":"broken`)
		case 5:
			lines = append(lines, fmt.Sprintf(`{"message":{"role":"assistant","content":"last of six %d"}}`, i))
		}
	}
	for _, terminated := range []bool{true, false} {
		content := strings.Join(lines, "\n")
		if terminated {
			content += "\n"
		}
		path := filepath.Join(t.TempDir(), "s.jsonl")
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		var all []schemas.ChatMessage
		for _, l := range bytes.Split([]byte(content), []byte("\n")) {
			if m, ok := parseLine(l); ok {
				all = append(all, m)
			}
		}
		if len(all) != 20 {
			t.Fatalf("%d parsable messages in the fixture, want 20", len(all))
		}
		for _, block := range []int{1, 2, 7, 64, 301, 4096} {
			for _, limit := range []int{1, 3, 19, 20, 50} {
				got, err := readTail(path, limit, unbounded, block, "")
				if err != nil {
					t.Fatal(err)
				}
				want := all[max(0, len(all)-limit):]
				if !reflect.DeepEqual(got, want) {
					t.Errorf("terminated %v block %d limit %d: got %q, want %q", terminated, block, limit, texts(got), texts(want))
				}
			}
		}
	}
	if got, err := readTail(filepath.Join(t.TempDir(), "missing.jsonl"), 5, unbounded, 64, ""); err != nil || got == nil || len(got) != 0 {
		t.Errorf("missing transcript = %v, %v; want an empty list", got, err)
	}
}
