package health

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/clawdis/clawdis/bus/subject"
	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/schemas"
	"github.com/nats-io/nats.go"
)

// fastConfig is a config whose intervals make bus tests quick.
func fastConfig(services ...string) Config {
	return Config{
		Services:         services,
		ProbeInterval:    20 * time.Millisecond,
		PingTimeout:      time.Second,
		MinEventInterval: 20 * time.Millisecond,
	}
}

// requireKeys fails unless raw is a JSON object holding every key.
func requireKeys(t *testing.T, where string, raw json.RawMessage, keys ...string) map[string]json.RawMessage {
	t.Helper()
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		t.Fatalf("%s is not an object: %s", where, raw)
	}
	for _, k := range keys {
		if _, ok := obj[k]; !ok {
			t.Errorf("%s lacks %q: %s", where, k, raw)
		}
	}
	return obj
}

func TestHealthGet(t *testing.T) {
	tests := []struct {
		name     string
		services []string
		register []string
		wantOK   bool
		wantSvc  map[string]bool
	}{
		{"every service answers", []string{"presence", subject.ServiceHealth}, []string{"presence"}, true,
			map[string]bool{"presence": true, subject.ServiceHealth: true}},
		{"one service missing", []string{"presence", "ghost"}, []string{"presence"}, false,
			map[string]bool{"presence": true, "ghost": false}},
		{"no service registered", []string{"ghost"}, nil, false, map[string]bool{"ghost": false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "sessions.json")
			if err := os.WriteFile(path, []byte(`{"main":{"sessionId":"s1","updatedAt":1700000000000}}`), 0o600); err != nil {
				t.Fatal(err)
			}
			now := time.UnixMilli(1700000005000)
			h := startHarness(t)
			for _, name := range tt.register {
				h.addService(t, name)
			}
			cfg := fastConfig(tt.services...)
			cfg.SessionsPath = path
			cfg.Now = func() time.Time { return now }
			h.run(t, cfg)
			h.waitEvent(t, "every service probed", func(s schemas.HealthSummary) bool {
				for name, want := range tt.wantSvc {
					if ok, _ := serviceOK(s, name); ok != want {
						return false
					}
				}
				return true
			})

			sum, raw := h.health(t)
			top := requireKeys(t, "health", raw, "ok", "ts", "durationMs", "web", "telegram",
				"heartbeatSeconds", "sessions", "services")
			requireKeys(t, "web", top["web"], "linked", "connected", "state", "authAgeMs")
			requireKeys(t, "telegram", top["telegram"], "configured", "state")
			sess := requireKeys(t, "sessions", top["sessions"], "path", "count", "recent")
			var recent []json.RawMessage
			if err := json.Unmarshal(sess["recent"], &recent); err != nil || len(recent) != 1 {
				t.Fatalf("sessions.recent = %s, want one entry", sess["recent"])
			}
			requireKeys(t, "sessions.recent[0]", recent[0], "key", "updatedAt", "age")
			var svcs []json.RawMessage
			if err := json.Unmarshal(top["services"], &svcs); err != nil || len(svcs) != len(tt.services) {
				t.Fatalf("services = %s, want %d entries", top["services"], len(tt.services))
			}
			for i, s := range svcs {
				requireKeys(t, "services[]", s, "name", "ok", "latencyMs")
				if sum.Services[i].Name != tt.services[i] {
					t.Errorf("services[%d] = %q, want %q (config order)", i, sum.Services[i].Name, tt.services[i])
				}
			}

			if sum.OK != tt.wantOK {
				t.Errorf("ok = %v, want %v", sum.OK, tt.wantOK)
			}
			for name, want := range tt.wantSvc {
				if ok, listed := serviceOK(sum, name); !listed || ok != want {
					t.Errorf("service %s ok = %v (listed %v), want %v", name, ok, listed, want)
				}
			}
			if sum.Ts != now.UnixMilli() || sum.HeartbeatSeconds != 60 {
				t.Errorf("ts = %d heartbeat = %d, want %d and 60", sum.Ts, sum.HeartbeatSeconds, now.UnixMilli())
			}
			r := sum.Sessions.Recent[0]
			if sum.Sessions.Count != 1 || sum.Sessions.Path != path || r.Key != "main" ||
				r.UpdatedAt == nil || *r.UpdatedAt != 1700000000000 || r.Age == nil || *r.Age != 5000 {
				t.Errorf("sessions = %+v", sum.Sessions)
			}
			if sum.Web.State != schemas.WebUnlinked || sum.Web.AuthAgeMs != nil {
				t.Errorf("web = %+v, want unlinked default", sum.Web)
			}
		})
	}
}

