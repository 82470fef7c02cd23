package wire

import (
	"encoding/json"
	"errors"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
)

// Detach returns a copy of req that a handler may answer from another goroutine after it
// returned: micro reads the request's own error field once its handler returns, so a
// request answered later must not be micro's. The copy answers on req's reply subject
// through nc (micro's per-endpoint error counts do not see those answers).
func Detach(nc *nats.Conn, req micro.Request) micro.Request {
	return &detached{nc: nc, data: req.Data(), hdr: req.Headers(), subject: req.Subject(), reply: req.Reply()}
}

type detached struct {
	nc             *nats.Conn
	data           []byte
	hdr            micro.Headers
	subject, reply string
}

var _ micro.Request = (*detached)(nil)

func (r *detached) respond(m *nats.Msg, opts []micro.RespondOpt) error {
	if r.reply == "" {
		return errors.New("respond: the request has no reply subject")
	}
	m.Subject = r.reply
	for _, opt := range opts {
		opt(m)
	}
	return r.nc.PublishMsg(m)
}

func (r *detached) Respond(data []byte, opts ...micro.RespondOpt) error {
	return r.respond(&nats.Msg{Data: data}, opts)
}

func (r *detached) RespondJSON(v any, opts ...micro.RespondOpt) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return r.Respond(data, opts...)
}

func (r *detached) Error(code, description string, data []byte, opts ...micro.RespondOpt) error {
	if code == "" || description == "" {
		return errors.New("respond: error code and description required")
	}
	m := &nats.Msg{Data: data, Header: nats.Header{micro.ErrorHeader: {description}, micro.ErrorCodeHeader: {code}}}
	return r.respond(m, opts)
}

func (r *detached) Data() []byte           { return r.data }
func (r *detached) Headers() micro.Headers { return r.hdr }
func (r *detached) Subject() string        { return r.subject }
func (r *detached) Reply() string          { return r.reply }
