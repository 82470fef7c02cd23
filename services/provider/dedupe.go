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

	mu      sync.Mutex
	entries []seenEntry // oldest first
	index   map[seenKey]struct{}
	dirty   bool
}

// openSeen loads the records at path (a missing file is empty; "" keeps them in memory).
// A file that cannot be decoded is moved aside and an error saying so is returned with an
// empty, usable store.
func openSeen(path string, now func() time.Time) (*seenStore, error) {
	s := &seenStore{path: path, now: now, index: map[seenKey]struct{}{}}
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
		if _, dup := s.index[k]; !dup {
			s.index[k] = struct{}{}
			s.entries = append(s.entries, e)
		}
	}
	s.mu.Lock()
	s.pruneLocked()
	s.mu.Unlock()
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
	s.pruneLocked()
	k := seenKey{chat, id}
	if _, ok := s.index[k]; ok {
		return false
	}
	s.index[k] = struct{}{}
	s.entries = append(s.entries, seenEntry{Chat: chat, ID: id, At: s.now().UnixMilli()})
	s.dirty = true
	s.pruneLocked()
	return true
}

// pruneLocked drops entries older than dedupeMaxAge and the oldest beyond dedupeMaxEntries.
func (s *seenStore) pruneLocked() {
	cutoff := s.now().Add(-dedupeMaxAge).UnixMilli()
	drop := 0
	for drop < len(s.entries) && (s.entries[drop].At < cutoff || len(s.entries)-drop > dedupeMaxEntries) {
		delete(s.index, seenKey{s.entries[drop].Chat, s.entries[drop].ID})
		drop++
	}
	if drop > 0 {
		s.entries = slices.Delete(s.entries, 0, drop)
		s.dirty = true
	}
}

// save writes the records when they changed since the last save.
func (s *seenStore) save() error {
	s.mu.Lock()
	if !s.dirty || s.path == "" {
		s.mu.Unlock()
		return nil
	}
	b, err := json.Marshal(s.entries)
	s.dirty = false
	s.mu.Unlock()
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