func TestStoppedServiceFlipsOK(t *testing.T) {
	h := startHarness(t)
	svc := h.addService(t, "presence")
	h.run(t, fastConfig("presence"))
	h.waitEvent(t, "ok true", func(s schemas.HealthSummary) bool { return s.OK })

	if err := svc.Stop(); err != nil {
		t.Fatal(err)
	}
	ev := h.waitEvent(t, "ok false", func(s schemas.HealthSummary) bool { return !s.OK })
	if ok, listed := serviceOK(ev, "presence"); !listed || ok {
		t.Errorf("event services = %+v, want presence ok:false", ev.Services)
	}
	if sum, _ := h.health(t); sum.OK {
		t.Errorf("health ok = true after the service stopped: %+v", sum.Services)
	}

	h.addService(t, "presence")
	h.waitEvent(t, "ok true again", func(s schemas.HealthSummary) bool { return s.OK })
}

func TestProviderStateEvents(t *testing.T) {
	now := time.UnixMilli(1800000000000)
	tests := []struct {
		name  string
		state wire.ProviderState
		seen  func(schemas.HealthSummary) bool
		check func(t *testing.T, s schemas.HealthSummary)
	}{
		{
			name: "whatsapp linked",
			state: wire.ProviderState{Provider: providerWhatsApp, State: schemas.WebConnected, Linked: true,
				Connected: true, AuthAtMs: now.UnixMilli() - 3*3600*1000, Self: "+436601234567", Ts: now.UnixMilli()},
			seen: func(s schemas.HealthSummary) bool { return s.Web.State == schemas.WebConnected },
			check: func(t *testing.T, s schemas.HealthSummary) {
				if !s.Web.Linked || !s.Web.Connected || s.Web.AuthAgeMs == nil || *s.Web.AuthAgeMs != 3*3600*1000 {
					t.Errorf("web = %+v, want linked, connected, authAgeMs 3h", s.Web)
				}
			},
		},
		{
			name:  "whatsapp logged out with error",
			state: wire.ProviderState{Provider: providerWhatsApp, State: schemas.WebLoggedOut, LastError: "logged out from phone"},
			seen:  func(s schemas.HealthSummary) bool { return s.Web.State == schemas.WebLoggedOut },
			check: func(t *testing.T, s schemas.HealthSummary) {
				if s.Web.Linked || s.Web.AuthAgeMs != nil || s.Web.LastError != "logged out from phone" {
					t.Errorf("web = %+v", s.Web)
				}
			},
		},
		{
			name:  "telegram polling",
			state: wire.ProviderState{Provider: providerTelegram, State: schemas.TelegramPolling, Configured: true, Self: "bot"},
			seen:  func(s schemas.HealthSummary) bool { return s.Telegram.State == schemas.TelegramPolling },
			check: func(t *testing.T, s schemas.HealthSummary) {
				if !s.Telegram.Configured {
					t.Errorf("telegram = %+v, want configured", s.Telegram)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel() // each waits out the default 1 s event interval
			h := startHarness(t)
			cfg := fastConfig()
			cfg.ProbeInterval = time.Hour // only the first round: events come from the state change
			cfg.MinEventInterval = 0      // the default 1 s: "visible within a second"
			cfg.Now = func() time.Time { return now }
			h.run(t, cfg)
			h.waitEvent(t, "the first summary", func(schemas.HealthSummary) bool { return true })

			subj, err := subject.ProviderState(tt.state.Provider)
			if err != nil {
				t.Fatal(err)
			}
			data, _ := json.Marshal(tt.state)
			if err := h.client.Publish(subj, data); err != nil {
				t.Fatal(err)
			}
			ev := h.waitEvent(t, "the new provider state", tt.seen)
			tt.check(t, ev)
			sum, _ := h.health(t)
			if !tt.seen(sum) {
				t.Fatalf("health does not show the state: %+v %+v", sum.Web, sum.Telegram)
			}
			tt.check(t, sum)
		})
	}
}

func TestEventsCoalescedAndPeriodic(t *testing.T) {
	h := startHarness(t)
	cfg := fastConfig()
	cfg.ProbeInterval = time.Hour
	cfg.MinEventInterval = 200 * time.Millisecond
	h.run(t, cfg)
	first := h.waitEvent(t, "the first summary", func(schemas.HealthSummary) bool { return true })

	subj, _ := subject.ProviderState(providerWhatsApp)
	states := []string{schemas.WebConnecting, schemas.WebReconnecting, schemas.WebConnecting,
		schemas.WebReconnecting, schemas.WebConnecting, schemas.WebConnected}
	for i, st := range states {
		data, _ := json.Marshal(wire.ProviderState{Provider: providerWhatsApp, State: st, Ts: int64(i + 1)})
		if err := h.client.Publish(subj, data); err != nil {
			t.Fatal(err)
		}
	}
	prev := first.Ts
	n := 0
	h.waitEvent(t, "the final state", func(s schemas.HealthSummary) bool {
		n++
		if gap := s.Ts - prev; gap < cfg.MinEventInterval.Milliseconds()-1 {
			t.Errorf("event %d only %d ms after the previous one", n, gap)
		}
		prev = s.Ts
		return s.Web.State == schemas.WebConnected
	})
	if n >= len(states) {
		t.Errorf("%d events for %d quick changes, want them coalesced", n, len(states))
	}
}

func TestEventsWithoutChange(t *testing.T) {
	h := startHarness(t)
	cfg := fastConfig("ghost")
	cfg.ProbeInterval = time.Hour
	cfg.MinEventInterval = 10 * time.Millisecond
	cfg.MaxEventInterval = 30 * time.Millisecond
	h.run(t, cfg)
	for i := range 3 {
		ev := h.waitEvent(t, "a periodic summary", func(schemas.HealthSummary) bool { return true })
		if ev.OK || len(ev.Services) != 1 {
			t.Fatalf("event %d = %+v, want the unchanged summary", i, ev)
		}
	}
}

func TestStatusQueuedSystemEvents(t *testing.T) {
	tests := []struct {
		name      string
		responder func(*nats.Msg)
		want      []string
	}{
		{"presence answers", func(m *nats.Msg) {
			data, _ := json.Marshal(wire.SystemEventQueue{Events: []string{"Node: mac (10.0.0.2)", "second"}})
			_ = m.Respond(data)
		}, []string{"Node: mac (10.0.0.2)", "second"}},
		{"presence answers with no events", func(m *nats.Msg) { _ = m.Respond([]byte(`{"events":null}`)) }, []string{}},
		{"presence absent", nil, []string{}},
		{"presence never answers", func(*nats.Msg) {}, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := startHarness(t)
			if tt.responder != nil {
				nc := h.bus.Conn("fake-presence")
				if _, err := nc.Subscribe(subject.PresenceQueue, tt.responder); err != nil {
					t.Fatal(err)
				}
				if err := nc.Flush(); err != nil {
					t.Fatal(err)
				}
			}
			cfg := fastConfig()
			cfg.WebChatEnabled = true
			cfg.AgentBackend = "command"
			h.run(t, cfg)
			h.waitEvent(t, "the first summary", func(schemas.HealthSummary) bool { return true })

			raw := h.request(t, subject.HealthStatus)
			requireKeys(t, "status", raw, "web", "heartbeatSeconds", "providerSummary", "queuedSystemEvents", "sessions")
			var st schemas.StatusSummary
			if err := json.Unmarshal(raw, &st); err != nil {
				t.Fatal(err)
			}
			if st.QueuedSystemEvents == nil || !slices.Equal(st.QueuedSystemEvents, tt.want) {
				t.Errorf("queuedSystemEvents = %#v, want %#v", st.QueuedSystemEvents, tt.want)
			}
			wantLines := []string{"WhatsApp: not linked", "Telegram: not configured", "WebChat: enabled (port 18788)"}
			if !slices.Equal(st.ProviderSummary, wantLines) {
				t.Errorf("providerSummary = %q, want %q", st.ProviderSummary, wantLines)
			}
			if st.Sessions.Defaults.Backend != "command" {
				t.Errorf("defaults = %+v", st.Sessions.Defaults)
			}
		})
	}
}

