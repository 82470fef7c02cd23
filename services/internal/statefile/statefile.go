// Package statefile reads and writes the small JSON state files that services own (the
// session store; the earlier version's idempotency records and auto-reply journal, read once
// for their migration into JetStream): writes replace the file atomically, and a file that
// cannot be decoded is set aside for inspection, never overwritten.
package statefile

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// ErrCorrupt is wrapped by ReadJSON's error for a file it had to set aside.
var ErrCorrupt = errors.New("state file unreadable")

// WriteAtomic writes b to path through a temp file in the same directory (mode 0600,
// fsynced) and a rename, then fsyncs the directory (best effort: not every file system
// supports it). The directory is created (0700) when missing.
func WriteAtomic(path string, b []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*") // mode 0600
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}

// ReadJSON decodes the file at path into v. A missing file leaves v alone and returns nil.
// When the contents do not decode, or check (if not nil) rejects them, the file is renamed
// to <path>.corrupt-<unix seconds of now> and the error wraps ErrCorrupt, naming both paths;
// v is then in an unspecified state and the caller starts empty.
func ReadJSON(path string, v any, now time.Time, check func() error) error {
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("read %s: %w", path, err)
	}
	err = json.Unmarshal(b, v)
	if err == nil && check != nil {
		err = check()
	}
	if err == nil {
		return nil
	}
	aside := fmt.Sprintf("%s.corrupt-%d", path, now.Unix())
	if rerr := os.Rename(path, aside); rerr != nil {
		return fmt.Errorf("%w: %s: %w (and setting it aside failed: %w)", ErrCorrupt, path, err, rerr)
	}
	return fmt.Errorf("%w: %s (moved to %s): %w", ErrCorrupt, path, aside, err)
}
