package health

import (
	"encoding/json"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clawdis/clawdis/bus/subject"
	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/schemas"
	"github.com/nats-io/nats.go"
)

// fastConfig is a config for bus tests: no slow ping during the test (the service learns
// everything from the first check, events and advisories) and quick events.
func fastConfig(services ...string) Config {
	return Config{
		Services:         services,
		PingInterval:     time.Hour,
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

// sessionsSummary is what the fake sessions services answer.
var sessionsSummary = wire.SessionsSummary{Path: "/s/sessions.json", Count: 1,
	Sessions: []wire.SessionInfo{{Key: "main", SessionID: "s1", UpdatedAt: 1700000000000}}}

// addSessions registers a fake sessions service answering the summary with sum.
func (h *harness) addSessions(t *testing.T, sum wire.SessionsSummary, asked *atomic.Int32) *fakeService {
	t.Helper()
	return h.addService(t, subject.ServiceSessions, map[string]string{wire.MetaStorePath: sum.Path},
		answer("summary", subject.SessionsSummary, sum, asked))
}

// addWebChat registers the WebChat facts service with port.
func (h *harness) addWebChat(t *testing.T, port string) *fakeService {
	t.Helper()
	return h.addService(t, subject.ServiceWebChat, map[string]string{wire.MetaPort: port})
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
			now := time.UnixMilli(1700000005000)
			h := startHarness(t)
			for _, name := range tt.register {
				h.addService(t, name, nil)
			}
			h.addSessions(t, sessionsSummary, nil)
			services := append([]string{subject.ServiceSessions}, tt.services...)
			cfg := fastConfig(services...)
			cfg.Now = func() time.Time { return now }
			h.run(t, cfg)
			h.waitEvent(t, "every service checked", func(s schemas.HealthSummary) bool {
				for name, want := range tt.wantSvc {
					if ok, _ := serviceOK(s, name); ok != want {
						return false
					}
				}
				return s.Sessions.Count == 1
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
			if err := json.Unmarshal(top["services"], &svcs); err != nil || len(svcs) != len(services) {
				t.Fatalf("services = %s, want %d entries (the WebChat facts are not listed)", top["services"], len(services))
			}
			for i, s := range svcs {
				requireKeys(t, "services[]", s, "name", "ok", "latencyMs")
				if sum.Services[i].Name != services[i] {
					t.Errorf("services[%d] = %q, want %q (config order)", i, sum.Services[i].Name, services[i])
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
			if sum.Ts != now.UnixMilli() || sum.HeartbeatSeconds != defaultHeartbeatSeconds {
				t.Errorf("ts = %d heartbeat = %d, want %d and the default", sum.Ts, sum.HeartbeatSeconds, now.UnixMilli())
			}
			r := sum.Sessions.Recent[0]
			if sum.Sessions.Count != 1 || sum.Sessions.Path != sessionsSummary.Path || r.Key != "main" ||
				r.UpdatedAt == nil || *r.UpdatedAt != 1700000000000 || r.Age == nil || *r.Age != 5000 {
				t.Errorf("sessions = %+v", sum.Sessions)
			}
			if sum.Web.State != schemas.WebDisabled || sum.Web.AuthAgeMs != nil {
				t.Errorf("web = %+v, want disabled (the gateway does not run WhatsApp)", sum.Web)
			}
		})
	}
}

// TestServiceGoneAndBack: with no slow ping during the test, the bus's advisories alone
// tell health that a service's connection went and that it came back.
func TestServiceGoneAndBack(t *testing.T) {
	h := startHarness(t)
	presence := h.addService(t, "presence", nil)
	h.run(t, fastConfig("presence"))
	h.waitEvent(t, "ok true", func(s schemas.HealthSummary) bool { return s.OK })

	presence.nc.Close()
	ev := h.waitEvent(t, "ok false", func(s schemas.HealthSummary) bool { return !s.OK })
	if ok, listed := serviceOK(ev, "presence"); !listed || ok {
		t.Errorf("event services = %+v, want presence ok:false", ev.Services)
	}
	if sum, _ := h.health(t); sum.OK {
		t.Errorf("health ok = true after the service went: %+v", sum.Services)
	}

	h.addService(t, "presence", nil)
	h.waitEvent(t, "ok true again", func(s schemas.HealthSummary) bool { return s.OK })
}

// TestSlowPingFindsStoppedService: a service that stops serving but keeps its connection
// (so the bus says nothing) is found by the next slow ping.
func TestSlowPingFindsStoppedService(t *testing.T) {
	clk := newManualClock()
	h := startHarness(t)
	presence := h.addService(t, "presence", nil)
	h.addWebChat(t, "18788")
	cfg := Config{Services: []string{"presence"}}
	h.runOn(t, cfg, clk)
	h.waitEvent(t, "ok true", func(s schemas.HealthSummary) bool { return s.OK })
	clk.waitArmed(t, 2) // the publish schedule and the slow ping

	if err := presence.svc.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := presence.nc.Flush(); err != nil { // the server has seen the unsubscriptions
		t.Fatal(err)
	}
	clk.Advance(30 * time.Second) // the default PingInterval
	ev := h.waitEvent(t, "ok false", func(s schemas.HealthSummary) bool { return !s.OK })
	if ok, _ := serviceOK(ev, "presence"); ok {
		t.Errorf("services = %+v, want presence down", ev.Services)
	}
}

// TestQuietMinute: with services that publish nothing, a minute costs two slow pings of
// each watched service and the one periodic health event, and no other bus message.
func TestQuietMinute(t *testing.T) {
	clk := newManualClock()
	h := startHarness(t)
	spy := h.bus.Conn("spy")
	seen := make(chan *nats.Msg, 4096)
	if _, err := spy.ChanSubscribe(">", seen); err != nil {
		t.Fatal(err)
	}
	if err := spy.Flush(); err != nil {
		t.Fatal(err)
	}
	// waitConnects reads seen (start-up traffic) until the bus announced a connection of
	// each name: the server sends its advisories on its own schedule, and one arriving
	// during the quiet minute would rightly make health check that service again.
	waitConnects := func(names ...string) {
		t.Helper()
		want := map[string]bool{}
		for _, n := range names {
			want[n] = true
		}
		timeout := time.After(10 * time.Second)
		for len(want) > 0 {
			select {
			case m := <-seen:
				var ev wire.BusClientEvent
				if m.Subject == subject.BusConnect && json.Unmarshal(m.Data, &ev) == nil {
					delete(want, ev.Client.Name)
				}
			case <-timeout:
				t.Fatalf("no connect advisory for %v", want)
			}
		}
	}
	var asked atomic.Int32
	h.addService(t, "presence", nil)
	h.addSessions(t, sessionsSummary, &asked)
	h.addWebChat(t, "18788")
	waitConnects("presence", subject.ServiceSessions, subject.ServiceWebChat)
	s := h.runOn(t, Config{Services: []string{"presence", subject.ServiceSessions}}, clk)
	h.waitEvent(t, "the first summary", func(s schemas.HealthSummary) bool { return s.OK && s.Sessions.Count == 1 })
	clk.waitArmed(t, 2) // the publish schedule and the slow ping
	waitConnects(s.nc.Opts.Name)

	// settled makes every message health sent so far visible in seen.
	settled := func() {
		t.Helper()
		for _, nc := range []*nats.Conn{s.nc, spy} {
			if err := nc.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	settled()
	for len(seen) > 0 {
		<-seen // start-up traffic
	}
	for range 60 {
		clk.Advance(time.Second)
		clk.waitArmed(t, 2)
	}
	settled()
	got := map[string]int{}
	for len(seen) > 0 {
		m := <-seen
		if len(m.Subject) > 7 && m.Subject[:7] == "_INBOX." {
			continue // the services' answers
		}
		got[m.Subject]++
	}
	want := map[string]int{
		"$SRV.PING.presence":  2,
		"$SRV.PING.sessions":  2,
		"$SRV.PING.webchat":   2,
		subject.HealthChanged: 1,
	}
	if len(got) != len(want) {
		t.Errorf("bus messages in a quiet minute: %v, want %v", got, want)
	}
	for subj, n := range want {
		if got[subj] != n {
			t.Errorf("%s: %d messages, want %d (all: %v)", subj, got[subj], n, got)
		}
	}
	if n := asked.Load(); n != 1 {
		t.Errorf("sessions summary asked %d times, want once (at start)", n)
	}
}

// TestCatchUpOncePerAppearance: health asks a provider for its state and sessions for its
// summary once when it first sees them, follows their events after that, and asks again
// only when the service comes back.
func TestCatchUpOncePerAppearance(t *testing.T) {
	h := startHarness(t)
	var statusAsked, summaryAsked, againAsked atomic.Int32
	statusSubj, err := subject.ProviderStatus(providerTelegram)
	if err != nil {
		t.Fatal(err)
	}
	polling := wire.ProviderState{Provider: providerTelegram, State: schemas.TelegramPolling, Configured: true, Ts: 5}
	h.addService(t, providerTelegram, map[string]string{wire.MetaConfigured: "true"},
		answer("status", statusSubj, polling, &statusAsked))
	sessions := h.addSessions(t, sessionsSummary, &summaryAsked)
	h.run(t, fastConfig(providerTelegram, subject.ServiceSessions))
	h.waitEvent(t, "telegram polling and one session", func(s schemas.HealthSummary) bool {
		return s.Telegram.State == schemas.TelegramPolling && s.Sessions.Count == 1
	})

	changed := wire.SessionsSummary{Count: 2, Sessions: []wire.SessionInfo{{Key: "new", UpdatedAt: 2}, {Key: "main", UpdatedAt: 1}}}
	data, _ := json.Marshal(changed)
	if err := h.client.Publish(subject.SessionsChanged, data); err != nil {
		t.Fatal(err)
	}
	ev := h.waitEvent(t, "two sessions", func(s schemas.HealthSummary) bool { return s.Sessions.Count == 2 })
	if ev.Sessions.Recent[0].Key != "new" {
		t.Errorf("recent = %+v, want new first", ev.Sessions.Recent)
	}

	sessions.nc.Close()
	h.waitEvent(t, "sessions down", func(s schemas.HealthSummary) bool { ok, _ := serviceOK(s, subject.ServiceSessions); return !ok })
	back := sessionsSummary
	back.Count = 7
	h.addSessions(t, back, &againAsked)
	h.waitEvent(t, "sessions back", func(s schemas.HealthSummary) bool { return s.OK && s.Sessions.Count == 7 })

	if s, a, b := statusAsked.Load(), summaryAsked.Load(), againAsked.Load(); s != 1 || a != 1 || b != 1 {
		t.Errorf("asked telegram %d, first sessions %d, second sessions %d times; want once each", s, a, b)
	}
}

// TestFactsFromMetadata: the static facts of both summaries come from the services'
// metadata; a provider that has not reported its state yet does not hide what its
// metadata says.
func TestFactsFromMetadata(t *testing.T) {
	h := startHarness(t)
	tgStatus, _ := subject.ProviderStatus(providerTelegram)
	waStatus, _ := subject.ProviderStatus(providerWhatsApp)
	h.addService(t, providerWhatsApp, map[string]string{wire.MetaHeartbeatSeconds: "45"},
		answer("status", waStatus, wire.ProviderState{Provider: providerWhatsApp, State: schemas.WebConnecting}, nil))
	// The core's answer before its network reported: starting, not yet configured.
	h.addService(t, providerTelegram, map[string]string{wire.MetaConfigured: "true"},
		answer("status", tgStatus, wire.ProviderState{Provider: providerTelegram, State: schemas.TelegramStarting}, nil))
	h.addService(t, subject.ServiceAgent, map[string]string{wire.MetaBackend: "openai", wire.MetaModel: "gpt-x"})
	h.addSessions(t, sessionsSummary, nil)
	h.addWebChat(t, "18790")
	h.run(t, fastConfig(providerWhatsApp, providerTelegram, subject.ServiceAgent, subject.ServiceSessions))
	ev := h.waitEvent(t, "every service", func(s schemas.HealthSummary) bool { return s.OK })
	if ev.HeartbeatSeconds != 45 || !ev.Telegram.Configured || ev.Telegram.State != schemas.TelegramStarting ||
		ev.Web.State != schemas.WebConnecting || ev.Sessions.Path != sessionsSummary.Path {
		t.Errorf("health = heartbeat %d, telegram %+v, web %+v, sessions path %q",
			ev.HeartbeatSeconds, ev.Telegram, ev.Web, ev.Sessions.Path)
	}

	var st schemas.StatusSummary
	if err := json.Unmarshal(h.request(t, subject.HealthStatus), &st); err != nil {
		t.Fatal(err)
	}
	wantLines := []string{"WhatsApp: not linked, connecting", "Telegram: configured", "WebChat: enabled (port 18790)"}
	if !slices.Equal(st.ProviderSummary, wantLines) {
		t.Errorf("providerSummary = %q, want %q", st.ProviderSummary, wantLines)
	}
	if want := (schemas.SessionDefaults{Backend: "openai", Model: "gpt-x"}); st.Sessions.Defaults != want ||
		st.HeartbeatSeconds != 45 || st.Sessions.Path != sessionsSummary.Path {
		t.Errorf("status = defaults %+v, heartbeat %d, path %q", st.Sessions.Defaults, st.HeartbeatSeconds, st.Sessions.Path)
	}
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
			cfg.MinEventInterval = 0 // the default 1 s: "visible within a second"
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
			h.addService(t, subject.ServiceAgent, map[string]string{wire.MetaBackend: "command"})
			h.run(t, fastConfig(subject.ServiceAgent))
			h.waitEvent(t, "the agent answering", func(s schemas.HealthSummary) bool { return s.OK })

			raw := h.request(t, subject.HealthStatus)
			requireKeys(t, "status", raw, "web", "heartbeatSeconds", "providerSummary", "queuedSystemEvents", "sessions")
			var st schemas.StatusSummary
			if err := json.Unmarshal(raw, &st); err != nil {
				t.Fatal(err)
			}
			if st.QueuedSystemEvents == nil || !slices.Equal(st.QueuedSystemEvents, tt.want) {
				t.Errorf("queuedSystemEvents = %#v, want %#v", st.QueuedSystemEvents, tt.want)
			}
			wantLines := []string{"WhatsApp: disabled", "Telegram: disabled", "WebChat: disabled"}
			if !slices.Equal(st.ProviderSummary, wantLines) {
				t.Errorf("providerSummary = %q, want %q", st.ProviderSummary, wantLines)
			}
			if st.Sessions.Defaults.Backend != "command" {
				t.Errorf("defaults = %+v", st.Sessions.Defaults)
			}
		})
	}
}

// TestHealthAnswerFollowsChangesWithinAMillisecond: answers within one millisecond share one
// encoding, but only while the state is unchanged: with the clock standing still, a
// provider state that arrives between two requests is in the second answer.
func TestHealthAnswerFollowsChangesWithinAMillisecond(t *testing.T) {
	h := startHarness(t)
	cfg := fastConfig()
	now := time.UnixMilli(1_750_000_000_000)
	cfg.Now = func() time.Time { return now }
	h.run(t, cfg)
	h.waitEvent(t, "the first summary", func(schemas.HealthSummary) bool { return true })
	before, raw1 := h.health(t)
	if _, raw2 := h.health(t); string(raw2) != string(raw1) {
		t.Fatalf("two answers in one millisecond of one state differ:\n%s\n%s", raw1, raw2)
	}
	subj, _ := subject.ProviderState(providerWhatsApp)
	data, _ := json.Marshal(wire.ProviderState{Provider: providerWhatsApp, State: schemas.WebConnected, Ts: 1})
	if err := h.client.Publish(subj, data); err != nil {
		t.Fatal(err)
	}
	h.waitEvent(t, "the connected state", func(s schemas.HealthSummary) bool { return s.Web.State == schemas.WebConnected })
	after, _ := h.health(t)
	if before.Web.State == schemas.WebConnected || after.Web.State != schemas.WebConnected {
		t.Fatalf("web state before %q, after %q; want the change in the answer", before.Web.State, after.Web.State)
	}
}
