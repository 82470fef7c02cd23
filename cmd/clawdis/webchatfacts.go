package main

import (
	"context"
	"log/slog"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/clawdis/clawdis/bus/subject"
	"github.com/clawdis/clawdis/bus/wire"
)

// webChatFacts puts the WebChat server's facts on the bus. WebChat is a WebSocket client of
// the edge, not a bus service, so the gateway that serves it registers an endpoint-less
// micro service named subject.ServiceWebChat whose metadata carries the port: health reads
// it like any service's metadata and reports WebChat enabled while it answers.
type webChatFacts struct {
	nc    *nats.Conn
	port  int
	log   *slog.Logger
	ready chan struct{}
}

func newWebChatFacts(port int, nc *nats.Conn, log *slog.Logger) *webChatFacts {
	return &webChatFacts{nc: nc, port: port, log: log.With("component", subject.ServiceWebChat), ready: make(chan struct{})}
}

// Ready is closed once the facts are registered.
func (w *webChatFacts) Ready() <-chan struct{} { return w.ready }

// Run registers the facts and keeps them until ctx ends.
func (w *webChatFacts) Run(ctx context.Context) error {
	svc, err := wire.AddService(w.nc, micro.Config{
		Name:        subject.ServiceWebChat,
		Version:     "1.0.0", // micro wants semver; the build's version may be "dev"
		Description: "WebChat server facts (no endpoints)",
		Metadata:    map[string]string{wire.MetaPort: strconv.Itoa(w.port)},
	})
	if err != nil {
		return err
	}
	close(w.ready)
	<-ctx.Done()
	if err := svc.Stop(); err != nil {
		w.log.Warn("stopping micro service failed", "err", err)
	}
	return nil
}
