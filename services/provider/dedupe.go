package provider

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/clawdis/clawdis/services/internal/statefile"
	"github.com/clawdis/clawdis/services/internal/ttlmap"
)

// Bounds of the inbound dedupe records.
const (
	dedupeMaxEntries = 5000
	dedupeMaxAge     = 24 * time.Hour
)

// seenEntry is one inbound message already published.
type seenEntry struct {
	Chat string `json:"chat"`
	ID   string `json:"id"`
	At   int64  `json:"at"` // unix ms when it was first seen
}

type seenKey struct{ chat, id string }

// seenStore remembers the (chat, message id) pairs already published, the newest
// dedupeMaxEntries of the last dedupeMaxAge, persisted to a JSON file when path is set.
type seenStore struct {
	path string
	now  func() time.Time

	mu    sync.Mutex
	seen  *ttlmap.Map[seenKey, int64] // the unix ms when each was first seen
	dirty bool
}

// openSeen loads the records at path (a missing file is empty; "" keeps them in memory).
// A file that cannot be decoded is moved aside and an error saying so is returned with an
// empty, usable store.
func openSeen(path string, now func() time.Time) (*seenStore, error) {
	s := &seenStore{path: path, now: now, seen: ttlmap.New[seenKey, int64](dedupeMaxAge, dedupeMaxEntries)}
	if path == "" {
		return s, nil
	}
	var entries []seenEntry
	if err := statefile.ReadJSON(path, &entries, now(), nil); err != nil {
		if !errors.Is(err, statefile.ErrCorrupt) {
			return nil, fmt.Errorf("inbound dedupe: %w", err)
		}
		return s, fmt.Errorf("inbound dedupe: %w", err)
	}
	slices.SortStableFunc(entries, func(a, b seenEntry) int { return cmp.Compare(a.At, b.At) })
	for _, e := range entries {
		k := seenKey{e.Chat, e.ID}
		if _, dup := s.seen.Stamp(k); !dup {
			s.seen.Put(k, e.At, time.UnixMilli(e.At))
		}
	}
	s.dirty = s.seen.Expire(now()) > 0 || s.seen.Len() < len(entries)
	return s, nil
}

// add records (chat, id) and reports whether it is new. Messages without a chat or id
// cannot be deduplicated and always count as new.
func (s *seenStore) add(chat, id string) bool {
	if chat == "" || id == "" {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	k := seenKey{chat, id}
	if _, ok := s.seen.Get(k, now); ok {
		return false
	}
	s.seen.Put(k, now.UnixMilli(), now)
	s.dirty = true
	return true
}

// save writes the records when they changed since the last save.
func (s *seenStore) save() error {
	s.mu.Lock()
	if !s.dirty || s.path == "" {
		s.mu.Unlock()
		return nil
	}
	entries := make([]seenEntry, 0, s.seen.Len())
	for k, at := range s.seen.All() {
		entries = append(entries, seenEntry{Chat: k.chat, ID: k.id, At: at})
	}
	s.dirty = false
	s.mu.Unlock()
	b, err := json.Marshal(entries)
	if err != nil {
		return fmt.Errorf("encode inbound dedupe: %w", err)
	}
	if err := statefile.WriteAtomic(s.path, b); err != nil {
		s.mu.Lock()
		s.dirty = true
		s.mu.Unlock()
		return err
	}
	return nil
}
