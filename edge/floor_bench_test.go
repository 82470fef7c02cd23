package edge

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/clawdis/clawdis/bus/bustest"
	"github.com/clawdis/clawdis/bus/wire"
)

// The floor benchmarks time what the request path is built from, without any of the edge's
// code: one WebSocket round trip, one dial with a hello and its answer, one bus request to a
// micro service answered on a reply subscription (the edge's busCalls pattern). The edge's
// own benchmarks above can be no faster than the sums of these on the same machine.

// BenchmarkFloorWebSocketEcho: a frame to an echo server and back, coder/websocket at both
// ends over loopback.
func BenchmarkFloorWebSocketEcho(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		for {
			_, d, err := c.Read(context.Background())
			if err != nil || c.Write(context.Background(), websocket.MessageText, d) != nil {
				return
			}
		}
	}))
	defer srv.Close()
	ctx := context.Background()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer c.CloseNow()
	msg := []byte(`{"type":"req","id":"1","method":"health"}`)
	lat := make([]time.Duration, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		t0 := time.Now()
		if err := c.Write(ctx, websocket.MessageText, msg); err != nil {
			b.Fatal(err)
		}
		if _, _, err := c.Read(ctx); err != nil {
			b.Fatal(err)
		}
		lat[i] = time.Since(t0)
	}
	b.StopTimer()
	reportLatency(b, lat)
}

// BenchmarkFloorDialHello: dial, upgrade, a hello and a 1 KiB answer (timed), then close
// (not timed), against a server that does nothing else.
func BenchmarkFloorDialHello(b *testing.B) {
	answer := []byte(`{"type":"hello-ok","pad":"` + strings.Repeat("x", 1000) + `"}`)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		if _, _, err := c.Read(context.Background()); err != nil {
			return
		}
		if c.Write(context.Background(), websocket.MessageText, answer) == nil {
			_, _, _ = c.Read(context.Background()) // until the client closes
		}
	}))
	defer srv.Close()
	ctx := context.Background()
	url := "ws" + strings.TrimPrefix(srv.URL, "http")
	hello := []byte(`{"type":"hello","minProtocol":1,"maxProtocol":1,"client":{"name":"bench","version":"1","platform":"linux","mode":"cli"}}`)
	lat := make([]time.Duration, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		t0 := time.Now()
		c, _, err := websocket.Dial(ctx, url, nil)
		if err != nil {
			b.Fatal(err)
		}
		if err := c.Write(ctx, websocket.MessageText, hello); err != nil {
			b.Fatal(err)
		}
		if _, _, err := c.Read(ctx); err != nil {
			b.Fatal(err)
		}
		lat[i] = time.Since(t0)
		_ = c.Close(websocket.StatusNormalClosure, "")
	}
	b.StopTimer()
	reportLatency(b, lat)
}

// BenchmarkFloorBusRequest: a request published with a reply subject to a micro service on
// the in-process bus, its reply taken by a subscription callback and handed to the waiting
// goroutine.
func BenchmarkFloorBusRequest(b *testing.B) {
	bus := bustest.New(b)
	_, err := wire.AddService(bus.Conn("svc"), micro.Config{Name: "floor", Version: "1.0.0"}, wire.Endpoint{
		Name: "get", Subject: "gw.v1.req.floor.get",
		Handler: micro.HandlerFunc(func(r micro.Request) { _ = r.Respond([]byte(`{"ok":true}`)) }),
	})
	if err != nil {
		b.Fatal(err)
	}
	nc := bus.Conn("edge")
	prefix := nc.NewInbox() + "."
	done := make(chan struct{}, 1)
	if _, err := nc.Subscribe(prefix+"*", func(*nats.Msg) { done <- struct{}{} }); err != nil {
		b.Fatal(err)
	}
	lat := make([]time.Duration, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		t0 := time.Now()
		if err := nc.PublishRequest("gw.v1.req.floor.get", prefix+strconv.Itoa(i), nil); err != nil {
			b.Fatal(err)
		}
		<-done
		lat[i] = time.Since(t0)
	}
	b.StopTimer()
	reportLatency(b, lat)
}
