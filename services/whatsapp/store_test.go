package whatsapp

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clawdis/clawdis/schemas"
	"github.com/clawdis/clawdis/services/provider"
)

func TestStoreOpensUnlinkedAndSurvivesReopen(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "state", "whatsapp")
	for round := 1; round <= 2; round++ {
		c, err := openStore(ctx, dir, nil)
		if err != nil {
			t.Fatalf("round %d: openStore: %v", round, err)
		}
		dev, err := linkedDevice(ctx, c)
		if err != nil {
			t.Fatalf("round %d: linkedDevice: %v", round, err)
		}
		if dev != nil {
			t.Fatalf("round %d: fresh store reports a linked device %v", round, dev.ID)
		}
		if err := c.Close(); err != nil {
			t.Fatalf("round %d: close: %v", round, err)
		}
	}
	st, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if perm := st.Mode().Perm(); perm != 0o700 {
		t.Errorf("store dir mode %v, want 0700", perm)
	}
	st, err = os.Stat(filepath.Join(dir, storeFile))
	if err != nil {
		t.Fatal(err)
	}
	if perm := st.Mode().Perm(); perm != 0o600 {
		t.Errorf("store file mode %v, want 0600", perm)
	}
}

func TestStoreDSNAppliesPragmas(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "dir with space?#")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	dsn, err := storeDSN(dir)
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	for _, tt := range []struct{ pragma, want string }{
		{"foreign_keys", "1"},
		{"journal_mode", "wal"},
		{"busy_timeout", "10000"},
	} {
		var got string
		if err := db.QueryRow("PRAGMA " + tt.pragma).Scan(&got); err != nil {
			t.Fatalf("PRAGMA %s: %v", tt.pragma, err)
		}
		if strings.ToLower(got) != tt.want {
			t.Errorf("PRAGMA %s = %q, want %q", tt.pragma, got, tt.want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, storeFile)); err != nil {
		t.Errorf("database not created at the escaped path: %v", err)
	}
}

func TestLinkedDeviceAndAuthTime(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	pairedAt := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	linkTestDevice(t, dir, "436641234567", pairedAt)
	c, err := openStore(ctx, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	dev, err := linkedDevice(ctx, c)
	if err != nil || dev == nil {
		t.Fatalf("linkedDevice = %v, %v; want the stored device", dev, err)
	}
	if got := e164(dev.ID.ToNonAD()); got != "+436641234567" {
		t.Errorf("number %q", got)
	}
	if got := authTime(dev); !got.Equal(pairedAt) {
		t.Errorf("authTime %v, want %v", got, pairedAt)
	}
}

func TestRunUnlinkedIsTerminal(t *testing.T) {
	dir := t.TempDir()
	c, err := New(Config{StoreDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	// Before Run has looked at the store, a send is "not connected" (retryable).
	if _, err := c.Send(context.Background(), provider.Outbound{To: "+436641234567", Text: "hi"}); !errors.Is(err, provider.ErrNotConnected) {
		t.Errorf("Send before Run: %v, want ErrNotConnected", err)
	}
	for round := 1; round <= 2; round++ { // the second Run reopens the same store
		sink := newFakeSink()
		err = c.Run(context.Background(), sink)
		var term *provider.TerminalError
		if !errors.As(err, &term) || term.State != schemas.WebUnlinked || !errors.Is(err, provider.ErrNotLinked) {
			t.Fatalf("round %d: Run = %v, want a terminal unlinked error", round, err)
		}
		states, _ := sink.snapshot()
		if len(states) != 1 || states[0].State != schemas.WebUnlinked || states[0].Linked || states[0].Connected {
			t.Fatalf("round %d: states %+v, want one unlinked state", round, states)
		}
	}
	if _, err := c.Send(context.Background(), provider.Outbound{To: "+436641234567", Text: "hi"}); !errors.Is(err, provider.ErrNotLinked) {
		t.Errorf("Send when unlinked: %v, want ErrNotLinked", err)
	}
	if err := c.Typing(context.Background(), "+436641234567", true); !errors.Is(err, provider.ErrNotLinked) {
		t.Errorf("Typing when unlinked: %v, want ErrNotLinked", err)
	}
}

func TestRunWithoutStoreDirIsTerminal(t *testing.T) {
	c, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	sink := newFakeSink()
	err = c.Run(context.Background(), sink)
	var term *provider.TerminalError
	if !errors.As(err, &term) || term.State != schemas.WebDisabled || !errors.Is(err, provider.ErrNotConfigured) {
		t.Fatalf("Run = %v, want a terminal not-configured error", err)
	}
}
