package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"

	"github.com/coder/websocket"

	"github.com/clawdis/clawdis/schemas"
)

// Sentinel errors callers branch on with errors.Is.
var (
	// ErrUnreachable wraps every failure to open the WebSocket connection; the error text
	// reads "gateway not reachable at <url>: <reason>".
	ErrUnreachable = errors.New("gateway not reachable")
	// ErrDisconnected wraps the error of every request that was pending when the
	// connection dropped, or that was made while no connection was up.
	ErrDisconnected = errors.New("gateway connection lost")
	// ErrClosed is returned by requests made after Close, and is the cause passed to
	// OnDisconnect and returned by Err when the client was closed by Close.
	ErrClosed = errors.New("gateway client closed")
	// ErrTickTimeout is the cause of a drop by the tick watchdog: no tick event arrived
	// within two tick intervals, and the client closed the connection with 4000.
	ErrTickTimeout = errors.New("tick timeout")
)

// CloseCodeTickTimeout is the close code the client sends when the tick watchdog fires.
const CloseCodeTickTimeout = 4000

// HelloError is the gateway's refusal of the handshake (a hello-error frame).
type HelloError struct {
	Reason           string
	ExpectedProtocol int    // set on a protocol mismatch
	MinClient        string // set when the gateway requires a newer client
}

func (e *HelloError) Error() string {
	msg := "gateway refused the handshake: " + e.Reason
	if e.ExpectedProtocol != 0 {
		msg += fmt.Sprintf(" (gateway speaks protocol %d)", e.ExpectedProtocol)
	}
	if e.MinClient != "" {
		msg += " (minimum client " + e.MinClient + ")"
	}
	return msg
}

// CloseError reports that the gateway closed the connection with a close frame.
type CloseError struct {
	Code   int
	Reason string
}

func (e *CloseError) Error() string {
	if e.Reason == "" {
		return fmt.Sprintf("gateway closed the connection (%d)", e.Code)
	}
	return fmt.Sprintf("gateway closed the connection (%d %s)", e.Code, e.Reason)
}

// ResponseError is a res frame with ok:false. Payload is the frame's payload, if any
// (for a failed agent final: {runId, status, summary?}).
type ResponseError struct {
	Shape   schemas.ErrorShape
	Payload json.RawMessage
}

func (e *ResponseError) Error() string { return e.Shape.Code + ": " + e.Shape.Message }

// Retryable reports the error's retryable flag (false when absent).
func (e *ResponseError) Retryable() bool {
	return e.Shape.Retryable != nil && *e.Shape.Retryable
}

// unreachable wraps a dial failure so that it reads "gateway not reachable at URL: reason",
// keeping the underlying network error when there is one.
func unreachable(url string, err error) error {
	var op *net.OpError
	if errors.As(err, &op) {
		return fmt.Errorf("%w at %s: %w", ErrUnreachable, url, op)
	}
	return fmt.Errorf("%w at %s: %w", ErrUnreachable, url, err)
}

// asCloseError returns the *CloseError for a read error caused by a close frame, else nil.
func asCloseError(err error) *CloseError {
	var ce websocket.CloseError
	if errors.As(err, &ce) {
		return &CloseError{Code: int(ce.Code), Reason: ce.Reason}
	}
	return nil
}
