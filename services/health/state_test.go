package health

import (
	"strings"
	"testing"
	"time"

	"github.com/clawdis/clawdis/bus/subject"
	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/schemas"
)

func TestInitialState(t *testing.T) {
	tests := []struct {
		name     string
		services []string
		wantWeb  string
	}{
		{"no services", nil, schemas.WebDisabled},
		{"providers run", []string{providerWhatsApp, providerTelegram}, schemas.WebUnlinked},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newState(tt.services, []string{subject.ServiceWebChat}).get().health(time.Now())
			if h.Web.State != tt.wantWeb || h.Web.Linked || h.Web.Connected || h.Web.AuthAgeMs != nil {
				t.Errorf("web = %+v, want state %q, unlinked, no auth age", h.Web, tt.wantWeb)
			}
			if h.Telegram.Configured || h.Telegram.State != schemas.TelegramUnconfigured {
				t.Errorf("telegram = %+v, want unconfigured", h.Telegram)
			}
			if h.OK != (len(tt.services) == 0) || h.HeartbeatSeconds != defaultHeartbeatSeconds ||
				len(h.Services) != len(tt.services) || h.Sessions.Recent == nil {
				t.Errorf("summary = %+v, want ok only without services, the default heartbeat, every service listed unchecked", h)
			}
		})
	}
}

func TestConfigValidation(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"zero", Config{}, ""},
		{"negative ping interval", Config{PingInterval: -time.Second}, "PingInterval"},
		{"min above max", Config{MinEventInterval: 2 * time.Minute}, "MinEventInterval"},
		{"bad service name", Config{Services: []string{"a.b"}}, "invalid service name"},
		{"empty service name", Config{Services: []string{""}}, "invalid service name"},
		{"duplicate service", Config{Services: []string{"presence", "presence"}}, "twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := tt.cfg.withDefaults()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if cfg.PingInterval != 30*time.Second || cfg.PingTimeout != time.Second ||
					cfg.MinEventInterval != time.Second || cfg.MaxEventInterval != time.Minute || cfg.Now == nil {
					t.Errorf("defaults not applied: %+v", cfg)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error = %v, want one mentioning %q", err, tt.wantErr)
			}
		})
	}
}

func TestFingerprint(t *testing.T) {
	base := func() snapshot {
		return snapshot{
			services: []serviceState{
				{name: "a", listed: true, checked: true, ok: true, latency: time.Millisecond, id: "1"},
				{name: subject.ServiceSessions, listed: true, checked: true, ok: true, meta: map[string]string{wire.MetaStorePath: "/p"}},
				{name: subject.ServiceWebChat, checked: true},
			},
			web:      wire.ProviderState{Provider: providerWhatsApp, State: schemas.WebConnected, Linked: true, Connected: true, AuthAtMs: 1000, Ts: 5},
			telegram: wire.ProviderState{Provider: providerTelegram, State: schemas.TelegramPolling, Configured: true},
			sessions: sessionsView{count: 2, recent: []wire.SessionInfo{{Key: "main", UpdatedAt: 10}, {Key: "x", UpdatedAt: 5}}},
		}
	}
	tests := []struct {
		name        string
		edit        func(*snapshot)
		wantChanged bool
	}{
		{"nothing", func(*snapshot) {}, false},
		{"latency", func(s *snapshot) { s.services[0].latency = time.Second }, false},
		{"session updatedAt", func(s *snapshot) { s.sessions.recent[0].UpdatedAt = 99 }, false},
		{"event ts", func(s *snapshot) { s.web.Ts = 77 }, false},
		{"instance", func(s *snapshot) { s.services[0].id = "2" }, false},
		{"unlisted service up", func(s *snapshot) { s.services[2].ok = true }, false},
		{"service down", func(s *snapshot) { s.services[1].ok = false }, true},
		{"store path", func(s *snapshot) { s.services[1].meta = map[string]string{wire.MetaStorePath: "/q"} }, true},
		{"web state", func(s *snapshot) { s.web.State = schemas.WebReconnecting }, true},
		{"web connected", func(s *snapshot) { s.web.Connected = false }, true},
		{"web relinked", func(s *snapshot) { s.web.AuthAtMs = 2000 }, true},
		{"web error", func(s *snapshot) { s.web.LastError = "boom" }, true},
		{"telegram state", func(s *snapshot) { s.telegram.State = schemas.TelegramError }, true},
		{"session count", func(s *snapshot) { s.sessions.count = 3 }, true},
		{"session order", func(s *snapshot) {
			s.sessions.recent[0], s.sessions.recent[1] = s.sessions.recent[1], s.sessions.recent[0]
		}, true},
		{"session key", func(s *snapshot) { s.sessions.recent[1].Key = "y" }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := base(), base()
			tt.edit(&b)
			if changed := a.fingerprint() != b.fingerprint(); changed != tt.wantChanged {
				t.Errorf("changed = %v, want %v", changed, tt.wantChanged)
			}
		})
	}
}

