package main

import (
	"fmt"
	"strings"

	"github.com/clawdis/clawdis/schemas"
)

// formatHealth is the readable health summary: one line per part, and for every part that
// is not fine, the reason and the next step.
func formatHealth(url string, h schemas.HealthSummary) string {
	var b strings.Builder
	state := "ok"
	if !h.OK {
		state = "NOT OK"
	}
	fmt.Fprintf(&b, "Gateway: %s (%s)\n", state, url)
	fmt.Fprintln(&b, "WhatsApp: "+webLine(h.Web))
	fmt.Fprintln(&b, "Telegram: "+telegramLine(h.Telegram, h.Web.State == schemas.WebDisabled))
	fmt.Fprintf(&b, "Sessions: %d (%s)\n", h.Sessions.Count, h.Sessions.Path)
	var svcs, down []string
	for _, s := range h.Services {
		st := "ok"
		if !s.OK {
			st = "DOWN"
			down = append(down, s.Name)
		}
		svcs = append(svcs, fmt.Sprintf("%s %s (%dms)", s.Name, st, s.LatencyMs))
	}
	line := "Services: " + strings.Join(svcs, ", ")
	if len(down) > 0 {
		line += " — " + strings.Join(down, ", ") + " not answering its liveness ping: see the gateway's log " +
			"(in a split deployment, is `clawdis service " + down[0] + "` running?)"
	}
	fmt.Fprintln(&b, line)
	return b.String()
}

// needsAttention names the providers whose state needs the owner (an error, or a link the
// phone ended): the gateway runs, but they do not work until someone acts.
func needsAttention(h schemas.HealthSummary) []string {
	var out []string
	switch h.Web.State {
	case schemas.WebLoggedOut, schemas.WebReplaced:
		out = append(out, "WhatsApp")
	}
	if h.Telegram.State == schemas.TelegramError {
		out = append(out, "Telegram")
	}
	return out
}

// formatGatewayLines are the first lines of status: the gateway's address, version and
// uptime (from its hello-ok) and its config file.
func formatGatewayLines(url string, hello schemas.HelloOK, st schemas.StatusSummary) string {
	var b strings.Builder
	line := "Gateway: " + url
	if v := hello.Server.Version; v != "" {
		line += " · version " + v
	}
	if up := hello.Snapshot.UptimeMs; up > 0 {
		line += " · up " + humanMs(up)
	}
	fmt.Fprintln(&b, line)
	if st.ConfigPath != "" {
		fmt.Fprintln(&b, "Config: "+homeTilde(st.ConfigPath))
	}
	return b.String()
}

// webLine is the WhatsApp state with its reason and next step.
func webLine(w schemas.WebHealth) string {
	line := w.State
	if w.Linked && w.AuthAgeMs != nil {
		line += fmt.Sprintf(" (linked, auth %s ago)", humanMs(*w.AuthAgeMs))
	}
	next := ""
	switch w.State {
	case schemas.WebUnlinked, "":
		next = "not linked: stop the gateway, run `clawdis login`, start it again"
	case schemas.WebLoggedOut:
		next = "the phone removed this device: stop the gateway, run `clawdis login`, start it again"
	case schemas.WebReplaced:
		next = "another client opened this link and took it over: stop the other copy, then restart the gateway"
	case schemas.WebConnecting, schemas.WebReconnecting:
		next = "retrying on its own"
	case schemas.WebDisabled:
		next = "providers are off (--no-providers)"
	}
	switch {
	case w.LastError != "" && next != "":
		return line + " — " + w.LastError + "; " + next
	case w.LastError != "":
		return line + " — " + w.LastError
	case next != "":
		return line + " — " + next
	}
	return line
}

// telegramLine is the Telegram state with the bot, or the reason and next step;
// providersOff says the gateway runs no providers at all.
func telegramLine(t schemas.TelegramHealth, providersOff bool) string {
	line := t.State
	p := t.Probe
	if p != nil && p.Bot != nil {
		line += " (@" + p.Bot.Username + ")"
	}
	switch t.State {
	case schemas.TelegramUnconfigured, "":
		if providersOff {
			return line + " — providers are off (--no-providers)"
		}
		return line + " — set TELEGRAM_BOT_TOKEN (or telegram.botToken) to use a bot"
	case schemas.TelegramStarting:
		return line + " — connecting to the Bot API"
	case schemas.TelegramError:
		reason := "the Bot API is not answering"
		if p != nil && p.Error != nil && *p.Error != "" {
			reason = *p.Error
		}
		if p != nil && p.Status != nil {
			reason += fmt.Sprintf(" (HTTP %d)", *p.Status)
		}
		next := "check the network, telegram.apiRoot and telegram.proxy; it retries on its own"
		if p != nil && p.Status != nil && (*p.Status == 401 || *p.Status == 404) {
			next = "the bot token was rejected: copy it from @BotFather into TELEGRAM_BOT_TOKEN and restart the gateway"
		}
		return line + " — " + reason + "; " + next
	}
	return line
}
