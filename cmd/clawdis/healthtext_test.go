package main

import (
	"strings"
	"testing"

	"github.com/clawdis/clawdis/schemas"
)

// TestHealthTextSaysWhatToDo: every state that is not fine comes with its reason and the
// next step.
func TestHealthTextSaysWhatToDo(t *testing.T) {
	status := func(n int) *int { return &n }
	text := func(s string) *string { return &s }
	for _, tt := range []struct {
		h    schemas.HealthSummary
		want []string
	}{
		{schemas.HealthSummary{OK: true, Web: schemas.WebHealth{State: schemas.WebUnlinked},
			Telegram: schemas.TelegramHealth{State: schemas.TelegramUnconfigured}},
			[]string{"Gateway: ok", "WhatsApp: unlinked — not linked: stop the gateway, run `clawdis login`",
				"Telegram: unconfigured — set TELEGRAM_BOT_TOKEN"}},
		{schemas.HealthSummary{Web: schemas.WebHealth{State: schemas.WebLoggedOut},
			Telegram: schemas.TelegramHealth{State: schemas.TelegramError, Configured: true,
				Probe: &schemas.TelegramProbe{Status: status(401), Error: text("Unauthorized")}}},
			[]string{"Gateway: NOT OK", "WhatsApp: logged_out — the phone removed this device",
				"Telegram: error — Unauthorized (HTTP 401); the bot token was rejected: copy it from @BotFather"}},
		{schemas.HealthSummary{Web: schemas.WebHealth{State: schemas.WebReconnecting, Linked: true, LastError: "stream error"},
			Telegram: schemas.TelegramHealth{State: schemas.TelegramError, Configured: true},
			Services: []schemas.ServiceHealth{{Name: "agent", OK: false}, {Name: "presence", OK: true}}},
			[]string{"WhatsApp: reconnecting — stream error; retrying on its own",
				"Telegram: error — the Bot API is not answering; check the network",
				"agent DOWN (0ms), presence ok (0ms) — agent not answering its liveness ping"}},
		{schemas.HealthSummary{OK: true, Web: schemas.WebHealth{State: schemas.WebConnected, Linked: true},
			Telegram: schemas.TelegramHealth{State: schemas.TelegramPolling, Probe: &schemas.TelegramProbe{OK: true,
				Bot: &schemas.TelegramBot{Username: "my_bot"}}}},
			[]string{"WhatsApp: connected\n", "Telegram: polling (@my_bot)\n"}},
	} {
		got := formatHealth("ws://127.0.0.1:18789", tt.h)
		for _, w := range tt.want {
			if !strings.Contains(got, w) {
				t.Errorf("health text lacks %q:\n%s", w, got)
			}
		}
	}
}
