package idem

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clawdis/clawdis/bus/wire"
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

func TestDoRunsOnceForConcurrentCallers(t *testing.T) {
	s, err := Open(Config{Path: filepath.Join(t.TempDir(), "r.json")})
	if err != nil {
		t.Fatal(err)
	}
	var runs atomic.Int32
	release := make(chan struct{})
	started := make(chan struct{})
	var wg sync.WaitGroup
	results := make([]Result, 8)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
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
		}()
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
	s, _ := Open(Config{})
	fail := Result{Error: wire.Unavailable(true, "try later")}
	if r, _ := s.Do(context.Background(), "k", func() Result { return fail }); r.OK {
		t.Fatal("want the failure")
	}
	if _, ok := s.Get("k"); ok {
		t.Fatal("a retryable failure was remembered")
	}
	r, _ := s.Do(context.Background(), "k", func() Result { return okResult("second") })
	if string(r.Payload) != `"second"` {
		t.Fatalf("retry did not run: %+v", r)
	}
	final := Result{Error: &wire.Error{Code: wire.CodeInvalidRequest, Message: "bad"}}
	_, _ = s.Do(context.Background(), "k2", func() Result { return final })
	if got, ok := s.Get("k2"); !ok || got.Error.Message != "bad" {
		t.Fatalf("a non-retryable failure must be remembered, got %+v %v", got, ok)
	}
}

func TestPersistedAndExpires(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "r.json")
	c := &clock{now: time.Unix(1_700_000_000, 0)}
	s, err := Open(Config{Path: path, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Finish("k", okResult("kept")); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("records file: %v %v", st, err)
	}
	again, err := Open(Config{Path: path, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	if st, r, _ := again.Begin("k"); st != Done || string(r.Payload) != `"kept"` {
		t.Fatalf("after reopen: state %v result %+v", st, r)
	}
	c.add(5*time.Minute + time.Millisecond)
	if _, ok := again.Get("k"); ok {
		t.Fatal("result still remembered after the TTL")
	}
	if st, _, _ := again.Begin("k"); st != Owner {
		t.Fatalf("expired key: state %v, want Owner", st)
	}
}

func TestMaxKeysDropsOldest(t *testing.T) {
	c := &clock{now: time.Unix(1_700_000_000, 0)}
	s, _ := Open(Config{MaxKeys: 1, Now: c.Now}) // raised to 1000
	for i := range 1001 {
		c.add(time.Millisecond)
		_ = s.Finish("k"+strings.Repeat("x", i), okResult("v"))
	}
	if _, ok := s.Get("k"); ok {
		t.Fatal("the oldest key survived past the cap")
	}
	if _, ok := s.Get("kx"); !ok {
		t.Fatal("the second oldest key was dropped; the cap is 1000")
	}
}

func TestCorruptFileMovedAside(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.json")
	if err := os.WriteFile(path, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Open(Config{Path: path})
	if !errors.Is(err, ErrCorrupt) || s == nil {
		t.Fatalf("Open = %v, %v; want a store and ErrCorrupt", s, err)
	}
	matches, _ := filepath.Glob(path + ".corrupt-*")
	if len(matches) != 1 {
		t.Fatalf("corrupt file not kept aside: %v", matches)
	}
	if b, _ := os.ReadFile(matches[0]); string(b) != "{not json" {
		t.Fatalf("aside file content %q", b)
	}
}

func TestDoWaitHonoursContext(t *testing.T) {
	s, _ := Open(Config{})
	if st, _, _ := s.Begin("k"); st != Owner {
		t.Fatal("want Owner")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Do(ctx, "k", func() Result { t.Error("ran twice"); return Result{} }); !errors.Is(err, context.Canceled) {
		t.Fatalf("Do = %v, want context.Canceled", err)
	}
}
