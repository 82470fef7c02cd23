package idem

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/clawdis/clawdis/bus/bustest"
	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/services/internal/jsstore"
	"github.com/clawdis/clawdis/services/internal/statefile"
)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func okResult(v string) Result {
	return Result{OK: true, Payload: json.RawMessage(`"` + v + `"`)}
}

// bucket returns the idempotency bucket on nc.
func bucket(t *testing.T, nc *nats.Conn) jetstream.KeyValue {
	t.Helper()
	kv, err := jsstore.Idem(t.Context(), nc, jsstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

func newStore(t *testing.T, kv jetstream.KeyValue, cfg Config) *Store {
	t.Helper()
	if cfg.Prefix == "" {
		cfg.Prefix = "test"
	}
	s, err := New(kv, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestDoRunsOnceForConcurrentCallers(t *testing.T) {
	s := newStore(t, bucket(t, bustest.New(t).Conn("idem")), Config{})
	var runs atomic.Int32
	release := make(chan struct{})
	started := make(chan struct{})
	var wg sync.WaitGroup
	results := make([]Result, 8)
	for i := range results {
		wg.Go(func() {
			r, err := s.Do(context.Background(), "k", func() Result {
				if runs.Add(1) == 1 {
					close(started)
				}
				<-release
				return okResult("one")
			})
			if err != nil {
				t.Error(err)
			}
			results[i] = r
		})
	}
	<-started
	close(release)
	wg.Wait()
	if n := runs.Load(); n != 1 {
		t.Fatalf("fn ran %d times, want 1", n)
	}
	for i, r := range results {
		if !r.OK || string(r.Payload) != `"one"` {
			t.Errorf("caller %d got %+v", i, r)
		}
	}
}

func TestRetryableFailureNotRemembered(t *testing.T) {
	s := newStore(t, bucket(t, bustest.New(t).Conn("idem")), Config{})
	ctx := t.Context()
	fail := Result{Error: wire.Unavailable(true, "try later")}
	if r, _ := s.Do(ctx, "k", func() Result { return fail }); r.OK {
		t.Fatal("want the failure")
	}
	if _, found, err := s.Get(ctx, "k"); found || err != nil {
		t.Fatalf("a retryable failure was remembered (%v)", err)
	}
	r, _ := s.Do(ctx, "k", func() Result { return okResult("second") })
	if string(r.Payload) != `"second"` {
		t.Fatalf("retry did not run: %+v", r)
	}
	final := Result{Error: &wire.Error{Code: wire.CodeInvalidRequest, Message: "bad"}}
	_, _ = s.Do(ctx, "k2", func() Result { return final })
	if got, found, err := s.Get(ctx, "k2"); !found || err != nil || got.Error.Message != "bad" {
		t.Fatalf("a non-retryable failure must be remembered, got %+v %v %v", got, found, err)
	}
}

// TestRememberedAcrossRestartOneWriteEach: a result survives a restart of the bus on the same
// store and a new Store; each finished request is one write to the bucket; a result older
// than the TTL is not remembered; keys of any length and alphabet work.
func TestRememberedAcrossRestartOneWriteEach(t *testing.T) {
	dir := t.TempDir()
	c := &clock{now: time.Now()}
	b := bustest.NewAt(t, dir)
	kv := bucket(t, b.Conn("idem"))
	s := newStore(t, kv, Config{Now: c.Now})
	ctx := t.Context()
	keys := []string{"k", "a key with spaces.and*dots>", string(make([]byte, 300))}
	for _, k := range keys {
		if err := s.Finish(ctx, k, okResult("kept")); err != nil {
			t.Fatal(err)
		}
	}
	st, err := kv.Status(ctx)
	if err != nil || st.Values() != uint64(len(keys)) {
		t.Fatalf("bucket holds %d values (%v), want one write per finished request (%d)", st.Values(), err, len(keys))
	}
	b.Shutdown()

	again := newStore(t, bucket(t, bustest.NewAt(t, dir).Conn("idem")), Config{Now: c.Now})
	for _, k := range keys {
		if st, r, _, err := again.Begin(ctx, k); err != nil || st != Done || string(r.Payload) != `"kept"` {
			t.Fatalf("%q after the restart: state %v result %+v err %v", k, st, r, err)
		}
	}
	c.add(5*time.Minute + time.Millisecond)
	if _, found, _ := again.Get(ctx, "k"); found {
		t.Fatal("result still remembered after the TTL")
	}
	if st, _, _, err := again.Begin(ctx, "k"); st != Owner || err != nil {
		t.Fatalf("expired key: state %v (%v), want Owner", st, err)
	}
}

// TestStorageErrorsAreRetryableAndNotRemembered: with the bucket unreachable, Do does not
// run fn and returns ErrStorage; a Finish that cannot write returns ErrStorage and the key
// is free again for a retry.
func TestStorageErrorsAreRetryableAndNotRemembered(t *testing.T) {
	b := bustest.New(t)
	nc := b.Conn("idem")
	s := newStore(t, bucket(t, nc), Config{})
	ctx := t.Context()
	st, _, _, err := s.Begin(ctx, "k")
	if st != Owner || err != nil {
		t.Fatalf("Begin = %v %v", st, err)
	}
	nc.Close()
	if err := s.Finish(ctx, "k", okResult("lost")); !errors.Is(err, ErrStorage) {
		t.Fatalf("Finish on a closed connection = %v, want ErrStorage", err)
	}
	ran := false
	if _, err := s.Do(ctx, "k", func() Result { ran = true; return okResult("x") }); !errors.Is(err, ErrStorage) || ran {
		t.Fatalf("Do on a closed connection = %v (ran %v), want ErrStorage without running", err, ran)
	}
	fresh := newStore(t, bucket(t, b.Conn("idem2")), Config{})
	if _, found, err := fresh.Get(ctx, "k"); found || err != nil {
		t.Fatalf("a result that could not be written is remembered (%v)", err)
	}
	if r, err := fresh.Do(ctx, "k", func() Result { return okResult("retry") }); err != nil || string(r.Payload) != `"retry"` {
		t.Fatalf("retry = %+v %v", r, err)
	}
}

// TestMigrate: an earlier version's records file is read once into the bucket (fresh,
// remembered results only) and renamed *.migrated; a corrupt one is set aside.
func TestMigrate(t *testing.T) {
	s := newStore(t, bucket(t, bustest.New(t).Conn("idem")), Config{})
	ctx := t.Context()
	dir := t.TempDir()
	path := filepath.Join(dir, "agent.json")
	now := time.Now().UnixMilli()
	old := map[string]Result{
		"fresh":     {OK: true, Payload: json.RawMessage(`"f"`), At: now - 1000},
		"expired":   {OK: true, Payload: json.RawMessage(`"e"`), At: now - 10*60*1000},
		"retryable": {Error: wire.Unavailable(true, "later"), At: now},
	}
	b, _ := json.Marshal(old)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	n, err := s.Migrate(ctx, path)
	if err != nil || n != 1 {
		t.Fatalf("Migrate = %d %v, want 1 record", n, err)
	}
	if r, found, _ := s.Get(ctx, "fresh"); !found || string(r.Payload) != `"f"` {
		t.Fatalf("fresh after migration: %+v %v", r, found)
	}
	for _, k := range []string{"expired", "retryable"} {
		if _, found, _ := s.Get(ctx, k); found {
			t.Errorf("%s migrated", k)
		}
	}
	if _, err := os.Stat(path + MigratedSuffix); err != nil {
		t.Fatalf("not renamed: %v", err)
	}
	if n, err := s.Migrate(ctx, path); n != 0 || err != nil {
		t.Fatalf("second Migrate = %d %v, want nothing to do", n, err)
	}
	if err := os.WriteFile(path, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Migrate(ctx, path); !errors.Is(err, statefile.ErrCorrupt) {
		t.Fatalf("Migrate of a corrupt file = %v, want ErrCorrupt", err)
	}
	if m, _ := filepath.Glob(path + ".corrupt-*"); len(m) != 1 {
		t.Fatalf("corrupt file not set aside: %v", m)
	}
}

func TestDoWaitHonoursContext(t *testing.T) {
	s := newStore(t, bucket(t, bustest.New(t).Conn("idem")), Config{})
	if st, _, _, _ := s.Begin(t.Context(), "k"); st != Owner {
		t.Fatal("want Owner")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Do(ctx, "k", func() Result { t.Error("ran twice"); return Result{} }); !errors.Is(err, context.Canceled) {
		t.Fatalf("Do = %v, want context.Canceled", err)
	}
}

// TestFinishOutlastsAnUnavailableBucket: a result whose write fails while the bucket is
// unavailable (here its stream is gone for a moment, as while a cluster elects a new
// leader) is written once it is back, not forgotten: a repeat must not run again.
func TestFinishOutlastsAnUnavailableBucket(t *testing.T) {
	b := bustest.New(t)
	nc := b.Conn("idem")
	s := newStore(t, bucket(t, nc), Config{WriteFor: 10 * time.Second})
	ctx := t.Context()
	if st, _, _, err := s.Begin(ctx, "k"); st != Owner || err != nil {
		t.Fatalf("Begin = %v %v", st, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := js.DeleteKeyValue(ctx, jsstore.IdemBucket); err != nil {
		t.Fatal(err)
	}
	admin := b.Conn("admin")
	back := time.AfterFunc(1500*time.Millisecond, func() { // the outage, longer than the client library's own publish retries
		if _, err := jsstore.Idem(context.Background(), admin, jsstore.Config{}); err != nil {
			t.Errorf("bucket back: %v", err)
		}
	})
	defer back.Stop()
	if err := s.Finish(ctx, "k", okResult("kept")); err != nil {
		t.Fatalf("Finish across the outage = %v", err)
	}
	fresh := newStore(t, bucket(t, b.Conn("idem2")), Config{})
	if r, found, err := fresh.Get(ctx, "k"); !found || err != nil || string(r.Payload) != `"kept"` {
		t.Fatalf("after the outage: %+v found %v (%v), want the result remembered", r, found, err)
	}
}
