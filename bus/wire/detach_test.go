package wire_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/micro"

	"github.com/clawdis/clawdis/bus/bustest"
	"github.com/clawdis/clawdis/bus/wire"
)

// TestDetachAnswersLater: a detached request is answered after its handler returned, with a
// reply or a protocol error, and the requester gets it.
func TestDetachAnswersLater(t *testing.T) {
	b := bustest.New(t)
	nc := b.Conn("svc")
	handler := micro.HandlerFunc(func(req micro.Request) {
		d := wire.Detach(nc, req)
		go func() {
			if string(d.Data()) == "fail" {
				wire.RespondError(d, "x", wire.Invalid("bad x"))
				return
			}
			_ = d.Respond(append([]byte("re:"), d.Data()...))
		}()
	})
	if _, err := wire.AddService(nc, micro.Config{Name: "detach", Version: "0.0.1"},
		wire.Endpoint{Name: "x", Subject: "gw.v1.req.test.detach", Handler: handler}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl := b.Conn("client")
	got, err := wire.Request(ctx, cl, "gw.v1.req.test.detach", []byte("ok"), nil)
	if err != nil || string(got) != "re:ok" {
		t.Fatalf("reply %q, %v", got, err)
	}
	_, err = wire.Request(ctx, cl, "gw.v1.req.test.detach", []byte("fail"), nil)
	var we *wire.Error
	if !errors.As(err, &we) || we.Code != wire.CodeInvalidRequest || we.Message != "bad x" {
		t.Fatalf("error %v, want INVALID_REQUEST bad x", err)
	}
}
