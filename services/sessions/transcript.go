package sessions

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/schemas"
)

// Roles and content types of transcript messages.
const (
	roleUser      = "user"
	roleAssistant = "assistant"
	contentText   = "text"
	contentImage  = "image"
)

// transcriptPath is the transcript file of session id, which must be valid.
func transcriptPath(dir, id string) string { return filepath.Join(dir, id+".jsonl") }

// transcriptLine is one line of a transcript as this service writes it.
// Run is the key of the run that appended it (wire.TranscriptAppend RunKey), if any.
type transcriptLine struct {
	Message schemas.ChatMessage `json:"message"`
	Run     string              `json:"run,omitempty"`
}

// validateMessages checks messages to append and fills in a zero timestamp with now.
func validateMessages(msgs []schemas.ChatMessage, now time.Time) error {
	if len(msgs) == 0 {
		return wire.Invalid("messages required")
	}
	for i := range msgs {
		m := &msgs[i]
		if m.Role != roleUser && m.Role != roleAssistant {
			return wire.Invalid("messages[%d].role %q must be user or assistant", i, wire.Clip(m.Role))
		}
		if len(m.Content) == 0 {
			return wire.Invalid("messages[%d].content must not be empty", i)
		}
		for j, c := range m.Content {
			switch {
			case c.Type == contentText && c.Text == "":
				return wire.Invalid("messages[%d].content[%d].text must not be empty", i, j)
			case c.Type == contentImage && (c.MimeType == "" || c.Data == ""):
				return wire.Invalid("messages[%d].content[%d]: an image needs mimeType and data", i, j)
			case c.Type != contentText && c.Type != contentImage:
				return wire.Invalid("messages[%d].content[%d].type %q must be text or image", i, j, wire.Clip(c.Type))
			}
		}
		if m.Timestamp < 0 {
			return wire.Invalid("messages[%d].timestamp %d is negative", i, m.Timestamp)
		}
		if m.Timestamp == 0 {
			m.Timestamp = now.UnixMilli()
		}
	}
	return nil
}

// appendTranscript appends one line per message to path, in order, in a single write to
// the file opened with O_APPEND (0600). A transcript never keeps a partial line: when the
// write fails (a full disk, a read-only file system) the file is cut back to where it
// ended, and a partial last line left by an earlier crash is cut off before the append.
// Each line names run, when it is not empty. It returns where the new lines start, the
// file's size after them, and how many bytes of a partial line it cut off.
func appendTranscript(path, run string, msgs []schemas.ChatMessage) (start, size, repaired int64, err error) {
	var buf []byte
	for _, m := range msgs {
		b, err := json.Marshal(transcriptLine{Message: m, Run: run})
		if err != nil {
			return 0, 0, 0, fmt.Errorf("encode transcript line: %w", err)
		}
		buf = append(append(buf, b...), '\n')
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("open transcript: %w", err)
	}
	defer f.Close()
	end, repaired, err := completeEnd(f)
	if err != nil {
		return 0, 0, 0, err
	}
	if n, err := f.Write(buf); err != nil {
		if n > 0 {
			if terr := f.Truncate(end); terr != nil {
				return 0, 0, repaired, fmt.Errorf("append to transcript: %w (and cutting back the partial line failed: %w)", err, terr)
			}
		}
		return 0, 0, repaired, fmt.Errorf("append to transcript: %w", err)
	}
	if err := f.Close(); err != nil {
		_ = os.Truncate(path, end)
		return 0, 0, repaired, fmt.Errorf("append to transcript: %w", err)
	}
	return end, end + int64(len(buf)), repaired, nil
}

// completeEnd returns where f's last complete line ends, cutting off a partial line after
// it (what a crash in the middle of a write leaves), and how many bytes it cut off.
func completeEnd(f *os.File) (end, cut int64, err error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, 0, fmt.Errorf("read transcript: %w", err)
	}
	size := fi.Size()
	end = size
	buf := make([]byte, 4096)
	for end > 0 {
		n := int64(len(buf))
		if n > end {
			n = end
		}
		if _, err := f.ReadAt(buf[:n], end-n); err != nil {
			return 0, 0, fmt.Errorf("read transcript: %w", err)
		}
		if i := bytes.LastIndexByte(buf[:n], '\n'); i >= 0 {
			end = end - n + int64(i) + 1
			break
		}
		end -= n
	}
	if end == size {
		return end, 0, nil
	}
	if err := f.Truncate(end); err != nil {
		return 0, 0, fmt.Errorf("cut off a partial transcript line: %w", err)
	}
	return end, size - end, nil
}

