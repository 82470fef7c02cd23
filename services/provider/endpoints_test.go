package provider_test

import (
	"context"
	"errors"
	"testing"

	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/schemas"
	"github.com/clawdis/clawdis/services/provider"
	"github.com/clawdis/clawdis/services/provider/providertest"
)

// endpointNet is the fake network with one endpoint of its own ("fake.echo"): it answers
// with the request body, or starts background work when asked, and can request a restart.
type endpointNet struct {
	*providertest.Fake
	host    chan provider.Host
	stopped chan struct{} // closed when the background work saw the core's ctx end
}

const echoSubject = "gw.v1.req.provider.fake.echo"

func (n *endpointNet) Endpoints(h provider.Host) []provider.Endpoint {
	n.host <- h
	return []provider.Endpoint{{Name: "echo", Subject: echoSubject, Handle: func(ctx context.Context, data []byte) (any, error) {
		switch string(data) {
		case `"fail"`:
			return nil, wire.Invalid("asked to fail")
		case `"background"`:
			if !h.Go(func() { <-ctx.Done(); close(n.stopped) }) {
				return nil, errors.New("core stopping")
			}
		}
		return map[string]string{"echo": string(data)}, nil
	}}}
}

// TestNetworkEndpointsAndRestart: a Network's own endpoints are served with the core's
// error mapping, background work started through Host.Go is stopped and waited for by the
// core, and Host.Restart runs the network again after supervision stopped for good.
func TestNetworkEndpointsAndRestart(t *testing.T) {
	h := newHarness(t)
	n := &endpointNet{Fake: providertest.NewFake(netID), host: make(chan provider.Host, 1), stopped: make(chan struct{})}
	stop := h.start(h.config(n))
	host := <-n.host

	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	var got map[string]string
	if err := wire.RequestJSON(ctx, h.nc, echoSubject, "hi", &got); err != nil || got["echo"] != `"hi"` {
		t.Fatalf("echo = %v, %v", got, err)
	}
	var werr *wire.Error
	if err := wire.RequestJSON(ctx, h.nc, echoSubject, "fail", &got); !errors.As(err, &werr) || werr.Code != wire.CodeInvalidRequest {
		t.Fatalf("failing echo = %v, want INVALID_REQUEST", err)
	}

	waitRun(t, n.Fake, 1)
	n.Terminate(schemas.WebUnlinked, provider.ErrNotLinked)
	h.waitState("unlinked", func(st wire.ProviderState) bool { return st.State == schemas.WebUnlinked })
	host.Restart()
	waitRun(t, n.Fake, 2)
	n.Connect()
	h.waitConnected()

	if err := wire.RequestJSON(ctx, h.nc, echoSubject, "background", &got); err != nil {
		t.Fatalf("background echo: %v", err)
	}
	stop()
	select {
	case <-n.stopped:
	default:
		t.Fatal("Run returned before the background work ended")
	}
	if host.Go(func() { t.Error("work started after the core stopped") }) {
		t.Error("Go accepted work after the core stopped")
	}
}
