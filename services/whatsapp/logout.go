package whatsapp

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/clawdis/clawdis/services/provider"
	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/store/sqlstore"
	"go.mau.fi/whatsmeow/types/events"
)

// Linked returns the number linked in the store at storeDir, or "" when nothing is linked.
// A store that does not exist yet counts as not linked and is not created (for `clawdis
// doctor`, which may run beside a gateway: the store's busy timeout covers that).
func Linked(ctx context.Context, storeDir string) (string, error) {
	return linkedNumber(ctx, storeDir, func(ctx context.Context) (*sqlstore.Container, error) {
		return openStore(ctx, storeDir, nil)
	})
}

// linkedNumber is Linked with the store opened by open.
func linkedNumber(ctx context.Context, storeDir string, open storeOpener) (string, error) {
	if _, err := os.Stat(filepath.Join(storeDir, storeFile)); errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	container, err := open(ctx)
	if err != nil {
		return "", fmt.Errorf("whatsapp: %w", err)
	}
	defer func() { _ = container.Close() }()
	dev, err := linkedDevice(ctx, container)
	if err != nil || dev == nil {
		return "", err
	}
	return e164(dev.ID.ToNonAD()), nil
}

// LogoutResult says what Logout did.
type LogoutResult struct {
	Number string // the account that was linked
	// Remote is true when WhatsApp confirmed the unlink; false when only the local session
	// was deleted (the phone may still list the device until it is removed there).
	Remote bool
}

// logoutConnectTimeout bounds connecting to tell WhatsApp about the logout.
const logoutConnectTimeout = 15 * time.Second

// Logout unlinks the device: it connects and tells WhatsApp when it can, and otherwise
// deletes the local session. provider.ErrNotLinked when nothing is linked. It must not run
// while a gateway uses the same store.
func Logout(ctx context.Context, storeDir string) (LogoutResult, error) {
	return logout(ctx, storeDir, remoteLogout)
}

// logout is Logout with the remote unlink as a parameter (tests never contact WhatsApp).
func logout(ctx context.Context, storeDir string, remote func(context.Context, *store.Device) bool) (LogoutResult, error) {
	container, err := openStore(ctx, storeDir, nil)
	if err != nil {
		return LogoutResult{}, fmt.Errorf("whatsapp logout: %w", err)
	}
	defer func() { _ = container.Close() }()
	dev, err := linkedDevice(ctx, container)
	if err != nil {
		return LogoutResult{}, fmt.Errorf("whatsapp logout: %w", err)
	}
	if dev == nil {
		return LogoutResult{}, fmt.Errorf("whatsapp logout: %w: nothing to log out", provider.ErrNotLinked)
	}
	res := LogoutResult{Number: e164(dev.ID.ToNonAD())}
	if remote(ctx, dev) {
		res.Remote = true
		return res, nil
	}
	if dev.Deleted { // WhatsApp had already logged it out; whatsmeow deleted it
		return res, nil
	}
	if err := dev.Delete(ctx); err != nil {
		return res, fmt.Errorf("whatsapp logout: delete local session: %w", err)
	}
	return res, nil
}

// remoteLogout connects with dev and asks WhatsApp to remove it (which also deletes the
// local session); false when that was not possible.
func remoteLogout(ctx context.Context, dev *store.Device) bool {
	ctx, cancel := context.WithTimeout(ctx, logoutConnectTimeout)
	defer cancel()
	wa := whatsmeow.NewClient(dev, nil)
	wa.EnableAutoReconnect = false
	wa.BackgroundEventCtx = ctx
	ready := make(chan bool, 1)
	handlerID := wa.AddEventHandler(func(evt any) {
		var ok, final bool
		switch evt.(type) {
		case *events.Connected:
			ok, final = true, true
		case *events.LoggedOut, *events.StreamReplaced, *events.TemporaryBan, *events.ClientOutdated,
			*events.ConnectFailure, *events.Disconnected:
			final = true
		}
		if final {
			select {
			case ready <- ok:
			default:
			}
		}
	})
	defer wa.RemoveEventHandler(handlerID)
	if err := wa.ConnectContext(ctx); err != nil {
		return false
	}
	defer wa.Disconnect()
	select {
	case ok := <-ready:
		if !ok {
			return false
		}
	case <-ctx.Done():
		return false
	}
	return wa.Logout(ctx) == nil
}
