package wire_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/clawdis/clawdis/bus/bustest"
	"github.com/clawdis/clawdis/bus/wire"
)

// TestHandlerAnswers: what a handler returns is what the requester gets: a json.RawMessage
// or an *Encoded as is (not encoded again), anything else as JSON.
func TestHandlerAnswers(t *testing.T) {
	b := bustest.New(t)
	nc := b.Conn("svc")
	shared := &wire.Encoded{Data: []byte(` {"shared" : true} `)}
	answers := map[string]any{
		"raw":     json.RawMessage(` ["raw"] `),
		"encoded": shared,
		"value":   struct{ N int }{7},
	}
	var eps []wire.Endpoint
	for name, out := range answers {
		eps = append(eps, wire.Endpoint{Name: name, Subject: "gw.v1.req.test." + name,
			Handler: wire.Handler(name, func(context.Context, []byte, nats.Header) (any, error) { return out, nil })})
	}
	if _, err := wire.AddService(nc, micro.Config{Name: "answers", Version: "0.0.1"}, eps...); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl := b.Conn("client")
	for name, want := range map[string]string{"raw": ` ["raw"] `, "encoded": ` {"shared" : true} `, "value": `{"N":7}`} {
		got, err := wire.Request(ctx, cl, "gw.v1.req.test."+name, nil, nil)
		if err != nil || string(got) != want {
			t.Errorf("%s: got %q, %v; want %q", name, got, err, want)
		}
	}
}
