package provider

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// DefaultMediaMaxAge is how long downloaded inbound media is kept (SPEC §3).
const DefaultMediaMaxAge = 7 * 24 * time.Hour

// mediaPruneInterval is how often the media directory is swept.
const mediaPruneInterval = time.Hour

// pruneMedia removes regular files under dir last modified before cutoff and returns how
// many it removed. A missing dir is not an error.
func pruneMedia(dir string, cutoff time.Time) (int, error) {
	removed := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil // vanished meanwhile
		}
		if info.ModTime().Before(cutoff) {
			if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			removed++
		}
		return nil
	})
	return removed, err
}

// mediaLoop sweeps MediaDir at start and every hour until ctx ends.
func (c *Core) mediaLoop(ctx context.Context) {
	for {
		n, err := pruneMedia(c.cfg.MediaDir, c.cfg.Now().Add(-c.cfg.MediaMaxAge))
		switch {
		case err != nil:
			c.log.Warn("pruning inbound media failed", "dir", c.cfg.MediaDir, "err", err)
		case n > 0:
			c.log.Info("pruned inbound media", "dir", c.cfg.MediaDir, "files", n)
		}
		if c.cfg.Sleep(ctx, mediaPruneInterval) != nil {
			return
		}
	}
}