// tailBlock is how much of a transcript is read at a time, from its end.
const tailBlock = 64 << 10

// unbounded is the byte budget of readTranscript that never runs out.
const unbounded = math.MaxInt

// readTranscript returns the newest messages of the transcript at path, oldest first: at
// most limit of them, and only as many of the newest as fit in budget bytes when encoded as
// the elements of a JSON array (commas included; unbounded for no bound). A missing file has
// no messages; lines that are not user or assistant messages (the earlier gateway's session
// headers, tool results, …) and broken lines are skipped. The file is read backwards from
// its end, so long transcripts cost only what is returned.
// Lines of the run except (when not empty) are skipped too.
func readTranscript(path string, limit, budget int, except string) ([]schemas.ChatMessage, error) {
	return readTail(path, limit, budget, tailBlock, except)
}

func readTail(path string, limit, budget, block int, except string) ([]schemas.ChatMessage, error) {
	if limit <= 0 || budget <= 0 {
		return []schemas.ChatMessage{}, nil
	}
	f, size, err := openTranscript(path)
	if f == nil {
		return []schemas.ChatMessage{}, err
	}
	defer f.Close()
	msgs := make([]schemas.ChatMessage, 0, min(limit, 64)) // newest first
	used := 0                                              // bytes of msgs encoded, with commas
	// take parses one line and reports whether reading is over: limit messages were
	// collected, or the line's message does not fit in what is left of the budget.
	take := func(line []byte) bool {
		if except != "" && lineRun(line) == except {
			return false
		}
		m, ok := parseLine(line)
		if !ok {
			return false
		}
		if budget != unbounded {
			b, err := json.Marshal(m)
			if err != nil {
				return true
			}
			size := len(b)
			if len(msgs) > 0 {
				size++ // the comma
			}
			if size > budget-used {
				return true
			}
			used += size
		}
		msgs = append(msgs, m)
		return len(msgs) >= limit
	}
	var carry []byte // the beginning of the file not yet split: ends inside a line
	end := size
	done := false
	for end > 0 && !done {
		// Read at least as much as is carried, so a long line costs linear time.
		n := min(int64(max(block, len(carry))), end)
		chunk := make([]byte, int(n)+len(carry))
		if _, err := f.ReadAt(chunk[:n], end-n); err != nil {
			return nil, fmt.Errorf("read transcript: %w", err)
		}
		copy(chunk[n:], carry)
		end -= n
		i := len(chunk)
		for !done {
			j := bytes.LastIndexByte(chunk[:i], '\n')
			if j < 0 {
				break
			}
			done = take(chunk[j+1 : i])
			i = j
		}
		carry = chunk[:i]
	}
	if !done && len(carry) > 0 {
		take(carry) // the first line
	}
	slices.Reverse(msgs)
	return msgs, nil
}

// openTranscript opens the transcript at path for reading and returns its size; the file is
// nil when there is none (with a nil error when it does not exist).
func openTranscript(path string) (*os.File, int64, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("open transcript: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("read transcript: %w", err)
	}
	return f, fi.Size(), nil
}

// lineRun is the run key a transcript line names, or "".
func lineRun(line []byte) string {
	if !bytes.Contains(line, []byte(`"run"`)) {
		return ""
	}
	var l struct {
		Run string `json:"run"`
	}
	_ = json.Unmarshal(line, &l)
	return l.Run
}

// runTail is how many of a transcript's last lines an append of a run looks at for the
// messages the run already appended: a run's own (its user message, its reply) are the last
// of its session's, since the session's turns run one at a time.
const runTail = 4

