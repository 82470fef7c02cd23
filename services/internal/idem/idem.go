// Package idem remembers the results of idempotent requests (SPEC §6.5): a repeat of a
// finished request gets the remembered result, a repeat of a running one waits for it, and
// nothing runs twice. Finished results live in the JetStream key-value bucket of
// idempotency records (jsstore.IdemBucket, 5-minute TTL, one value per key): one write per
// finished request, so they survive a restart and are shared by every copy of a service.
// The runs in progress are known in-process. Retryable failures are not remembered, and a
// failure to read or write the bucket is never taken for a result: it is returned as an
// error wrapping ErrStorage, which callers answer UNAVAILABLE retryable.
package idem

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/clawdis/clawdis/bus/subject"
	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/services/internal/backoff"
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

// ErrStorage is wrapped by every failure to read or write the records.
var ErrStorage = errors.New("idempotency records unavailable")

// Config configures a Store.
type Config struct {
	// Prefix names the records of one kind in the shared bucket ("agent",
	// "send.whatsapp"): a key k is stored as <Prefix>.<token of k>. Required.
	Prefix string
	// TTL is how long a result counts as remembered; the bucket drops it after its own TTL
	// anyway. Default 5 minutes.
	TTL time.Duration
	// Timeout bounds each read or write of the bucket. Default 5s.
	Timeout time.Duration
	// WriteFor is how long Finish keeps trying to remember a result: a write that fails
	// while the bucket's stream elects a new leader (a bus node lost) would otherwise let a
	// repeat run, or send, a second time. Default 20s.
	WriteFor time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Store holds the runs in progress and reads and writes the remembered results.
type Store struct {
	kv      jetstream.KeyValue
	cfg     Config
	mu      sync.Mutex
	running map[string]chan struct{}
}

// New returns a store keeping its results in kv (the bucket jsstore.Idem returns). It does
// no I/O.
func New(kv jetstream.KeyValue, cfg Config) (*Store, error) {
	if kv == nil {
		return nil, errors.New("idem: nil bucket")
	}
	if cfg.Prefix == "" || strings.ContainsAny(cfg.Prefix, " *>") {
		return nil, fmt.Errorf("idem: invalid prefix %q", cfg.Prefix)
	}
	if cfg.TTL <= 0 {
		cfg.TTL = 5 * time.Minute
	}
	if cfg.WriteFor <= 0 {
		cfg.WriteFor = 20 * time.Second
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Store{kv: kv, cfg: cfg, running: map[string]chan struct{}{}}, nil
}

// kvKey is the bucket key of key: the prefix and the id's subject token, whose hashed form
// starts with '~', which keys may not hold ('=' is in neither form's alphabet).
func (s *Store) kvKey(key string) string {
	return s.cfg.Prefix + "." + strings.Replace(subject.IDToken(key), "~", "=", 1)
}

// Get returns the remembered result of key. found is false when there is none (never
// remembered, expired); err wraps ErrStorage when the bucket could not be read.
func (s *Store) Get(ctx context.Context, key string) (r Result, found bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	e, err := s.kv.Get(ctx, s.kvKey(key))
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound), errors.Is(err, jetstream.ErrKeyDeleted):
		return Result{}, false, nil
	case err != nil:
		return Result{}, false, fmt.Errorf("%w: read %s: %w", ErrStorage, key, err)
	}
	if err := json.Unmarshal(e.Value(), &r); err != nil {
		return Result{}, false, fmt.Errorf("%w: decode %s: %w", ErrStorage, key, err)
	}
	if s.cfg.Now().Sub(time.UnixMilli(r.At)) >= s.cfg.TTL {
		return Result{}, false, nil
	}
	return r, true, nil
}

// State is what Begin found for a key.
type State int

// States returned by Begin.
const (
	Owner State = iota
	Running
	Done
)

// Begin claims key. When a result is remembered it returns it with state Done. When another
// caller in this process runs key it returns Running and a channel closed when that run ends
// (then call Begin again). Otherwise the caller owns the run (state Owner) and must call
// Finish exactly once. An error (wrapping ErrStorage) claims nothing.
func (s *Store) Begin(ctx context.Context, key string) (State, Result, <-chan struct{}, error) {
	s.mu.Lock()
	if ch, ok := s.running[key]; ok {
		s.mu.Unlock()
		return Running, Result{}, ch, nil
	}
	// Claimed while the bucket is read, so that a concurrent Begin waits instead of
	// reading too.
	s.running[key] = make(chan struct{})
	s.mu.Unlock()
	r, found, err := s.Get(ctx, key)
	if err != nil || found {
		s.release(key)
		if err != nil {
			return Owner, Result{}, nil, err
		}
		return Done, r, nil, nil
	}
	return Owner, Result{}, nil, nil
}

// release ends the claim on key and wakes its waiters.
func (s *Store) release(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ch, ok := s.running[key]; ok {
		close(ch)
		delete(s.running, key)
	}
}

// Finish ends the owner's run of key: the result is remembered (unless it is a retryable
// failure) with one write, tried again for up to WriteFor while it fails, and waiters are
// released. A write that never succeeds is returned (wrapping ErrStorage); the result is
// then not remembered.
func (s *Store) Finish(ctx context.Context, key string, r Result) error {
	defer s.release(key)
	if !r.Remembered() {
		return nil
	}
	if r.At == 0 {
		r.At = s.cfg.Now().UnixMilli()
	}
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("idem: encode %s: %w", key, err)
	}
	deadline := time.Now().Add(s.cfg.WriteFor)
	for attempt := 0; ; attempt++ {
		wctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
		_, err := s.kv.Put(wctx, s.kvKey(key), b) // the same value again is harmless
		cancel()
		if err == nil {
			return nil
		}
		wait := writeRetry.Delay(attempt+1, nil)
		if ctx.Err() != nil || errors.Is(err, nats.ErrConnectionClosed) || time.Now().Add(wait).After(deadline) {
			return fmt.Errorf("%w: write %s: %w", ErrStorage, key, err)
		}
		if backoff.Sleep(ctx, wait) != nil {
			return fmt.Errorf("%w: write %s: %w", ErrStorage, key, err)
		}
	}
}

// writeRetry spaces Finish's attempts: a leader election takes a few seconds.
var writeRetry = backoff.Policy{Initial: 100 * time.Millisecond, Max: 2 * time.Second, Jitter: 0.2}

// Do runs fn once per key: a remembered result is returned at once, a running one is waited
// for (until ctx ends), else fn runs and its result is remembered. The error is ctx's, or
// wraps ErrStorage: when the records cannot be read fn does not run; when the result cannot
// be written it is returned with the error.
func (s *Store) Do(ctx context.Context, key string, fn func() Result) (Result, error) {
	for {
		st, r, wait, err := s.Begin(ctx, key)
		switch {
		case err != nil:
			return Result{}, err
		case st == Done:
			return r, nil
		case st == Owner:
			r := fn()
			// What fn did happened: remember it even when the caller stopped waiting.
			return r, s.Finish(context.WithoutCancel(ctx), key, r)
		}
		select {
		case <-wait:
		case <-ctx.Done():
			return Result{}, ctx.Err()
		}
	}
}
