package provider

import (
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

func TestSeenStoreBounds(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	clock := func() time.Time { return now }
	path := filepath.Join(t.TempDir(), "seen.json")
	s, err := openSeen(path, clock)
	if err != nil {
		t.Fatal(err)
	}
	if !s.add("c", "old") || s.add("c", "old") {
		t.Fatal("first add must be new, the second a duplicate")
	}
	for range 2 {
		if !s.add("", "x") {
			t.Fatal("a message without chat is never a duplicate")
		}
	}
	now = now.Add(dedupeMaxAge + time.Millisecond)
	if !s.add("c", "old") {
		t.Fatal("a record older than the max age still deduplicates")
	}
	for i := range dedupeMaxEntries {
		now = now.Add(time.Millisecond)
		s.add("c", strconv.Itoa(i))
	}
	if s.seen.Len() != dedupeMaxEntries {
		t.Fatalf("holds %d records, cap %d", s.seen.Len(), dedupeMaxEntries)
	}
	if err := s.save(); err != nil {
		t.Fatal(err)
	}
	again, err := openSeen(path, clock)
	if err != nil {
		t.Fatal(err)
	}
	if !again.add("c", "old") {
		t.Fatal("the oldest record survived the cap across a reopen")
	}
	if again.add("c", "1") || again.add("c", strconv.Itoa(dedupeMaxEntries-1)) {
		t.Fatal("records within the cap were lost across a reopen")
	}
}
