package health

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/clawdis/clawdis/bus/subject"
	"github.com/clawdis/clawdis/bus/wire"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
)

// How a service that (re)appeared is checked until it answers: its connection usually
// comes before its endpoints (a service subscribes after connecting, and resubscribes after
// a reconnect only once the server accepted it), so the first check may be too early.
const (
	settleFirst = 100 * time.Millisecond // the first pause; it doubles up to settleMax
	settleMax   = 5 * time.Second
)

// advisoryBuffer is how many bus advisories may wait for the watch loop.
const advisoryBuffer = 256

// sessionsRequest is the body of a subject.SessionsSummary request.
type sessionsRequest struct {
	Limit int `json:"limit"`
}

// watch follows the watched services until ctx ends: it checks every one at once, then
// pings them all every PingInterval, and in between checks a service when the bus says its
// connection came (until it answers) or went (once), and every service when health's own
// connection is back. It returns once every check it started has finished.
func (s *Service) watch(ctx context.Context, advisories <-chan *nats.Msg, reconnected <-chan nats.Status) {
	var wg sync.WaitGroup
	defer wg.Wait()
	settling := make(map[string]bool, len(s.names)) // names with a settle goroutine running
	settled := make(chan string)
	settle := func(name string, wait time.Duration, retry bool) {
		if settling[name] {
			return
		}
		settling[name] = true
		wg.Go(func() {
			s.settle(ctx, name, wait, retry)
			select {
			case settled <- name:
			case <-ctx.Done():
			}
		})
	}

	for i, ok := range s.round(ctx) {
		if !ok {
			settle(s.names[i], settleFirst, true)
		}
	}
	s.state.setProbed()
	s.poke()

	tick := s.clock.NewTimer(s.cfg.PingInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C():
			s.round(ctx)
			tick.Reset(s.cfg.PingInterval)
		case name := <-settled:
			delete(settling, name)
		case msg := <-advisories:
			var ev wire.BusClientEvent
			if err := json.Unmarshal(msg.Data, &ev); err != nil || !s.state.watched(ev.Client.Name) {
				continue
			}
			// A connection that came may not serve yet: check until it does. One that went
			// may have been one of several copies: check once.
			connected := msg.Subject == subject.BusConnect
			s.log.Debug("bus advisory", "subject", msg.Subject, "conn", ev.Client.Name, "reason", ev.Reason)
			settle(ev.Client.Name, 0, connected)
		case <-reconnected:
			s.log.Info("bus connection back; checking every service")
			s.state.forgetInstances()
			for _, name := range s.names {
				settle(name, 0, true)
			}
		}
	}
}

// round checks every watched service at once and reports, in s.names order, which answered.
func (s *Service) round(ctx context.Context) []bool {
	oks := make([]bool, len(s.names))
	var wg sync.WaitGroup
	for i, name := range s.names {
		wg.Go(func() { oks[i] = s.check(ctx, name) })
	}
	wg.Wait()
	return oks
}

// settle checks name after wait and, with retry, again after growing pauses until it
// answers or one PingInterval has passed (then the slow ping takes over).
func (s *Service) settle(ctx context.Context, name string, wait time.Duration, retry bool) {
	var t timer
	defer func() {
		if t != nil {
			t.Stop()
		}
	}()
	for waited := time.Duration(0); ; {
		if wait > 0 {
			if t == nil {
				t = s.clock.NewTimer(wait)
			} else {
				t.Reset(wait)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C():
			}
			waited += wait
		}
		if s.check(ctx, name) || !retry || waited >= s.cfg.PingInterval {
			return
		}
		wait = min(max(2*wait, settleFirst), settleMax)
	}
}

// check pings name once and records the answer; when the service (re)appeared it catches up
// with what the service publishes as events. It reports whether the service answered.
func (s *Service) check(ctx context.Context, name string) bool {
	r := s.ping(ctx, name)
	if ctx.Err() != nil {
		return false // a cancelled check is not the service's fault
	}
	prev, appeared := s.state.record(name, r)
	if appeared {
		s.catchUp(ctx, name)
	}
	level, listed := slog.LevelDebug, prev.listed
	switch {
	case r.ok && !prev.ok && prev.answered:
		level = slog.LevelInfo // back after it stopped answering; its first answer is not news
	case !r.ok && prev.ok && listed:
		level = slog.LevelWarn
	}
	if r.ok != prev.ok || !prev.checked {
		if r.ok {
			s.log.Log(ctx, level, "service answers", "service", name, "latency_ms", r.latency.Milliseconds())
		} else {
			s.log.Log(ctx, level, "service does not answer", "service", name)
		}
	}
	if appeared || r.ok != prev.ok || !prev.checked {
		s.poke()
	}
	return r.ok
}

// ping asks name for its micro PING reply: any reply within PingTimeout counts as alive;
// the reply names the instance and carries the service's metadata.
func (s *Service) ping(ctx context.Context, name string) checkResult {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.PingTimeout)
	defer cancel()
	start := time.Now()
	msg, err := s.nc.RequestWithContext(ctx, s.pingSubj[name], nil)
	if err != nil {
		return checkResult{}
	}
	r := checkResult{ok: true, latency: time.Since(start)}
	var p micro.Ping
	if json.Unmarshal(msg.Data, &p) == nil {
		r.id, r.meta = p.ID, p.Metadata
	}
	return r
}

// catchUp asks a service that (re)appeared, once, for the state it otherwise publishes
// only when it changes: a provider's state, the sessions summary.
func (s *Service) catchUp(ctx context.Context, name string) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.PingTimeout)
	defer cancel()
	switch name {
	case providerWhatsApp, providerTelegram:
		var ps wire.ProviderState
		if err := wire.RequestJSON(ctx, s.nc, s.statusSubj[name], nil, &ps); err != nil {
			s.log.Debug("provider status unavailable", "provider", name, "err", err)
			return
		}
		if ps.Provider == "" {
			ps.Provider = name
		}
		s.state.setProvider(ps)
	case subject.ServiceSessions:
		gen := s.state.sessionsGeneration()
		var sum wire.SessionsSummary
		if err := wire.RequestJSON(ctx, s.nc, subject.SessionsSummary, sessionsRequest{Limit: recentLimit}, &sum); err != nil {
			s.log.Debug("sessions summary unavailable", "err", err)
			return
		}
		s.state.catchUpSessions(sum, gen)
	}
}

// onProviderState applies a provider state event.
func (s *Service) onProviderState(msg *nats.Msg) {
	var ps wire.ProviderState
	if err := json.Unmarshal(msg.Data, &ps); err != nil {
		s.log.Warn("bad provider state event", "subject", msg.Subject, "err", err)
		return
	}
	if ps.Provider == "" {
		// gw.v1.evt.provider.<provider>.state
		if parts := strings.Split(msg.Subject, "."); len(parts) == 5 {
			ps.Provider = parts[3]
		}
	}
	if !s.state.setProvider(ps) {
		s.log.Debug("provider state event ignored", "subject", msg.Subject, "provider", ps.Provider)
		return
	}
	s.log.Debug("provider state", "provider", ps.Provider, "state", ps.State)
	s.poke()
}

// onSessionsChanged applies a sessions changed event.
func (s *Service) onSessionsChanged(msg *nats.Msg) {
	var sum wire.SessionsSummary
	if err := json.Unmarshal(msg.Data, &sum); err != nil {
		s.log.Warn("bad sessions changed event", "err", err)
		return
	}
	s.state.setSessions(sum)
	s.poke()
}
