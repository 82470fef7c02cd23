package provider

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestPruneMedia(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	files := map[string]time.Duration{"old.jpg": 8 * 24 * time.Hour, "new.jpg": time.Hour, "sub/old.ogg": 30 * 24 * time.Hour}
	for name, age := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, now.Add(-age), now.Add(-age)); err != nil {
			t.Fatal(err)
		}
	}
	n, err := pruneMedia(dir, now.Add(-DefaultMediaMaxAge))
	if err != nil || n != 2 {
		t.Fatalf("pruneMedia = %d, %v; want 2 removed", n, err)
	}
	for name, gone := range map[string]bool{"old.jpg": true, "sub/old.ogg": true, "new.jpg": false} {
		_, err := os.Stat(filepath.Join(dir, name))
		if gone != os.IsNotExist(err) {
			t.Errorf("%s: stat err %v, want gone=%v", name, err, gone)
		}
	}
	if n, err := pruneMedia(filepath.Join(dir, "missing"), now); err != nil || n != 0 {
		t.Errorf("missing dir: %d, %v", n, err)
	}
}
