package webchat

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/coder/websocket"

	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/edge"
	"github.com/clawdis/clawdis/edge/client"
	"github.com/clawdis/clawdis/schemas"
)

// The relay is the Backend of the WebChat server's connections (one per browser tab): the
// edge's connection machinery runs each tab, and the relay answers its hello from the
// upstream hello-ok and sends its requests through the upstream client.
var _ edge.Backend = (*Server)(nil)

// firstConnectWait bounds how long a hello waits for the first upstream connection (and at
// most half the handshake timeout, so the tab gets its hello-error before that closes it).
const firstConnectWait = 5 * time.Second

// Admit waits briefly for the outcome of the first upstream dial right after start, then
// admits the tab while the gateway is connected. Once that dial has failed nobody waits: the
// tab learns at once which gateway is tried and why it fails.
func (s *Server) Admit(*edge.Conn, *schemas.Hello) *edge.Refusal {
	select {
	case <-s.firstUp:
	case <-s.firstTry:
	case <-time.After(min(firstConnectWait, s.cfg.HandshakeTimeout/2)):
	}
	s.hub.Lock()
	up, why := s.up, s.downReasonLocked()
	s.hub.Unlock()
	if !up || s.hub.Stopping() {
		// The reason names the gateway URL and the last error, so that a page in front of a
		// gateway that is not running says what it tries and why it fails.
		return &edge.Refusal{HelloError: schemas.HelloError{Reason: "gateway unavailable: " + why},
			Code: websocket.StatusTryAgainLater, Reason: "gateway unavailable"}
	}
	return nil
}

// HelloOK encodes the tab's hello-ok from the upstream one and the current snapshot; the
// hub's lock is held.
func (s *Server) HelloOK(c *edge.Conn) []byte {
	b, err := json.Marshal(s.helloOKLocked(c.ID()))
	if err != nil {
		panic("webchat: encode hello-ok: " + err.Error())
	}
	return b
}

// Joined logs a tab's arrival.
func (s *Server) Joined(c *edge.Conn) {
	h := c.Hello()
	c.Log().Debug("tab connected", "client", h.Client.Name, "mode", h.Client.Mode)
}

// Left logs a tab's departure.
func (s *Server) Left(c *edge.Conn) { c.Log().Debug("tab closed") }

// Serve sends one request upstream under the client's own id and answers the tab under the
// tab's id: once, or twice for the two-stage agent method (the ack, then the final). It waits
// for the upstream reply on a worker.
func (s *Server) Serve(r *edge.Call) {
	r.Go(func(ctx context.Context) { s.relay(ctx, r) })
}

func (s *Server) relay(ctx context.Context, r *edge.Call) {
	cl := s.cl.Load()
	if cl == nil {
		r.SendError(wire.Unavailable(true, "gateway not connected"))
		return
	}
	params := json.RawMessage(r.Params)
	var payload json.RawMessage
	var err error
	if r.Method == schemas.MethodAgent {
		payload, err = cl.RequestFinal(ctx, r.Method, params, func(ack json.RawMessage) {
			r.SendOK(ack)
			r.Release()
		})
	} else {
		payload, err = cl.Request(ctx, r.Method, params)
	}
	if err == nil {
		r.SendOK(payload)
		return
	}
	var re *client.ResponseError
	switch {
	case errors.As(err, &re):
		shape := re.Shape
		r.SendFailure(&shape, re.Payload)
	case ctx.Err() != nil:
		// The tab is gone, or the server is stopping: nobody to answer.
	case errors.Is(err, client.ErrDisconnected), errors.Is(err, client.ErrClosed):
		r.SendError(wire.Unavailable(true, "gateway not connected"))
	default:
		r.Conn().Log().Warn("relay failed", "method", schemas.Clip(r.Method, 64), "err", err)
		r.SendError(wire.Unavailable(false, "%s failed in the webchat relay", schemas.Clip(r.Method, 64)))
	}
}
