// Package idem remembers the results of idempotent requests (SPEC §6.5): a repeat of a
// finished request gets the remembered result, a repeat of a running one waits for it, and
// nothing runs twice. Results are kept for a TTL (5 minutes by default) and persisted to a
// JSON file so they survive a restart. Retryable failures are not remembered.
package idem

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/services/internal/statefile"
	"github.com/clawdis/clawdis/services/internal/ttlmap"
)

// Result is a remembered outcome: OK with Payload, or Error (with an optional Payload).
type Result struct {
	OK      bool            `json:"ok"`
	Payload json.RawMessage `json:"payload,omitempty"`
	Error   *wire.Error     `json:"error,omitempty"`
	At      int64           `json:"at"` // unix ms when it finished
}

// Remembered reports whether r is worth remembering: everything but retryable failures.
func (r Result) Remembered() bool { return r.OK || r.Error == nil || !r.Error.Retryable }

// Config configures a Store; zero values work.
type Config struct {
	// Path of the persisted records; empty keeps them in memory only.
	Path string
	// TTL is how long a result is remembered; default 5 minutes.
	TTL time.Duration
	// MaxKeys caps the records kept (oldest dropped first); default 10000, never below 1000.
	MaxKeys int
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Store holds remembered results and the runs in progress.
type Store struct {
	cfg     Config
	mu      sync.Mutex
	done    *ttlmap.Map[string, Result] // stamped with Result.At
	running map[string]chan struct{}
}

// ErrCorrupt is wrapped by Open's error when the records file cannot be decoded.
var ErrCorrupt = statefile.ErrCorrupt

// Open loads the records at cfg.Path (a missing file is empty). A corrupt file is moved
// aside to <path>.corrupt-<unix> so that it is kept for inspection, and Open starts empty
// with an error wrapping ErrCorrupt that the caller should log.
func Open(cfg Config) (*Store, error) {
	if cfg.TTL <= 0 {
		cfg.TTL = 5 * time.Minute
	}
	if cfg.MaxKeys <= 0 {
		cfg.MaxKeys = 10000
	}
	cfg.MaxKeys = max(cfg.MaxKeys, 1000)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Store{cfg: cfg, done: ttlmap.New[string, Result](cfg.TTL, cfg.MaxKeys), running: map[string]chan struct{}{}}
	if cfg.Path == "" {
		return s, nil
	}
	var saved map[string]Result
	if err := statefile.ReadJSON(cfg.Path, &saved, cfg.Now(), nil); err != nil {
		if !errors.Is(err, ErrCorrupt) {
			return nil, fmt.Errorf("idem: %w", err)
		}
		return s, fmt.Errorf("idempotency records: %w", err)
	}
	keys := slices.SortedFunc(maps.Keys(saved), func(a, b string) int { return cmp.Compare(saved[a].At, saved[b].At) })
	for _, k := range keys {
		s.done.Put(k, saved[k], time.UnixMilli(saved[k].At))
	}
	s.done.Expire(cfg.Now())
	return s, nil
}

// Get returns the remembered result of key.
func (s *Store) Get(key string) (Result, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.done.Get(key, s.cfg.Now())
}

// Begin claims key. When a result is remembered it returns it with state Done. When another
// caller runs key it returns Running and a channel closed when that run ends (then call
// Get, or Begin again when the run was not remembered). Otherwise the caller owns the run
// (state Owner) and must call Finish exactly once.
func (s *Store) Begin(key string) (State, Result, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.done.Get(key, s.cfg.Now()); ok {
		return Done, r, nil
	}
	if ch, ok := s.running[key]; ok {
		return Running, Result{}, ch
	}
	s.running[key] = make(chan struct{})
	return Owner, Result{}, nil
}

// State is what Begin found for a key.
type State int

// States returned by Begin.
const (
	Owner State = iota
	Running
	Done
)

// Finish ends the owner's run of key: the result is remembered (unless it is a retryable
// failure) and persisted, and waiters are released. A persistence failure is returned but
// the result stays remembered in memory.
func (s *Store) Finish(key string, r Result) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ch, ok := s.running[key]; ok {
		close(ch)
		delete(s.running, key)
	}
	if !r.Remembered() {
		return nil
	}
	if r.At == 0 {
		r.At = s.cfg.Now().UnixMilli()
	}
	s.done.Put(key, r, time.UnixMilli(r.At))
	return s.saveLocked()
}

// Do runs fn once per key: a remembered result is returned at once, a running one is waited
// for (until ctx ends), else fn runs and its result is remembered.
func (s *Store) Do(ctx context.Context, key string, fn func() Result) (Result, error) {
	for {
		st, r, wait := s.Begin(key)
		switch st {
		case Done:
			return r, nil
		case Owner:
			r := fn()
			return r, s.Finish(key, r)
		}
		select {
		case <-wait:
		case <-ctx.Done():
			return Result{}, ctx.Err()
		}
	}
}

func (s *Store) saveLocked() error {
	if s.cfg.Path == "" {
		return nil
	}
	s.done.Expire(s.cfg.Now())
	b, err := json.Marshal(maps.Collect(s.done.All()))
	if err != nil {
		return fmt.Errorf("idem: encode: %w", err)
	}
	return statefile.WriteAtomic(s.cfg.Path, b)
}
