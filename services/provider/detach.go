package provider

import (
	"encoding/json"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
)

// detached is a request answered after micro's handler returned: micro reads a request's
// error state once Handle returns, so an answer given later from another goroutine must
// not go through micro's request. It publishes the reply as micro would (error headers
// included); micro's error count does not see it.
type detached struct {
	nc                 *nats.Conn
	data               []byte
	hdr                micro.Headers
	subject, replySubj string
}

var _ micro.Request = (*detached)(nil)

// detach copies what a worker needs of req to answer it later.
func detach(nc *nats.Conn, req micro.Request) *detached {
	return &detached{nc: nc, data: req.Data(), hdr: req.Headers(), subject: req.Subject(), replySubj: req.Reply()}
}

func (r *detached) respond(m *nats.Msg, opts []micro.RespondOpt) error {
	for _, opt := range opts {
		opt(m)
	}
	if r.replySubj == "" {
		return nil // a publish, not a request: nobody to answer
	}
	m.Subject = r.replySubj
	if err := r.nc.PublishMsg(m); err != nil {
		return fmt.Errorf("%w: %w", micro.ErrRespond, err)
	}
	return nil
}

// Respond implements micro.Request.
func (r *detached) Respond(data []byte, opts ...micro.RespondOpt) error {
	return r.respond(&nats.Msg{Data: data}, opts)
}

// RespondJSON implements micro.Request.
func (r *detached) RespondJSON(v any, opts ...micro.RespondOpt) error {
	b, err := json.Marshal(v)
	if err != nil {
		return micro.ErrMarshalResponse
	}
	return r.Respond(b, opts...)
}

// Error implements micro.Request.
func (r *detached) Error(code, description string, data []byte, opts ...micro.RespondOpt) error {
	if code == "" || description == "" {
		return fmt.Errorf("%w: error code and description", micro.ErrArgRequired)
	}
	m := &nats.Msg{Data: data, Header: nats.Header{micro.ErrorHeader: {description}, micro.ErrorCodeHeader: {code}}}
	return r.respond(m, opts)
}

// Data implements micro.Request.
func (r *detached) Data() []byte { return r.data }

// Headers implements micro.Request.
func (r *detached) Headers() micro.Headers { return r.hdr }

// Subject implements micro.Request.
func (r *detached) Subject() string { return r.subject }

// Reply implements micro.Request.
func (r *detached) Reply() string { return r.replySubj }
