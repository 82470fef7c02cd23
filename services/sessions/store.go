package sessions

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/services/internal/statefile"
)

// StoreFile is the name of the session store inside Config.Dir.
const StoreFile = "sessions.json"

// Field names of a store entry that the service understands; every other field is kept as is.
const (
	fieldSessionID     = "sessionId"
	fieldUpdatedAt     = "updatedAt"
	fieldThinkingLevel = "thinkingLevel"
	fieldLastChannel   = "lastChannel"
	fieldLastTo        = "lastTo"
)

// entry is one session of the store. Fields the service does not know (the earlier gateway's
// "systemSent", "inputTokens", …) are kept verbatim in extra and written back unchanged; an
// entry the service never changed is written back exactly as it was read.
type entry struct {
	SessionID     string
	UpdatedAt     int64 // unix ms, 0 if unknown
	ThinkingLevel string
	LastChannel   string
	LastTo        string
	extra         map[string]json.RawMessage
	raw           json.RawMessage // the entry as read; nil once changed (see clone)
}

// UnmarshalJSON decodes an entry object; a known field of the wrong type is an error naming
// it, and a null known field counts as absent.
func (e *entry) UnmarshalJSON(data []byte) error {
	if !isObject(data) {
		return errors.New("not a JSON object")
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil {
		return err
	}
	*e = entry{}
	strs := []struct {
		name string
		dst  *string
	}{
		{fieldSessionID, &e.SessionID},
		{fieldThinkingLevel, &e.ThinkingLevel},
		{fieldLastChannel, &e.LastChannel},
		{fieldLastTo, &e.LastTo},
	}
	for _, f := range strs {
		raw, ok := fields[f.name]
		delete(fields, f.name)
		if !ok || isNull(raw) {
			continue
		}
		if err := json.Unmarshal(raw, f.dst); err != nil {
			return fmt.Errorf("field %s: %w", f.name, err)
		}
	}
	if raw, ok := fields[fieldUpdatedAt]; ok && !isNull(raw) {
		var ms float64 // the earlier gateway wrote Date.now(); accept any JSON number
		if err := json.Unmarshal(raw, &ms); err != nil {
			return fmt.Errorf("field %s: %w", fieldUpdatedAt, err)
		}
		if ms > 0 && ms < math.MaxInt64 {
			e.UpdatedAt = int64(ms)
		}
	}
	delete(fields, fieldUpdatedAt)
	if len(fields) > 0 {
		e.extra = fields
	}
	e.raw = bytes.Clone(data)
	return nil
}

// MarshalJSON encodes the entry with its unknown fields; empty optional fields are left out.
func (e *entry) MarshalJSON() ([]byte, error) {
	if e.raw != nil {
		return e.raw, nil
	}
	out := make(map[string]any, len(e.extra)+5)
	for k, v := range e.extra {
		out[k] = v
	}
	out[fieldSessionID] = e.SessionID
	out[fieldUpdatedAt] = e.UpdatedAt
	for name, v := range map[string]string{
		fieldThinkingLevel: e.ThinkingLevel,
		fieldLastChannel:   e.LastChannel,
		fieldLastTo:        e.LastTo,
	} {
		if v != "" {
			out[name] = v
		}
	}
	return json.Marshal(out)
}

// clone returns a copy to change: it is encoded from its fields, no longer as read.
func (e *entry) clone() *entry {
	c := *e
	c.extra = maps.Clone(e.extra)
	c.raw = nil
	return &c
}

// session returns the entry as the bus reports it.
func (e *entry) session(key string, created bool) wire.Session {
	return wire.Session{
		SessionKey:    key,
		SessionID:     e.SessionID,
		UpdatedAt:     e.UpdatedAt,
		ThinkingLevel: e.ThinkingLevel,
		LastChannel:   e.LastChannel,
		LastTo:        e.LastTo,
		Created:       created,
	}
}

func isObject(data []byte) bool {
	data = bytes.TrimLeft(data, " \t\r\n")
	return len(data) > 0 && data[0] == '{'
}

func isNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }

// fileStamp identifies one version of the store file, so a change made by someone else is
// noticed and re-read.
type fileStamp struct {
	exists  bool
	size    int64
	modTime time.Time
}

func (a fileStamp) equal(b fileStamp) bool {
	return a.exists == b.exists && a.size == b.size && a.modTime.Equal(b.modTime)
}

func stampOf(fi fs.FileInfo) fileStamp {
	return fileStamp{exists: true, size: fi.Size(), modTime: fi.ModTime()}
}

// store is the session store file and its decoded contents. It is not safe for concurrent
// use; the service serialises every call.
type store struct {
	dir, path string
	entries   map[string]*entry
	stamp     fileStamp // of the file entries were read from or last written to
	loaded    bool      // entries match stamp
}

func newStore(dir string) *store {
	return &store{dir: dir, path: filepath.Join(dir, StoreFile)}
}

// errUnreadable wraps the reason the store file cannot be used.
type errUnreadable struct {
	path string
	err  error
}

func (e *errUnreadable) Error() string {
	return fmt.Sprintf("session store %s is unreadable: %s; fix or move the file", e.path, e.err.Error())
}

func (e *errUnreadable) Unwrap() error { return e.err }

// load makes entries current: it re-reads the file when it changed since it was last read or
// written (or when the last read failed). A missing file is an empty store. A file that is
// not a JSON object of objects yields an *errUnreadable and leaves the file untouched.
func (s *store) load() error {
	fi, err := os.Stat(s.path)
	var stamp fileStamp
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		s.loaded = false
		return &errUnreadable{path: s.path, err: err}
	default:
		stamp = stampOf(fi)
	}
	if s.loaded && stamp.equal(s.stamp) {
		return nil
	}
	s.loaded = false
	entries := map[string]*entry{}
	if stamp.exists {
		data, err := os.ReadFile(s.path)
		if err != nil {
			return &errUnreadable{path: s.path, err: err}
		}
		if entries, err = decodeStore(data); err != nil {
			return &errUnreadable{path: s.path, err: err}
		}
	}
	s.entries, s.stamp, s.loaded = entries, stamp, true
	return nil
}

// decodeStore decodes the store file's contents: a JSON object of entry objects.
func decodeStore(data []byte) (map[string]*entry, error) {
	if !json.Valid(data) {
		var v any
		err := json.Unmarshal(data, &v) // for the position of the syntax error
		if err == nil {
			err = errors.New("invalid JSON")
		}
		return nil, fmt.Errorf("not JSON: %w", err)
	}
	if !isObject(data) {
		return nil, errors.New("not a JSON object")
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, err
	}
	entries := make(map[string]*entry, len(raw))
	for key, v := range raw {
		e := &entry{}
		if err := e.UnmarshalJSON(v); err != nil {
			return nil, fmt.Errorf("entry %q: %w", key, err)
		}
		entries[key] = e
	}
	return entries, nil
}

// save writes entries atomically (statefile.WriteAtomic). After a failure the next load
// re-reads the file, whichever version it holds.
func (s *store) save() error {
	s.loaded = false
	data, err := json.MarshalIndent(s.entries, "", "  ")
	if err != nil {
		return fmt.Errorf("encode session store: %w", err)
	}
	if err := statefile.WriteAtomic(s.path, append(data, '\n')); err != nil {
		return fmt.Errorf("session store: %w", err)
	}
	if fi, err := os.Stat(s.path); err == nil {
		s.stamp, s.loaded = stampOf(fi), true
	}
	return nil
}