// TestProviderStateAskedFor: a provider that published its state before this health
// service started (or while the bus was down) is still seen: each probe round asks it.
func TestProviderStateAskedFor(t *testing.T) {
	h := startHarness(t)
	subj, err := subject.ProviderStatus(providerTelegram)
	if err != nil {
		t.Fatal(err)
	}
	prov := h.bus.Conn("telegram")
	state := wire.ProviderState{Provider: providerTelegram, State: schemas.TelegramPolling, Configured: true, Connected: true, Ts: 5}
	sub, err := prov.Subscribe(subj, func(m *nats.Msg) {
		data, _ := json.Marshal(state)
		_ = m.Respond(data)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	// whatsapp has not reported a state yet: its zero answer must not replace the default.
	wsubj, err := subject.ProviderStatus(providerWhatsApp)
	if err != nil {
		t.Fatal(err)
	}
	wsub, err := prov.Subscribe(wsubj, func(m *nats.Msg) { _ = m.Respond([]byte(`{"state":"","ts":0}`)) })
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = wsub.Unsubscribe() }()
	if err := prov.Flush(); err != nil {
		t.Fatal(err)
	}
	cfg := fastConfig(providerWhatsApp, providerTelegram)
	cfg.TelegramConfigured = true
	h.run(t, cfg)
	ev := h.waitEvent(t, "telegram polling", func(s schemas.HealthSummary) bool { return s.Telegram.State == schemas.TelegramPolling })
	if ev.Web.State != schemas.WebUnlinked {
		t.Errorf("whatsapp state %q, want the default %q", ev.Web.State, schemas.WebUnlinked)
	}
}
