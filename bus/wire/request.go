package wire

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
)

// Request sends data to subject and waits for the reply until ctx ends. It returns the reply
// payload, or an *Error: the service's own error when it answered with one, UNAVAILABLE
// retryable when nobody serves the subject or the deadline passed, UNAVAILABLE otherwise.
func Request(ctx context.Context, nc *nats.Conn, subj string, data []byte, hdr nats.Header) ([]byte, error) {
	reply, err := RequestMsg(ctx, nc, &nats.Msg{Subject: subj, Data: data, Header: hdr})
	if err != nil {
		return nil, err
	}
	return reply.Data, nil
}

// RequestMsg is Request for a caller that reads the reply's headers: it returns the reply
// message, or the same *Error as Request.
func RequestMsg(ctx context.Context, nc *nats.Conn, msg *nats.Msg) (*nats.Msg, error) {
	reply, err := nc.RequestMsgWithContext(ctx, msg)
	if err != nil {
		return nil, RequestError(msg.Subject, err)
	}
	if werr := ReplyError(reply); werr != nil {
		return nil, werr
	}
	return reply, nil
}

// RequestJSON marshals in, sends it with Request, and unmarshals the reply into out (when out
// is not nil).
func RequestJSON(ctx context.Context, nc *nats.Conn, subj string, in, out any) error {
	var data []byte
	if in != nil {
		var err error
		if data, err = json.Marshal(in); err != nil {
			return fmt.Errorf("request %s: encode: %w", subj, err)
		}
	}
	reply, err := Request(ctx, nc, subj, data, nil)
	if err != nil {
		return err
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(reply, out); err != nil {
		return Unavailable(false, "bad reply from %s: %s", subj, err.Error())
	}
	return nil
}

// RequestError maps a failed bus request to an *Error.
func RequestError(subj string, err error) *Error {
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return Unavailable(true, "no service answers %s", subj)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		return Unavailable(true, "service did not answer %s in time", subj)
	case errors.Is(err, context.Canceled):
		return Unavailable(true, "request %s canceled", subj)
	case errors.Is(err, nats.ErrConnectionClosed), errors.Is(err, nats.ErrConnectionDraining),
		errors.Is(err, nats.ErrConnectionReconnecting):
		return Unavailable(true, "bus connection unavailable for %s", subj)
	default:
		return Unavailable(true, "request %s failed: %s", subj, err.Error())
	}
}

// ReplyError returns the *Error carried by a micro error reply, or nil for a normal reply.
func ReplyError(msg *nats.Msg) *Error {
	if msg.Header == nil {
		return nil
	}
	code := msg.Header.Get(micro.ErrorCodeHeader)
	if code == "" {
		return nil
	}
	var e Error
	if len(msg.Data) > 0 && json.Unmarshal(msg.Data, &e) == nil && e.Code != "" && e.Message != "" {
		return &e
	}
	e = Error{Code: code, Message: msg.Header.Get(micro.ErrorHeader)}
	if _, known := Codes[code]; !known {
		// micro's own errors use numeric codes (e.g. "500"); they are internal failures.
		e = Error{Code: CodeUnavailable, Message: "service error " + code + ": " + e.Message}
	}
	if e.Message == "" {
		e.Message = "service error"
	}
	return &e
}

// HandlerFunc handles one bus request: it gets the request body and headers and returns a
// value to send as JSON (a json.RawMessage, an *Encoded or a Reply is sent as is), or an
// error (an *Error is sent as is, anything else as UNAVAILABLE).
type HandlerFunc func(ctx context.Context, data []byte, hdr nats.Header) (any, error)

// Handler adapts fn to a micro.Handler. It always answers exactly once: panics and
// unexpected errors become UNAVAILABLE replies that say what failed. name is used in
// messages ("presence.list").
func Handler(name string, fn HandlerFunc) micro.Handler {
	return micro.HandlerFunc(func(req micro.Request) {
		var (
			out any
			err error
		)
		func() {
			defer func() {
				if p := recover(); p != nil {
					err = Unavailable(false, "internal error in %s: panic: %v", name, p)
				}
			}()
			out, err = fn(context.Background(), req.Data(), nats.Header(req.Headers()))
		}()
		if err != nil {
			RespondError(req, name, err)
			return
		}
		if r, ok := out.(Reply); ok {
			_ = req.Respond(r.Data, micro.WithHeaders(micro.Headers(r.Header)))
			return
		}
		var data []byte
		if enc, ok := out.(*Encoded); ok {
			data = enc.Data
		} else if raw, ok := out.(json.RawMessage); ok {
			data = raw
		} else if data, err = json.Marshal(out); err != nil {
			RespondError(req, name, fmt.Errorf("encode reply: %w", err))
			return
		}
		_ = req.Respond(data)
	})
}

// Encoded is a handler's answer already encoded as JSON. A handler that answers many
// requests with the same bytes returns the same *Encoded each time, which costs nothing to
// return as an interface value (a json.RawMessage costs an allocation per answer).
type Encoded struct{ Data []byte }

// Reply is a handler's answer sent with headers: Data as is.
type Reply struct {
	Data   []byte
	Header nats.Header
}

// RespondError answers req with err as a micro error carrying the *Error as JSON body.
func RespondError(req micro.Request, name string, err error) {
	var werr *Error
	if !errors.As(err, &werr) {
		werr = Unavailable(false, "%s failed: %s", name, err.Error())
	}
	body, _ := json.Marshal(werr)
	_ = req.Error(werr.Code, werr.Message, body)
}

// Endpoint is one request subject a service answers.
type Endpoint struct {
	Name    string // the micro endpoint name
	Subject string
	Handler micro.Handler // usually Handler(name, fn)
}

// AddService registers a nats micro service with its endpoints and returns once they are
// subscribed on the server (so a request sent next is answered). When any step fails it
// stops what it registered and returns an error naming the step.
func AddService(nc *nats.Conn, cfg micro.Config, endpoints ...Endpoint) (micro.Service, error) {
	svc, err := micro.AddService(nc, cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: add micro service: %w", cfg.Name, err)
	}
	for _, e := range endpoints {
		if err := svc.AddEndpoint(e.Name, e.Handler, micro.WithEndpointSubject(e.Subject)); err != nil {
			_ = svc.Stop()
			return nil, fmt.Errorf("%s: add endpoint %s: %w", cfg.Name, e.Subject, err)
		}
	}
	if err := nc.Flush(); err != nil {
		_ = svc.Stop()
		return nil, fmt.Errorf("%s: flush subscriptions: %w", cfg.Name, err)
	}
	return svc, nil
}
