package sessions

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/nats-io/nats.go"

	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/schemas"
)

// Bounds of sessions.list (SPEC §6.10).
const (
	DefaultListLimit = 50
	MaxListLimit     = 500
	// MaxPreviewRunes is the length of lastMessagePreview, in characters, at most.
	MaxPreviewRunes = 120
	// maxCountBytes is the largest transcript whose messages are counted by reading it: a
	// larger one, met for the first time, is listed without messageCount.
	maxCountBytes = 8 << 20
)

// keyedEntry is a copy of a store entry with its key.
type keyedEntry struct {
	key string
	e   entry
}

// newestFirst copies the store's entries, newest updatedAt first (ties by key). s.mu must
// be held and the store loaded.
func (s *Service) newestFirst() []keyedEntry {
	all := make([]keyedEntry, 0, len(s.st.entries))
	for key, e := range s.st.entries {
		all = append(all, keyedEntry{key: key, e: *e})
	}
	slices.SortFunc(all, func(a, b keyedEntry) int {
		if c := cmp.Compare(b.e.UpdatedAt, a.e.UpdatedAt); c != 0 {
			return c
		}
		return cmp.Compare(a.key, b.key)
	})
	return all
}

// handleList answers sessions.list: the limit most recently updated sessions, newest first,
// each with its message count and a preview of its last message when they are known
// cheaply (statCache).
func (s *Service) handleList(_ context.Context, data []byte, _ nats.Header) (any, error) {
	var p schemas.SessionsListParams
	if err := decode(data, &p); err != nil {
		return nil, err
	}
	limit := DefaultListLimit
	if p.Limit != nil {
		if *p.Limit < 1 || *p.Limit > MaxListLimit {
			return nil, wire.Invalid("limit %d out of range 1..%d", *p.Limit, MaxListLimit)
		}
		limit = *p.Limit
	}
	unlock, err := s.lockLoaded()
	if err != nil {
		return nil, err
	}
	all := s.newestFirst()
	unlock()
	rows := make([]schemas.SessionRow, 0, min(limit, len(all)))
	for _, ke := range all {
		if len(rows) == limit {
			break
		}
		if ke.e.SessionID == "" {
			continue // no conversation yet
		}
		row := schemas.SessionRow{Key: ke.key, SessionID: ke.e.SessionID, UpdatedAt: ke.e.UpdatedAt,
			ThinkingLevel: ke.e.ThinkingLevel, LastChannel: ke.e.LastChannel, LastTo: ke.e.LastTo}
		if ValidateSessionID(ke.e.SessionID) != nil {
			rows = append(rows, row) // an id that names no file: listed without figures
			continue
		}
		if st, ok := s.stats.get(transcriptPath(s.cfg.Dir, ke.e.SessionID)); ok {
			if st.counted {
				row.MessageCount = &st.count
			}
			row.LastMessagePreview = st.preview
		}
		rows = append(rows, row)
	}
	fitRows(&rows, s.cfg.MaxBytes)
	return schemas.SessionsListResult{Sessions: rows}, nil
}

// fitRows leaves out the oldest rows until the list takes at most maxBytes encoded (keys
// come from clients and may be long).
func fitRows(rows *[]schemas.SessionRow, maxBytes int) {
	size := encodedLen(schemas.SessionsListResult{Sessions: *rows})
	for n := len(*rows); size > maxBytes && n > 0; n-- {
		size -= encodedLen((*rows)[n-1]) + 1
		*rows = (*rows)[:n-1]
	}
}

// transcriptStat is what sessions.list shows of one transcript, valid while the file has
// size bytes.
type transcriptStat struct {
	size    int64
	count   int  // user and assistant messages
	counted bool // count is known
	preview string
}

// statCache keeps a transcriptStat per transcript file, so that sessions.list reads a
// transcript at most once: afterwards one stat(2) per listed session tells that the cached
// figures are still those of the file, and appends through this service keep them current
// without reading (appended). A transcript changed behind the service's back (another size)
// is read again.
type statCache struct {
	mu sync.Mutex
	m  map[string]transcriptStat // by path
}

// get returns the stat of the transcript at path: cached when its size is unchanged, else
// read (and cached). A missing transcript has no messages. ok is false when the file cannot
// be read.
func (c *statCache) get(path string) (transcriptStat, bool) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return transcriptStat{counted: true}, true
	}
	if err != nil {
		return transcriptStat{}, false
	}
	c.mu.Lock()
	st, ok := c.m[path]
	c.mu.Unlock()
	if ok && st.size == fi.Size() {
		return st, true
	}
	st, err = readStat(path, fi.Size())
	if err != nil {
		return transcriptStat{}, false
	}
	c.mu.Lock()
	if c.m == nil {
		c.m = map[string]transcriptStat{}
	}
	c.m[path] = st
	c.mu.Unlock()
	return st, true
}

// appended updates the cached stat of the transcript at path after msgs were appended at
// offset start, making it size bytes long. A stat cached for another length is dropped.
func (c *statCache) appended(path string, start, size int64, msgs []schemas.ChatMessage) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st, ok := c.m[path]
	if !ok {
		return
	}
	if st.size != start {
		delete(c.m, path)
		return
	}
	st.size = size
	st.count += len(msgs)
	if p := preview(msgs[len(msgs)-1]); p != "" {
		st.preview = p
	}
	c.m[path] = st
}

// readStat reads the first size bytes of the transcript at path: it counts its user and
// assistant lines when it is at most maxCountBytes long, and previews its last message,
// read from its end.
func readStat(path string, size int64) (transcriptStat, error) {
	st := transcriptStat{size: size}
	if size <= maxCountBytes {
		f, err := os.Open(path)
		if err != nil {
			return st, err
		}
		defer f.Close()
		if st.count, err = countMessages(io.NewSectionReader(f, 0, size)); err != nil {
			return st, err
		}
		st.counted = true
	}
	last, err := readTranscript(path, 1, unbounded, "")
	if err != nil {
		return st, err
	}
	if len(last) == 1 {
		st.preview = preview(last[0])
	}
	return st, nil
}

// countMessages counts the complete lines of a transcript that hold a user or assistant
// message (the lines this service writes, and the earlier gateway's; its session headers
// and tool lines are not counted).
func countMessages(r io.Reader) (int, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	n := 0
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		line = append(line, chunk...)
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err == nil && isMessageLine(line) {
			n++
		}
		line = line[:0]
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return 0, err
		}
	}
}

// Markers of a user or assistant message line, as compact JSON encoders write them.
var (
	markUser      = []byte(`"role":"user"`)
	markAssistant = []byte(`"role":"assistant"`)
)

func isMessageLine(line []byte) bool {
	return bytes.Contains(line, markUser) || bytes.Contains(line, markAssistant)
}

// preview is a message's text on one line, at most MaxPreviewRunes characters (cut with an
// ellipsis); "[image]" for a message with images only.
func preview(m schemas.ChatMessage) string {
	var parts []string
	images := false
	for _, c := range m.Content {
		switch c.Type {
		case contentText:
			parts = append(parts, c.Text)
		case contentImage:
			images = true
		}
	}
	text := strings.Join(strings.Fields(strings.Join(parts, " ")), " ")
	if text == "" && images {
		return "[image]"
	}
	if utf8.RuneCountInString(text) <= MaxPreviewRunes {
		return text
	}
	n := 0
	for i := range text {
		if n == MaxPreviewRunes-1 {
			return text[:i] + "…"
		}
		n++
	}
	return text
}
