package edge

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/clawdis/clawdis/bus/subject"
	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/schemas"
)

var _ Backend = (*Server)(nil)

// Admit makes sure the first hello-ok has a real snapshot; any authenticated hello is
// admitted.
func (s *Server) Admit(*Conn, *schemas.Hello) *Refusal {
	s.ensureState()
	return nil
}

// HelloOK appends the connection's hello-ok from the values the edge holds; the hub's lock
// is held.
func (s *Server) HelloOK(c *Conn) []byte {
	health := s.health
	if health == nil {
		health = mustJSON(s.fallbackHealth())
	}
	presence := s.presence
	if presence == nil {
		presence = []byte("[]")
	}
	b := make([]byte, 0, len(s.helloPrefix)+len(presence)+len(health)+160)
	b = append(b, s.helloPrefix...)
	b = schemas.AppendString(b, c.id)
	b = append(b, `},"snapshot":{"presence":`...)
	b = append(b, presence...)
	b = append(b, `,"health":`...)
	b = append(b, health...)
	b = append(b, `,"stateVersion":{"presence":`...)
	b = strconv.AppendInt(b, s.stateVersion.Presence, 10)
	b = append(b, `,"health":`...)
	b = strconv.AppendInt(b, s.stateVersion.Health, 10)
	b = append(b, `},"uptimeMs":`...)
	b = strconv.AppendInt(b, s.cfg.Now().Sub(s.started).Milliseconds(), 10)
	return append(b, "}}"...)
}

// Joined tells presence about a client that is not a cli client, after its hello-ok.
func (s *Server) Joined(c *Conn) {
	h := c.Hello()
	level := slog.LevelInfo
	if h.Client.Mode == "cli" { // one a minute from a container health check: not news
		level = slog.LevelDebug
	}
	if c.baseLog.Enabled(context.Background(), level) { // Log() builds a logger: only when it logs
		c.Log().Log(context.Background(), level, "client connected", "client", h.Client.Name, "mode", h.Client.Mode, "version", h.Client.Version)
	}
	s.announce(c, wire.ClientConnect)
}

// Left tells presence that the client left.
func (s *Server) Left(c *Conn) { s.announce(c, wire.ClientDisconnect) }

// announce tells the presence service about a non-cli client connecting or leaving.
func (s *Server) announce(c *Conn, event string) {
	h := c.Hello()
	if h.Client.Mode == "cli" {
		return
	}
	key := h.Client.InstanceID
	if key == "" {
		key = c.ID()
	}
	cp := wire.ClientPresence{
		Key: key, Event: event, InstanceID: h.Client.InstanceID,
		Host: h.Client.Name, IP: c.RemoteIP(), Version: h.Client.Version, Mode: h.Client.Mode,
	}
	ctx, cancel := context.WithTimeout(s.hub.reqCtx, 5*time.Second)
	defer cancel()
	if err := wire.RequestJSON(ctx, s.nc, subject.PresenceClient, cp, nil); err != nil {
		c.Log().Warn("presence update failed", "event", event, "err", err)
	}
}

// Serve routes one request to the bus and answers it exactly once (twice for a two-stage
// method: the ack, then the final). It runs on the reader: a one-stage request is published
// there and answered by its reply (busCalls); a two-stage one waits for its run's final on a
// worker, and its acknowledged run frees its in-flight slot. The request is counted in the
// metrics, with its result code and latency, just before its last res is sent.
func (s *Server) Serve(r *Call) {
	r.start = s.cfg.Now()
	a := answer{r: r, method: r.Method, s: s}
	route, ok := s.routes[r.Method]
	if service, absent := s.absent[r.Method]; !ok && absent {
		a.fail(notRouted(r.Method, service))
		return
	}
	if !ok {
		a.method = "unknown" // a client's typos must not grow the metrics without bound
		a.fail(wire.Invalid("unknown method: %s", schemas.Clip(r.Method, maxEchoMethod)))
		return
	}
	if r.Params != nil || !s.paramsNilOK[route.Method] {
		if err := s.validateParams(route.Method, r.Params); err != nil {
			a.fail(wire.Invalid("invalid %s params: %s", route.Method, err.Error()))
			return
		}
	}
	subj, body := route.Subject, r.Params
	var err error
	if route.SubjectFor != nil {
		if subj, err = route.SubjectFor(r.Params); err != nil {
			a.fail(invalidParams(route.Method, err))
			return
		}
	}
	if route.Rewrite != nil {
		if body, err = route.Rewrite(r.Params, s.cfg.MaxPayload); err != nil {
			a.fail(invalidParams(route.Method, err))
			return
		}
	}
	if !route.TwoStage {
		r.hold()
		s.calls.start(r, subj, body, route.deadline(r.Params), nil)
		return
	}
	var p struct {
		IdempotencyKey string `json:"idempotencyKey"`
	}
	if json.Unmarshal(r.Params, &p) != nil || p.IdempotencyKey == "" {
		a.fail(wire.Invalid("invalid %s params: idempotencyKey required", route.Method))
		return
	}
	waiter := s.runs.Watch(p.IdempotencyKey)
	r.Go(func(ctx context.Context) {
		defer waiter.Stop()
		s.serveRun(ctx, a, waiter, subj, body, route.deadline(r.Params))
	})
}

