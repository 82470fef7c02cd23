package whatsapp

import (
	"errors"
	"fmt"
	"time"

	"github.com/clawdis/clawdis/schemas"
	"go.mau.fi/whatsmeow/types/events"
)

// Errors Run ends with. The terminal ones come wrapped in a *provider.TerminalError.
var (
	// ErrLoggedOut: the phone (or WhatsApp) removed this linked device; link again.
	ErrLoggedOut = errors.New("logged out")
	// ErrReplaced: another client connected with the same session.
	ErrReplaced = errors.New("replaced by another WhatsApp Web session using the same credentials")
	// ErrBanned: the account is temporarily banned.
	ErrBanned = errors.New("temporarily banned")
	// ErrClientOutdated: WhatsApp rejects this whatsmeow version (405).
	ErrClientOutdated = errors.New("client outdated: update clawdis")
	// ErrDisconnected: the connection dropped; the supervisor reconnects.
	ErrDisconnected = errors.New("whatsapp connection lost")
	// ErrKeepAlive: keepalive pings kept failing; the connection is dropped to reconnect.
	ErrKeepAlive = errors.New("whatsapp keepalive timed out")
	// ErrConnectFailure: WhatsApp refused the connection for a reason retrying may fix.
	ErrConnectFailure = errors.New("whatsapp connect failure")
)

// keepAliveMaxFailures and keepAliveMaxSilence decide when failing keepalives mean a dead
// connection: this many timeouts in a row, or this long since the last answered ping.
const (
	keepAliveMaxFailures = 2
	keepAliveMaxSilence  = 60 * time.Second
)

// outcome is what one whatsmeow event means for the provider.
type outcome struct {
	State     string // new provider state; "" leaves it unchanged
	Connected bool   // the connection is up (only meaningful with State)
	Unlinked  bool   // the credentials are gone (logged out)
	LastError string // reported with the state
	Terminal  bool   // Run stops with a *provider.TerminalError{State, Err}
	Transient bool   // Run stops with Err and the supervisor retries
	Err       error
}

// classify maps a whatsmeow connection event to its outcome. Events that do not concern
// the connection map to the zero outcome. It is pure: now is only compared with the
// keepalive timestamps the event carries.
func classify(evt any, now time.Time) outcome {
	switch e := evt.(type) {
	case *events.Connected:
		return outcome{State: schemas.WebConnected, Connected: true}
	case *events.KeepAliveRestored:
		return outcome{State: schemas.WebConnected, Connected: true}
	case *events.Disconnected:
		return transient(ErrDisconnected)
	case *events.KeepAliveTimeout:
		silent := !e.LastSuccess.IsZero() && now.Sub(e.LastSuccess) >= keepAliveMaxSilence
		if e.ErrorCount >= keepAliveMaxFailures || silent {
			return transient(ErrKeepAlive)
		}
		return outcome{}
	case *events.LoggedOut:
		return loggedOut(e.Reason.String())
	case *events.StreamReplaced:
		return terminal(schemas.WebReplaced, ErrReplaced, ErrReplaced.Error())
	case *events.TemporaryBan:
		detail := e.Code.String()
		if e.Expire > 0 {
			detail += " (expires in " + e.Expire.String() + ")"
		}
		return banned(detail)
	case *events.ClientOutdated:
		return outdated()
	case *events.ConnectFailure:
		switch {
		case e.Reason.IsLoggedOut():
			return loggedOut(e.Reason.String())
		case e.Reason == events.ConnectFailureTempBanned:
			return banned(e.Reason.String())
		case e.Reason == events.ConnectFailureClientOutdated:
			return outdated()
		default:
			o := transient(ErrConnectFailure)
			o.LastError = "connect failure: " + e.Reason.String()
			return o
		}
	case *events.CATRefreshError:
		return transient(ErrConnectFailure)
	}
	return outcome{}
}

func transient(err error) outcome {
	return outcome{State: schemas.WebReconnecting, LastError: err.Error(), Transient: true, Err: err}
}

func terminal(state string, err error, lastError string) outcome {
	return outcome{State: state, LastError: lastError, Terminal: true, Err: err}
}

func loggedOut(reason string) outcome {
	err := fmt.Errorf("%w (%s)", ErrLoggedOut, reason)
	o := terminal(schemas.WebLoggedOut, err, err.Error()+"; run `clawdis login` to link again")
	o.Unlinked = true
	return o
}

func banned(detail string) outcome {
	err := fmt.Errorf("%w: %s", ErrBanned, detail)
	return terminal(schemas.WebDisabled, err, err.Error())
}

func outdated() outcome {
	return terminal(schemas.WebDisabled, ErrClientOutdated, ErrClientOutdated.Error())
}
