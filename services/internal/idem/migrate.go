package idem

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/clawdis/clawdis/services/internal/statefile"
)

// MigratedSuffix is appended to the name of a file of the earlier layout once its contents
// are in the bucket (SPEC §3).
const MigratedSuffix = ".migrated"

// Migrate moves the records of the file an earlier version kept (a JSON object of key →
// Result, rewritten whole on every change) into the bucket, once: the results still within
// the TTL are written, and the file is renamed <path>.migrated. It returns how many were
// written. A missing file is nothing to do; an undecodable one is set aside by statefile
// (its error wraps statefile.ErrCorrupt). When a write fails the file stays, to be migrated
// by the next start.
func (s *Store) Migrate(ctx context.Context, path string) (int, error) {
	var saved map[string]Result
	now := s.cfg.Now()
	if err := statefile.ReadJSON(path, &saved, now, nil); err != nil {
		return 0, fmt.Errorf("migrate idempotency records: %w", err)
	}
	if saved == nil {
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			return 0, nil
		}
	}
	n := 0
	for key, r := range saved {
		if r.At == 0 || now.Sub(time.UnixMilli(r.At)) >= s.cfg.TTL || !r.Remembered() {
			continue
		}
		if err := s.Finish(ctx, key, r); err != nil {
			return n, fmt.Errorf("migrate idempotency records of %s: %w", path, err)
		}
		n++
	}
	if err := os.Rename(path, path+MigratedSuffix); err != nil {
		return n, fmt.Errorf("migrate idempotency records: %w", err)
	}
	return n, nil
}