// serveRun sends a two-stage request and answers its ack and then its run's final.
func (s *Server) serveRun(ctx context.Context, a answer, waiter *wire.RunWaiter, subj string, body []byte, deadline time.Duration) {
	r := a.r
	reply, we := s.calls.request(r, subj, body, deadline)
	if we != nil {
		a.fail(we)
		return
	}
	if reply.Header.Get(wire.HeaderRunFinal) != "" {
		var fin wire.RunFinal
		if err := json.Unmarshal(reply.Data, &fin); err != nil {
			a.fail(wire.Unavailable(false, "%s: malformed final from the service", r.Method))
			return
		}
		a.final(fin)
		return
	}
	r.SendOK(reply.Data) // the ack: not the request's last res
	r.Release()
	fin, err := waiter.Wait(ctx)
	if err != nil {
		a.fail(wire.Unavailable(true, "gateway shutting down"))
		return
	}
	a.final(fin)
}

// answerCall answers a one-stage request with its bus reply and ends it (busCalls.done).
func (s *Server) answerCall(r *Call, reply *nats.Msg, we *wire.Error) {
	defer r.end()
	a := answer{r: r, method: r.Method, s: s}
	if we != nil {
		a.fail(we)
		return
	}
	a.ok(reply.Data)
}

// answer sends a request's last res and counts the request in the metrics just before.
type answer struct {
	s      *Server
	r      *Call
	method string // the metrics' method label
}

// codeOK is the metrics' result code of a request answered with ok:true.
const codeOK = "OK"

func (a answer) count(code string) {
	a.s.metrics.Request(a.method, code, a.s.cfg.Now().Sub(a.r.start))
}

// ok answers with ok:true and payload.
func (a answer) ok(payload []byte) {
	a.count(codeOK)
	a.r.SendOK(payload)
}

// fail answers with ok:false and we.
func (a answer) fail(we *wire.Error) {
	a.count(we.Code)
	a.r.SendError(we)
}

// final answers with the final of a two-stage run.
func (a answer) final(fin wire.RunFinal) {
	if fin.OK {
		a.ok(fin.Payload)
		return
	}
	if fin.Error == nil {
		fin.Error = wire.Unavailable(false, "%s run failed", a.method)
	}
	a.count(fin.Error.Code)
	a.r.SendFailure(ErrorShape(fin.Error), fin.Payload)
}

// notRouted says why a method of the protocol is not served here: the service that answers
// it does not run on this gateway (for example WhatsApp with --no-providers).
func notRouted(method, service string) *wire.Error {
	switch service {
	case "provider":
		return wire.Unavailable(false, "%s is not available: this gateway runs no messaging provider", method)
	case subject.ServiceWhatsApp:
		return wire.Unavailable(false, "%s is not available: WhatsApp is not enabled on this gateway", method)
	}
	return wire.Unavailable(false, "%s is not available: this gateway does not run the %s service", method, service)
}

// maxEchoMethod is how much of an unknown method name an error text repeats.
const maxEchoMethod = 64

// invalidParams words a params error of a route's SubjectFor or Rewrite: a wire error as it
// is (it is worded for clients), anything else clipped.
func invalidParams(method string, err error) *wire.Error {
	var we *wire.Error
	if errors.As(err, &we) {
		return we
	}
	return wire.Invalid("invalid %s params: %s", method, schemas.Clip(err.Error(), 120))
}

// validateParams checks raw params against the method's schema.
func (s *Server) validateParams(method string, params []byte) error {
	var v any
	if params != nil {
		var err error
		if v, err = schemas.Decode(params); err != nil {
			return errors.New("not JSON")
		}
	}
	return s.cfg.Schemas.Params(method, v)
}
