package health

import (
	"strings"
	"testing"
	"time"

	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/schemas"
)

func TestInitialState(t *testing.T) {
	tests := []struct {
		name      string
		cfg       Config
		wantWeb   string
		wantTgCfg bool
		wantTg    string
	}{
		{"zero config", Config{}, schemas.WebUnlinked, false, schemas.TelegramUnconfigured},
		{"providers disabled", Config{ProvidersDisabled: true}, schemas.WebDisabled, false, schemas.TelegramUnconfigured},
		{"telegram configured", Config{TelegramConfigured: true}, schemas.WebUnlinked, true, schemas.TelegramStarting},
		{"telegram configured, providers disabled", Config{TelegramConfigured: true, ProvidersDisabled: true},
			schemas.WebDisabled, true, schemas.TelegramUnconfigured},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := tt.cfg.withDefaults()
			if err != nil {
				t.Fatal(err)
			}
			h := newState(cfg).get().health(cfg, time.Now())
			if h.Web.State != tt.wantWeb || h.Web.Linked || h.Web.Connected || h.Web.AuthAgeMs != nil {
				t.Errorf("web = %+v, want state %q, unlinked, no auth age", h.Web, tt.wantWeb)
			}
			if h.Telegram.Configured != tt.wantTgCfg || h.Telegram.State != tt.wantTg {
				t.Errorf("telegram = %+v, want configured %v state %q", h.Telegram, tt.wantTgCfg, tt.wantTg)
			}
			if !h.OK || h.HeartbeatSeconds != 60 || h.Services == nil || h.Sessions.Recent == nil {
				t.Errorf("summary = %+v, want ok, heartbeat 60, empty lists", h)
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
		{"negative probe interval", Config{ProbeInterval: -time.Second}, "ProbeInterval"},
		{"min above max", Config{MinEventInterval: 2 * time.Minute}, "MinEventInterval"},
		{"bad service name", Config{Services: []string{"a.b"}}, "invalid service name"},
		{"empty service name", Config{Services: []string{""}}, "invalid service name"},
		{"duplicate service", Config{Services: []string{"presence", "presence"}}, "twice"},
		{"negative heartbeat", Config{HeartbeatSeconds: -1}, "HeartbeatSeconds"},
		{"bad port", Config{WebChatPort: 70000}, "WebChatPort"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := tt.cfg.withDefaults()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if cfg.ProbeInterval != 2*time.Second || cfg.PingTimeout != time.Second ||
					cfg.MinEventInterval != time.Second || cfg.MaxEventInterval != time.Minute ||
					cfg.HeartbeatSeconds != 60 || cfg.WebChatPort != 18788 || cfg.Now == nil {
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
			services: []serviceState{{name: "a", probed: true, ok: true, latency: time.Millisecond}, {name: "b", probed: true, ok: true}},
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
		{"service down", func(s *snapshot) { s.services[1].ok = false }, true},
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
	cfg, _ := Config{}.withDefaults()
	st := newState(cfg)
	tests := []struct {
		name      string
		ps        wire.ProviderState
		wantApply bool
		wantWeb   string
	}{
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