// runMessages returns the messages the run appended among the last runTail lines of the
// transcript at path, oldest first (none when it does not exist).
func runMessages(path, run string) ([]schemas.ChatMessage, error) {
	f, end, err := openTranscript(path)
	if f == nil {
		return nil, err
	}
	defer f.Close()
	// Read backwards until runTail+1 line ends are in: runTail whole lines.
	var tail []byte
	for end > 0 && bytes.Count(tail, []byte{'\n'}) <= runTail {
		n := min(int64(tailBlock), end)
		chunk := make([]byte, int(n), int(n)+len(tail))
		if _, err := f.ReadAt(chunk, end-n); err != nil {
			return nil, fmt.Errorf("read transcript: %w", err)
		}
		tail = append(chunk, tail...)
		end -= n
	}
	var msgs []schemas.ChatMessage
	lines := bytes.Split(bytes.TrimRight(tail, "\n"), []byte{'\n'})
	for _, line := range lines[max(len(lines)-runTail, 0):] {
		if lineRun(line) != run {
			continue
		}
		if m, ok := parseLine(line); ok {
			msgs = append(msgs, m)
		}
	}
	return msgs, nil
}

// parseLine decodes one transcript line {"message":{role, content, timestamp, aborted?,
// channel?, sender?}}. It accepts
// the earlier gateway's variants: content given as a plain string, parts other than text and
// image (dropped), and a timestamp only on the line (unix ms or an RFC 3339 string).
func parseLine(line []byte) (schemas.ChatMessage, bool) {
	if !bytes.Contains(line, []byte(`"message"`)) {
		return schemas.ChatMessage{}, false
	}
	var l struct {
		Message *struct {
			Role      string          `json:"role"`
			Content   json.RawMessage `json:"content"`
			Timestamp json.RawMessage `json:"timestamp"`
			Aborted   bool            `json:"aborted"`
			Channel   string          `json:"channel"`
			Sender    string          `json:"sender"`
		} `json:"message"`
		Timestamp json.RawMessage `json:"timestamp"`
	}
	if err := json.Unmarshal(line, &l); err != nil || l.Message == nil {
		return schemas.ChatMessage{}, false
	}
	m := l.Message
	if m.Role != roleUser && m.Role != roleAssistant {
		return schemas.ChatMessage{}, false
	}
	content, ok := parseContent(m.Content)
	if !ok {
		return schemas.ChatMessage{}, false
	}
	ts, ok := parseTimestamp(m.Timestamp)
	if !ok {
		ts, _ = parseTimestamp(l.Timestamp)
	}
	return schemas.ChatMessage{Role: m.Role, Content: content, Timestamp: ts,
		Aborted: m.Aborted, Channel: m.Channel, Sender: m.Sender}, true
}

// parseContent returns the text and image parts of a message's content, false when none.
func parseContent(raw json.RawMessage) ([]schemas.ChatContent, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return nil, false
	}
	if raw[0] == '"' {
		var text string
		if json.Unmarshal(raw, &text) != nil || text == "" {
			return nil, false
		}
		return []schemas.ChatContent{{Type: contentText, Text: text}}, true
	}
	var parts []schemas.ChatContent
	if json.Unmarshal(raw, &parts) != nil {
		// A part with an unexpected shape: keep the others.
		var raws []json.RawMessage
		if json.Unmarshal(raw, &raws) != nil {
			return nil, false
		}
		parts = make([]schemas.ChatContent, len(raws))
		for i, p := range raws {
			_ = json.Unmarshal(p, &parts[i]) // a broken part stays zero and is dropped
		}
	}
	out := parts[:0]
	for _, c := range parts {
		switch {
		case c.Type == contentText && c.Text != "":
			out = append(out, schemas.ChatContent{Type: contentText, Text: c.Text})
		case c.Type == contentImage && c.MimeType != "" && c.Data != "":
			out = append(out, schemas.ChatContent{Type: contentImage, MimeType: c.MimeType, Data: c.Data})
		}
	}
	return out, len(out) > 0
}

// parseTimestamp reads unix ms from a JSON number or an RFC 3339 string.
func parseTimestamp(raw json.RawMessage) (int64, bool) {
	if len(raw) == 0 {
		return 0, false
	}
	var ms float64
	if json.Unmarshal(raw, &ms) == nil {
		return int64(ms), ms >= 0 && ms < 1<<53
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil && t.UnixMilli() >= 0 {
			return t.UnixMilli(), true
		}
	}
	return 0, false
}
