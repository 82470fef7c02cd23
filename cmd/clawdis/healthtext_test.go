package main

import (
	"path/filepath"
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
		{schemas.HealthSummary{OK: true, Web: schemas.WebHealth{State: schemas.WebDisabled},
			Telegram: schemas.TelegramHealth{State: schemas.TelegramUnconfigured}},
			[]string{"WhatsApp: disabled — providers are off", "Telegram: unconfigured — providers are off (--no-providers)"}},
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

// TestNeedsAttention: health exits non-zero for provider states that need the owner, even
// while every service answers.
func TestNeedsAttention(t *testing.T) {
	for _, tt := range []struct {
		web, telegram string
		want          string
	}{
		{schemas.WebConnected, schemas.TelegramPolling, ""},
		{schemas.WebUnlinked, schemas.TelegramUnconfigured, ""}, // nothing set up is not a fault
		{schemas.WebReconnecting, schemas.TelegramStarting, ""}, // retrying on its own
		{schemas.WebLoggedOut, schemas.TelegramPolling, "WhatsApp"},
		{schemas.WebReplaced, schemas.TelegramError, "WhatsApp Telegram"},
		{schemas.WebConnected, schemas.TelegramError, "Telegram"},
	} {
		h := schemas.HealthSummary{OK: true, Web: schemas.WebHealth{State: tt.web}, Telegram: schemas.TelegramHealth{State: tt.telegram}}
		if got := strings.Join(needsAttention(h), " "); got != tt.want {
			t.Errorf("%s/%s: %q, want %q", tt.web, tt.telegram, got, tt.want)
		}
	}
}

// TestStatusShowsGatewayFacts: status starts with the gateway's address, version, uptime and
// config file, and gives WebChat's URL.
func TestStatusShowsGatewayFacts(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	t.Setenv("CLAWDIS_GATEWAY_TOKEN", "")
	state := t.TempDir()
	d := startDaemon(t, state, `{"gateway":{"token":"tok"}}`, func(df *daemonFlags) {
		df.configPath = filepath.Join(state, "clawdis.json")
		df.token = "tok"
	})
	out, errOut, code := runCLI(t, []string{"HOME=" + t.TempDir()}, "status", "--url", d.url, "--token", "tok")
	if code != 0 {
		t.Fatalf("status: exit %d: %s", code, errOut)
	}
	lines := strings.Split(out, "\n")
	if !strings.HasPrefix(lines[0], "Gateway: "+d.url+" · version ") || !strings.Contains(lines[0], " · up ") {
		t.Errorf("first line %q, want the URL, version and uptime", lines[0])
	}
	if want := "Config: " + filepath.Join(state, "clawdis.json"); lines[1] != want {
		t.Errorf("second line %q, want %q", lines[1], want)
	}
}
