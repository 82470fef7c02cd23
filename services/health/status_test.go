package health

import (
	"slices"
	"testing"
	"time"

	"github.com/clawdis/clawdis/bus/subject"
	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/schemas"
)

func TestHumanAge(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{-time.Second, "0s"},
		{0, "0s"},
		{42*time.Second + 900*time.Millisecond, "42s"},
		{59 * time.Second, "59s"},
		{time.Minute, "1m"},
		{5*time.Minute + 59*time.Second, "5m"},
		{59 * time.Minute, "59m"},
		{3*time.Hour + 59*time.Minute, "3h"},
		{23 * time.Hour, "23h"},
		{24 * time.Hour, "1d"},
		{2*24*time.Hour + 5*time.Hour, "2d"},
		{400 * 24 * time.Hour, "400d"},
	}
	for _, tt := range tests {
		if got := HumanAge(tt.d); got != tt.want {
			t.Errorf("HumanAge(%s) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

func TestProviderLines(t *testing.T) {
	ms := func(d time.Duration) *int64 { v := d.Milliseconds(); return &v }
	tests := []struct {
		name string
		got  string
		want string
	}{
		{"whatsapp disabled", whatsAppLine(false, schemas.WebDisabled, "", "", nil), "WhatsApp: disabled"},
		{"whatsapp not linked", whatsAppLine(false, schemas.WebUnlinked, "", "", nil), "WhatsApp: not linked"},
		{"whatsapp not linked, no state yet", whatsAppLine(false, "", "", "", nil), "WhatsApp: not linked"},
		{"whatsapp logged out", whatsAppLine(false, schemas.WebLoggedOut, "", "", nil), "WhatsApp: not linked, logged_out"},
		{"whatsapp linked with auth age", whatsAppLine(true, schemas.WebConnected, "+436601234567", "", ms(3*time.Hour+10*time.Minute)),
			"WhatsApp: linked as +436601234567 (auth 3h ago)"},
		{"whatsapp linked without number or age", whatsAppLine(true, schemas.WebConnected, "", "", nil), "WhatsApp: linked"},
		{"whatsapp linked reconnecting with error", whatsAppLine(true, schemas.WebReconnecting, "+4366", "stream error", ms(42*time.Second)),
			"WhatsApp: linked as +4366 (auth 42s ago), reconnecting (error: stream error)"},
		{"telegram not configured", telegramLine(false, schemas.TelegramUnconfigured, "", "", false), "Telegram: not configured"},
		{"telegram not run", telegramLine(false, schemas.TelegramUnconfigured, "", "", true), "Telegram: disabled"},
		{"telegram configured, providers disabled", telegramLine(true, schemas.TelegramUnconfigured, "", "", true), "Telegram: disabled"},
		{"telegram configured starting", telegramLine(true, schemas.TelegramStarting, "", "", false), "Telegram: configured"},
		{"telegram configured with bot", telegramLine(true, schemas.TelegramPolling, "clawbot", "", false), "Telegram: configured (@clawbot)"},
		{"telegram bot name with @", telegramLine(true, schemas.TelegramWebhook, "@clawbot", "", false), "Telegram: configured (@clawbot)"},
		{"telegram error", telegramLine(true, schemas.TelegramError, "clawbot", "401 Unauthorized", false), "Telegram: error (401 Unauthorized)"},
		{"telegram error without text", telegramLine(true, schemas.TelegramError, "", "", false), "Telegram: error"},
		{"webchat enabled", webChatLine(true, "18788"), "WebChat: enabled (port 18788)"},
		{"webchat enabled, port unknown", webChatLine(true, ""), "WebChat: enabled"},
		{"webchat disabled", webChatLine(false, "18788"), "WebChat: disabled"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, tt.got, tt.want)
		}
	}
}

func TestStatusSummary(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	nowMs := now.UnixMilli()
	providers := []string{providerWhatsApp, providerTelegram}
	tests := []struct {
		name        string
		services    []string
		answering   map[string]map[string]string // service -> its metadata
		edit        func(*snapshot)
		queued      []string
		wantLines   []string
		wantDefault schemas.SessionDefaults
		wantQueued  []string
		check       func(t *testing.T, s schemas.StatusSummary)
	}{
		{
			name:        "nothing known yet",
			services:    providers,
			answering:   map[string]map[string]string{subject.ServiceWebChat: {wire.MetaPort: "18788"}},
			wantLines:   []string{"WhatsApp: not linked", "Telegram: not configured", "WebChat: enabled (port 18788)"},
			wantDefault: schemas.SessionDefaults{Backend: "none"},
			wantQueued:  []string{},
			check: func(t *testing.T, s schemas.StatusSummary) {
				if s.Web.Linked || s.Web.AuthAgeMs != nil {
					t.Errorf("web = %+v, want unlinked with null authAgeMs", s.Web)
				}
				if s.Sessions.Recent == nil || len(s.Sessions.Recent) != 0 || s.HeartbeatSeconds != defaultHeartbeatSeconds {
					t.Errorf("recent = %#v, heartbeat %d, want an empty list and the default", s.Sessions.Recent, s.HeartbeatSeconds)
				}
				if s.WebChatURL != "http://127.0.0.1:18788/" {
					t.Errorf("webChatUrl = %q", s.WebChatURL)
				}
			},
		},
		{
			name:     "linked, sessions and queued events",
			services: append(providers, subject.ServiceAgent, subject.ServiceSessions),
			answering: map[string]map[string]string{
				subject.ServiceAgent:    {wire.MetaBackend: "openai", wire.MetaModel: "gpt-x"},
				subject.ServiceSessions: {wire.MetaStorePath: "/s/sessions.json"},
				providerWhatsApp:        {wire.MetaHeartbeatSeconds: "30"},
			},
			edit: func(s *snapshot) {
				s.web = wire.ProviderState{Provider: providerWhatsApp, State: schemas.WebConnected, Linked: true,
					Connected: true, Self: "+436601", AuthAtMs: nowMs - (5*time.Minute + 3*time.Second).Milliseconds()}
				s.telegram = wire.ProviderState{Provider: providerTelegram, Configured: true, State: schemas.TelegramPolling, Self: "bot"}
				s.sessions = sessionsView{count: 9, recent: []wire.SessionInfo{
					{Key: "group:123@g.us", SessionID: "s1", UpdatedAt: nowMs - 1000, ThinkingLevel: "high"},
					{Key: "main", SessionID: "s2", UpdatedAt: nowMs - 60000},
					{Key: "old", SessionID: "s3"},
				}}
			},
			queued:      []string{"Node: a", "Node: b"},
			wantLines:   []string{"WhatsApp: linked as +436601 (auth 5m ago)", "Telegram: configured (@bot)", "WebChat: disabled"},
			wantDefault: schemas.SessionDefaults{Backend: "openai", Model: "gpt-x"},
			wantQueued:  []string{"Node: a", "Node: b"},
			check: func(t *testing.T, s schemas.StatusSummary) {
				if !s.Web.Linked || s.Web.AuthAgeMs == nil || *s.Web.AuthAgeMs != 303000 {
					t.Errorf("web = %+v, want linked with authAgeMs 303000", s.Web)
				}
				if s.WebChatURL != "" {
					t.Errorf("webChatUrl = %q without WebChat", s.WebChatURL)
				}
				want := []schemas.StatusSession{
					{Key: "group:123@g.us", Kind: "group", SessionID: "s1", UpdatedAt: nowMs - 1000, Age: 1000, ThinkingLevel: "high"},
					{Key: "main", Kind: "direct", SessionID: "s2", UpdatedAt: nowMs - 60000, Age: 60000},
					{Key: "old", Kind: "direct", SessionID: "s3"},
				}
				if !slices.Equal(s.Sessions.Recent, want) {
					t.Errorf("recent = %+v, want %+v", s.Sessions.Recent, want)
				}
				if s.Sessions.Count != 9 || s.Sessions.Path != "/s/sessions.json" || s.HeartbeatSeconds != 30 {
					t.Errorf("sessions count/path = %d %q, heartbeat %d", s.Sessions.Count, s.Sessions.Path, s.HeartbeatSeconds)
				}
			},
		},
		{
			name:        "providers not run",
			answering:   map[string]map[string]string{providerTelegram: {wire.MetaConfigured: "true"}},
			wantLines:   []string{"WhatsApp: disabled", "Telegram: disabled", "WebChat: disabled"},
			wantDefault: schemas.SessionDefaults{Backend: "none"},
			wantQueued:  []string{},
		},
		{
			name:        "telegram configured, no state yet",
			services:    providers,
			answering:   map[string]map[string]string{providerTelegram: {wire.MetaConfigured: "true"}},
			wantLines:   []string{"WhatsApp: not linked", "Telegram: configured", "WebChat: disabled"},
			wantDefault: schemas.SessionDefaults{Backend: "none"},
			wantQueued:  []string{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := newState(tt.services, []string{subject.ServiceWebChat})
			for name, meta := range tt.answering {
				st.record(name, checkResult{ok: true, id: name, meta: meta})
			}
			snap := st.get()
			if tt.edit != nil {
				tt.edit(&snap)
			}
			got := snap.status(now, tt.queued)
			if !slices.Equal(got.ProviderSummary, tt.wantLines) {
				t.Errorf("providerSummary = %q, want %q", got.ProviderSummary, tt.wantLines)
			}
			if got.Sessions.Defaults != tt.wantDefault {
				t.Errorf("defaults = %+v, want %+v", got.Sessions.Defaults, tt.wantDefault)
			}
			if got.QueuedSystemEvents == nil || !slices.Equal(got.QueuedSystemEvents, tt.wantQueued) {
				t.Errorf("queuedSystemEvents = %#v, want %#v", got.QueuedSystemEvents, tt.wantQueued)
			}
			if tt.check != nil {
				tt.check(t, got)
			}
		})
	}
}