func TestSetProvider(t *testing.T) {
	st := newState([]string{providerWhatsApp}, nil)
	tests := []struct {
		name      string
		ps        wire.ProviderState
		wantApply bool
		wantWeb   string
	}{
		{"no state reported yet", wire.ProviderState{Provider: providerWhatsApp}, false, schemas.WebUnlinked},
		{"whatsapp", wire.ProviderState{Provider: providerWhatsApp, State: schemas.WebConnecting, Ts: 10}, true, schemas.WebConnecting},
		{"older event ignored", wire.ProviderState{Provider: providerWhatsApp, State: schemas.WebUnlinked, Ts: 5}, false, schemas.WebConnecting},
		{"newer event", wire.ProviderState{Provider: providerWhatsApp, State: schemas.WebConnected, Ts: 11}, true, schemas.WebConnected},
		{"unknown provider", wire.ProviderState{Provider: "signal", State: "x", Ts: 12}, false, schemas.WebConnected},
	}
	for _, tt := range tests {
		if got := st.setProvider(tt.ps); got != tt.wantApply {
			t.Errorf("%s: applied = %v, want %v", tt.name, got, tt.wantApply)
		}
		if got := st.get().web.State; got != tt.wantWeb {
			t.Errorf("%s: web state = %q, want %q", tt.name, got, tt.wantWeb)
		}
	}
}

// TestRecord: an answer after none, or from another instance, is an appearance that brings
// the metadata; the same instance answering again is not.
func TestRecord(t *testing.T) {
	st := newState([]string{"a"}, nil)
	meta := func(v string) map[string]string { return map[string]string{"k": v} }
	steps := []struct {
		name         string
		r            checkResult
		wantAppeared bool
		wantMeta     string
	}{
		{"first answer", checkResult{ok: true, id: "1", meta: meta("x")}, true, "x"},
		{"same instance", checkResult{ok: true, id: "1", meta: meta("y")}, false, "x"},
		{"another instance", checkResult{ok: true, id: "2", meta: meta("z")}, true, "z"},
		{"gone", checkResult{}, false, "z"},
		{"back", checkResult{ok: true, id: "2", meta: meta("w")}, true, "w"},
	}
	for _, s := range steps {
		if _, appeared := st.record("a", s.r); appeared != s.wantAppeared {
			t.Errorf("%s: appeared = %v, want %v", s.name, appeared, s.wantAppeared)
		}
		if got := st.get().meta("a", "k"); got != s.wantMeta {
			t.Errorf("%s: metadata %q, want %q (kept while down)", s.name, got, s.wantMeta)
		}
	}
	st.forgetInstances()
	if _, appeared := st.record("a", checkResult{ok: true, id: "2"}); !appeared {
		t.Error("after forgetInstances the next answer is not an appearance")
	}
}

// TestCatchUpLosesToEvent: a summary answer is dropped when a sessions event arrived while
// it was asked for.
func TestCatchUpLosesToEvent(t *testing.T) {
	st := newState(nil, nil)
	gen := st.sessionsGeneration()
	st.setSessions(wire.SessionsSummary{Count: 2})
	if st.catchUpSessions(wire.SessionsSummary{Count: 1}, gen) || st.get().sessions.count != 2 {
		t.Errorf("the answer replaced a newer event: count %d", st.get().sessions.count)
	}
	if !st.catchUpSessions(wire.SessionsSummary{Count: 3}, st.sessionsGeneration()) || st.get().sessions.count != 3 {
		t.Errorf("the answer was not applied: count %d", st.get().sessions.count)
	}
}
