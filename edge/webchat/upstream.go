package webchat

import (
	"context"
	"encoding/json"
	"runtime"
	"strings"
	"time"

	"github.com/clawdis/clawdis/edge/client"
	"github.com/clawdis/clawdis/schemas"
)

// reasonGatewayLost is the shutdown event reason tabs get when the upstream connection drops.
const reasonGatewayLost = "gateway connection lost"

// upstream dials the gateway until the first connection succeeds (the client reconnects by
// itself afterwards), then holds the client until ctx ends and closes it.
func (s *Server) upstream(ctx context.Context) {
	opts := client.Options{
		URL:   s.cfg.GatewayURL,
		Token: s.cfg.Token,
		Client: schemas.ClientInfo{Name: ClientName, Version: s.cfg.Version, Platform: runtime.GOOS,
			Mode: ClientMode, InstanceID: s.cfg.InstanceID},
		DialTimeout:  s.cfg.DialTimeout,
		Reconnect:    true,
		Backoff:      s.cfg.Backoff,
		OnEvent:      s.onEvent,
		OnGap:        s.onGap,
		OnConnect:    s.onConnect,
		OnDisconnect: s.onDisconnect,
		Logger:       s.cfg.Log,
	}
	var cl *client.Client
	for attempt := 0; cl == nil; attempt++ {
		c, err := client.Dial(ctx, opts)
		if err == nil {
			cl = c
			break
		}
		if ctx.Err() != nil {
			return
		}
		s.hub.Lock()
		s.lastErr = err.Error()
		s.hub.Unlock()
		if attempt == 0 {
			close(s.firstTry) // hellos waiting for the first outcome are refused at once
		}
		d := s.cfg.Backoff.Delay(attempt, nil)
		s.log.Warn("gateway not reachable; retrying", "url", s.cfg.GatewayURL, "attempt", attempt+1, "retry_in", d, "err", err)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
	s.cl.Store(cl)
	<-ctx.Done()
	_ = cl.Close()
	<-cl.Done()
}

// onConnect records the new upstream hello; after a reconnect it sends every tab fresh
// presence and health so the page re-renders (and reloads what it shows).
func (s *Server) onConnect(h schemas.HelloOK) {
	presence, _ := json.Marshal(h.Snapshot.Presence)
	if h.Snapshot.Presence == nil {
		presence = []byte("[]")
	}
	health, _ := json.Marshal(h.Snapshot.Health)
	s.hub.Lock()
	defer s.hub.Unlock()
	again := s.everUp
	if !again {
		close(s.firstUp)
	}
	s.up, s.everUp, s.announced, s.lastErr = true, true, false, ""
	s.hello, s.helloAt = h, time.Now()
	s.presence, s.health, s.sv = presence, health, h.Snapshot.StateVersion
	if s.upHook != nil {
		s.upHook(true)
	}
	s.log.Info("gateway connected", "url", s.cfg.GatewayURL, "reconnect", again)
	if again {
		sv := s.sv
		s.hub.BroadcastLocked(schemas.EventPresence, presencePayload(presence), &sv, true)
		s.hub.BroadcastLocked(schemas.EventHealth, health, &sv, true)
	}
}

// onDisconnect tells the tabs that the gateway is gone, unless it said so itself.
func (s *Server) onDisconnect(err error) {
	s.hub.Lock()
	defer s.hub.Unlock()
	s.up = false
	if err != nil {
		s.lastErr = strings.TrimPrefix(err.Error(), client.ErrDisconnected.Error()+": ")
	}
	if s.upHook != nil {
		s.upHook(false)
	}
	if s.hub.Stopping() {
		return
	}
	s.log.Warn("gateway connection lost; reconnecting", "url", s.cfg.GatewayURL, "err", err)
	if !s.announced {
		s.announced = true
		payload, _ := json.Marshal(schemas.ShutdownPayload{Reason: reasonGatewayLost + ": " + s.downReasonLocked()})
		s.hub.BroadcastLocked(schemas.EventShutdown, payload, nil, false)
	}
}

// downReasonLocked says which gateway the relay tries and the last error, for the tabs
// (a hello-error or shutdown reason); the hub's lock is held.
func (s *Server) downReasonLocked() string {
	why := s.lastErr
	switch {
	case why == "":
		why = s.cfg.GatewayURL + ": not connected yet"
	case !strings.Contains(why, s.cfg.GatewayURL):
		why = s.cfg.GatewayURL + ": " + why
	}
	return schemas.Clip(why, 180)
}

// onGap passes an upstream seq gap on: every tab's seq skips as many numbers, so each tab
// sees a gap on its next event and refreshes.
func (s *Server) onGap(expected, got int64) {
	s.hub.Lock()
	defer s.hub.Unlock()
	s.hub.SkipSeqLocked(got - expected)
}

// onEvent keeps the snapshot current and fans the event out to every tab.
func (s *Server) onEvent(ev schemas.Event) {
	droppable := false
	s.hub.Lock()
	defer s.hub.Unlock()
	switch ev.Event {
	case schemas.EventPresence:
		var p struct {
			Presence json.RawMessage `json:"presence"`
		}
		if json.Unmarshal(ev.Payload, &p) == nil && len(p.Presence) > 0 {
			s.presence = p.Presence
		}
		droppable = true
	case schemas.EventHealth:
		if json.Valid(ev.Payload) && len(ev.Payload) > 0 {
			s.health = ev.Payload
		}
		droppable = true
	case schemas.EventTick:
		droppable = true
	case schemas.EventChat:
		var c struct {
			State string `json:"state"`
		}
		_ = json.Unmarshal(ev.Payload, &c)
		droppable = c.State == schemas.ChatStateDelta
	case schemas.EventShutdown:
		s.announced = true
	}
	if ev.StateVersion != nil {
		s.sv.Presence = max(s.sv.Presence, ev.StateVersion.Presence)
		s.sv.Health = max(s.sv.Health, ev.StateVersion.Health)
	}
	s.hub.BroadcastLocked(ev.Event, ev.Payload, ev.StateVersion, droppable)
}

// helloOKLocked builds a tab's hello-ok from the upstream one and the current snapshot; s.mu
// is held.
func (s *Server) helloOKLocked(tabID string) schemas.HelloOK {
	ok := schemas.HelloOK{
		Type:     schemas.TypeHelloOK,
		Protocol: schemas.ProtocolVersion,
		Server: schemas.ServerInfo{Version: s.hello.Server.Version, Commit: s.hello.Server.Commit,
			Host: s.hello.Server.Host, ConnID: tabID},
		Features: s.hello.Features,
		Snapshot: schemas.Snapshot{
			StateVersion: s.sv,
			UptimeMs:     s.hello.Snapshot.UptimeMs + time.Since(s.helloAt).Milliseconds(),
		},
		Policy: schemas.Policy{
			MaxPayload:       s.maxPayloadLocked(),
			MaxBufferedBytes: s.cfg.MaxBufferedBytes,
			TickIntervalMs:   s.hello.Policy.TickIntervalMs,
		},
	}
	if json.Unmarshal(s.presence, &ok.Snapshot.Presence) != nil || ok.Snapshot.Presence == nil {
		ok.Snapshot.Presence = s.hello.Snapshot.Presence
	}
	if json.Unmarshal(s.health, &ok.Snapshot.Health) != nil {
		ok.Snapshot.Health = s.hello.Snapshot.Health
	}
	if ok.Features.Methods == nil {
		ok.Features.Methods = []string{}
	}
	if ok.Features.Events == nil {
		ok.Features.Events = []string{}
	}
	if ok.Snapshot.Presence == nil {
		ok.Snapshot.Presence = []schemas.PresenceEntry{}
	}
	return ok
}

// maxPayloadLocked is the largest frame a tab may send: the gateway's own limit, since every
// request goes on to it unchanged. s.mu is held.
func (s *Server) maxPayloadLocked() int64 {
	if p := s.hello.Policy.MaxPayload; p > 0 {
		return p
	}
	return DefaultMaxPayload
}

// presencePayload wraps a presence list as the presence event payload.
func presencePayload(list json.RawMessage) json.RawMessage {
	out := make([]byte, 0, len(list)+13)
	out = append(out, `{"presence":`...)
	out = append(out, list...)
	return append(out, '}')
}
