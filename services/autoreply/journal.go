package autoreply

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/services/internal/statefile"
)

// ErrJournalCorrupt is returned (wrapped) when the journal file cannot be decoded; the file
// is moved aside and the service starts with no pending messages.
var ErrJournalCorrupt = errors.New("autoreply journal unreadable")

// journalVersion is the format version of the journal file.
const journalVersion = 1

// entry is one accepted message that has not been answered yet.
type entry struct {
	Key     string              `json:"key"` // the run key
	Msg     wire.InboundMessage `json:"msg"`
	AddedAt int64               `json:"addedAt"` // unix ms
	// Resumes counts the starts of the service that found this entry pending.
	Resumes int `json:"resumes,omitempty"`
}

type journalFile struct {
	Version int     `json:"version"`
	Pending []entry `json:"pending"`
}

// journal is the persisted set of pending messages, written atomically on every change.
// An empty path keeps it in memory.
type journal struct {
	path    string
	mu      sync.Mutex
	entries map[string]entry
}

func newJournal(path string) *journal {
	return &journal{path: path, entries: map[string]entry{}}
}

// load reads the file (a missing file is empty). A corrupt file is moved to
// <path>.corrupt-<unix> and load returns an error wrapping ErrJournalCorrupt with the
// journal empty.
func (j *journal) load(now time.Time) error {
	if j.path == "" {
		return nil
	}
	var f journalFile
	err := statefile.ReadJSON(j.path, &f, now, func() error {
		if f.Version != journalVersion {
			return fmt.Errorf("unknown version %d", f.Version)
		}
		return nil
	})
	if errors.Is(err, statefile.ErrCorrupt) {
		return fmt.Errorf("%w: %w", ErrJournalCorrupt, err)
	}
	if err != nil {
		return fmt.Errorf("autoreply: journal: %w", err)
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, e := range f.Pending {
		if e.Key != "" {
			j.entries[e.Key] = e
		}
	}
	return nil
}

// list returns the pending entries, oldest first.
func (j *journal) list() []entry {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.listLocked()
}

func (j *journal) listLocked() []entry {
	out := make([]entry, 0, len(j.entries))
	for _, e := range j.entries {
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b entry) int {
		return cmp.Or(cmp.Compare(a.AddedAt, b.AddedAt), strings.Compare(a.Key, b.Key))
	})
	return out
}

// put adds or replaces e and persists the journal.
func (j *journal) put(e entry) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.entries[e.Key] = e
	return j.saveLocked()
}

// putAll adds or replaces every entry of es and persists the journal once.
func (j *journal) putAll(es []entry) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, e := range es {
		j.entries[e.Key] = e
	}
	return j.saveLocked()
}

// remove forgets key and persists the journal. It is removed from memory even when
// persisting fails.
func (j *journal) remove(key string) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if _, ok := j.entries[key]; !ok {
		return nil
	}
	delete(j.entries, key)
	return j.saveLocked()
}

func (j *journal) saveLocked() error {
	if j.path == "" {
		return nil
	}
	b, err := json.Marshal(journalFile{Version: journalVersion, Pending: j.listLocked()})
	if err != nil {
		return fmt.Errorf("autoreply: encode journal: %w", err)
	}
	if err := statefile.WriteAtomic(j.path, b); err != nil {
		return fmt.Errorf("autoreply: save journal: %w", err)
	}
	return nil
}
