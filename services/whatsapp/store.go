package whatsapp

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"go.mau.fi/whatsmeow/proto/waAdv"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/store/sqlstore"
	"google.golang.org/protobuf/proto"

	_ "modernc.org/sqlite" // the pure-Go SQLite driver, registered as "sqlite"
)

// storeFile is the whatsmeow database inside the store directory.
const storeFile = "whatsmeow.db"

// busyTimeoutMs is how long a connection waits for another one's write lock.
const busyTimeoutMs = 10000

// storeDSN is the modernc.org/sqlite DSN of the store in dir: foreign keys on (whatsmeow
// refuses to start without them and relies on cascading deletes), a busy timeout and WAL so
// that its concurrent writers wait instead of failing, and immediate write transactions so a
// deferred transaction never fails to upgrade its lock.
func storeDSN(dir string) (string, error) {
	abs, err := filepath.Abs(filepath.Join(dir, storeFile))
	if err != nil {
		return "", fmt.Errorf("resolve whatsapp store path: %w", err)
	}
	u := url.URL{Path: filepath.ToSlash(abs)}
	q := url.Values{}
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeoutMs))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Set("_txlock", "immediate")
	return "file:" + u.EscapedPath() + "?" + q.Encode(), nil
}

// storeOpener opens a whatsmeow store (openStore, or a Client's openStore).
type storeOpener func(ctx context.Context) (*sqlstore.Container, error)

// openStore creates dir (0700) if needed and opens, upgrading if needed, the whatsmeow store.
func openStore(ctx context.Context, dir string, log *slog.Logger) (*sqlstore.Container, error) {
	if dir == "" {
		return nil, fmt.Errorf("open whatsapp store: no store directory configured")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create whatsapp store dir: %w", err)
	}
	dsn, err := storeDSN(dir)
	if err != nil {
		return nil, err
	}
	c, err := sqlstore.New(ctx, "sqlite", dsn, newWALogger(log, "store"))
	if err != nil {
		return nil, fmt.Errorf("open whatsapp store %s: %w", filepath.Join(dir, storeFile), err)
	}
	// The database holds the account's keys.
	if err := os.Chmod(filepath.Join(dir, storeFile), 0o600); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("restrict whatsapp store permissions: %w", err)
	}
	return c, nil
}

// linkedDevice returns the store's linked device, or nil when nothing is linked.
func linkedDevice(ctx context.Context, c *sqlstore.Container) (*store.Device, error) {
	devices, err := c.GetAllDevices(ctx)
	if err != nil {
		return nil, fmt.Errorf("read whatsapp devices: %w", err)
	}
	for _, d := range devices {
		if d.ID != nil {
			return d, nil
		}
	}
	return nil, nil
}

// authTime is when the device was linked, from the signed device identity WhatsApp issued
// at pairing; zero when unknown.
func authTime(d *store.Device) time.Time {
	if d == nil || d.Account == nil || len(d.Account.GetDetails()) == 0 {
		return time.Time{}
	}
	var details waAdv.ADVDeviceIdentity
	if err := proto.Unmarshal(d.Account.GetDetails(), &details); err != nil || details.GetTimestamp() == 0 {
		return time.Time{}
	}
	return time.Unix(int64(details.GetTimestamp()), 0)
}
