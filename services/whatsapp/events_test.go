package whatsapp

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/clawdis/clawdis/schemas"
	"go.mau.fi/whatsmeow/types/events"
)

func TestClassify(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		name      string
		evt       any
		state     string // "" = no change
		connected bool
		terminal  bool
		transient bool
		unlinked  bool
		err       error
		lastError string // substring of LastError
	}{
		{name: "connected", evt: &events.Connected{}, state: schemas.WebConnected, connected: true},
		{name: "keepalive restored", evt: &events.KeepAliveRestored{}, state: schemas.WebConnected, connected: true},
		{name: "disconnected", evt: &events.Disconnected{}, state: schemas.WebReconnecting, transient: true, err: ErrDisconnected},
		{name: "one keepalive timeout", evt: &events.KeepAliveTimeout{ErrorCount: 1, LastSuccess: now.Add(-30 * time.Second)}},
		{name: "second keepalive timeout", evt: &events.KeepAliveTimeout{ErrorCount: 2, LastSuccess: now.Add(-55 * time.Second)},
			state: schemas.WebReconnecting, transient: true, err: ErrKeepAlive},
		{name: "keepalive silent 60s", evt: &events.KeepAliveTimeout{ErrorCount: 1, LastSuccess: now.Add(-61 * time.Second)},
			state: schemas.WebReconnecting, transient: true, err: ErrKeepAlive},
		{name: "logged out", evt: &events.LoggedOut{Reason: events.ConnectFailureLoggedOut},
			state: schemas.WebLoggedOut, terminal: true, unlinked: true, err: ErrLoggedOut, lastError: "logged out"},
		{name: "stream replaced", evt: &events.StreamReplaced{}, state: schemas.WebReplaced, terminal: true, err: ErrReplaced},
		{name: "temporary ban", evt: &events.TemporaryBan{Code: events.TempBanBlockedByUsers, Expire: time.Hour},
			state: schemas.WebDisabled, terminal: true, err: ErrBanned, lastError: "temporarily banned: 102: too many people blocked you (expires in 1h0m0s)"},
		{name: "client outdated", evt: &events.ClientOutdated{}, state: schemas.WebDisabled, terminal: true,
			err: ErrClientOutdated, lastError: "client outdated: update clawdis"},
		{name: "connect failure 405", evt: &events.ConnectFailure{Reason: events.ConnectFailureClientOutdated},
			state: schemas.WebDisabled, terminal: true, err: ErrClientOutdated, lastError: "client outdated: update clawdis"},
		{name: "connect failure 402", evt: &events.ConnectFailure{Reason: events.ConnectFailureTempBanned},
			state: schemas.WebDisabled, terminal: true, err: ErrBanned, lastError: "temporarily banned: "},
		{name: "connect failure 403", evt: &events.ConnectFailure{Reason: events.ConnectFailureMainDeviceGone},
			state: schemas.WebLoggedOut, terminal: true, unlinked: true, err: ErrLoggedOut},
		{name: "connect failure other", evt: &events.ConnectFailure{Reason: events.ConnectFailureGeneric},
			state: schemas.WebReconnecting, transient: true, err: ErrConnectFailure, lastError: "connect failure: 400"},
		{name: "message", evt: &events.Message{}},
		{name: "receipt", evt: &events.Receipt{}},
		{name: "qr", evt: &events.QR{Codes: []string{"x"}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			o := classify(tt.evt, now)
			if o.State != tt.state || o.Connected != tt.connected || o.Terminal != tt.terminal ||
				o.Transient != tt.transient || o.Unlinked != tt.unlinked {
				t.Fatalf("classify = %+v", o)
			}
			if tt.err == nil && o.Err != nil || tt.err != nil && !errors.Is(o.Err, tt.err) {
				t.Errorf("Err = %v, want %v", o.Err, tt.err)
			}
			if !strings.Contains(o.LastError, tt.lastError) {
				t.Errorf("LastError = %q, want it to contain %q", o.LastError, tt.lastError)
			}
			if (o.Terminal || o.Transient) && o.LastError == "" {
				t.Error("a failure without LastError")
			}
		})
	}
}
