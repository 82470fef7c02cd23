package health

import (
	"strconv"
	"strings"
	"time"

	"github.com/clawdis/clawdis/schemas"
)

// status builds the StatusSummary at now with the given queued system events.
func (s snapshot) status(cfg Config, now time.Time, queued []string) schemas.StatusSummary {
	nowMs := now.UnixMilli()
	if queued == nil {
		queued = []string{}
	}
	sum := schemas.StatusSummary{
		Web: schemas.StatusWeb{
			Linked:    s.web.Linked,
			AuthAgeMs: authAge(s.web.AuthAtMs, nowMs),
		},
		HeartbeatSeconds:   int64(cfg.HeartbeatSeconds),
		ProviderSummary:    s.providerLines(cfg, nowMs),
		QueuedSystemEvents: queued,
		Sessions: schemas.StatusSessions{
			Path:     cfg.SessionsPath,
			Count:    s.sessions.count,
			Defaults: schemas.SessionDefaults{Backend: cfg.AgentBackend, Model: cfg.AgentModel},
			Recent:   make([]schemas.StatusSession, 0, len(s.sessions.recent)),
		},
	}
	if sum.Sessions.Defaults.Backend == "" {
		sum.Sessions.Defaults.Backend = "none"
	}
	for _, r := range s.sessions.recent {
		e := schemas.StatusSession{
			Key:           r.Key,
			Kind:          sessionKind(r.Key),
			SessionID:     r.SessionID,
			UpdatedAt:     r.UpdatedAt,
			ThinkingLevel: r.ThinkingLevel,
		}
		if r.UpdatedAt > 0 {
			e.Age = max(nowMs-r.UpdatedAt, 0)
		}
		sum.Sessions.Recent = append(sum.Sessions.Recent, e)
	}
	return sum
}

// sessionKind is "group" for group session keys and "direct" for the others.
func sessionKind(key string) string {
	if strings.HasPrefix(key, "group:") {
		return "group"
	}
	return "direct"
}

// providerLines are the plain-text provider lines of the status summary.
func (s snapshot) providerLines(cfg Config, nowMs int64) []string {
	port := cfg.WebChatPort
	return []string{
		whatsAppLine(s.web.Linked, s.web.State, s.web.Self, s.web.LastError, authAge(s.web.AuthAtMs, nowMs)),
		telegramLine(s.telegram.Configured, s.telegram.State, s.telegram.Self, s.telegram.LastError,
			cfg.ProvidersDisabled && !s.telegramSeen),
		webChatLine(cfg.WebChatEnabled, port),
	}
}

// whatsAppLine describes the WhatsApp provider, e.g. "WhatsApp: linked as +4366012 (auth 3h
// ago)". A state other than connected (or unlinked when not linked) and a last error are
// appended.
func whatsAppLine(linked bool, state, self, lastError string, authAgeMs *int64) string {
	if state == schemas.WebDisabled {
		return "WhatsApp: disabled"
	}
	var b strings.Builder
	b.WriteString("WhatsApp: ")
	normal := schemas.WebUnlinked
	if linked {
		normal = schemas.WebConnected
		b.WriteString("linked")
		if self != "" {
			b.WriteString(" as " + self)
		}
		if authAgeMs != nil {
			b.WriteString(" (auth " + HumanAge(time.Duration(*authAgeMs)*time.Millisecond) + " ago)")
		}
	} else {
		b.WriteString("not linked")
	}
	if state != "" && state != normal {
		b.WriteString(", " + state)
	}
	if lastError != "" {
		b.WriteString(" (error: " + lastError + ")")
	}
	return b.String()
}

// telegramLine describes the Telegram provider, e.g. "Telegram: configured (@bot)".
func telegramLine(configured bool, state, self, lastError string, disabled bool) string {
	switch {
	case !configured:
		return "Telegram: not configured"
	case disabled:
		return "Telegram: disabled"
	case state == schemas.TelegramError:
		if lastError == "" {
			return "Telegram: error"
		}
		return "Telegram: error (" + lastError + ")"
	case self != "":
		return "Telegram: configured (@" + strings.TrimPrefix(self, "@") + ")"
	default:
		return "Telegram: configured"
	}
}

// webChatLine describes the WebChat server.
func webChatLine(enabled bool, port int) string {
	if !enabled {
		return "WebChat: disabled"
	}
	return "WebChat: enabled (port " + strconv.Itoa(port) + ")"
}

// HumanAge renders d in its largest whole unit: "42s", "5m", "3h", "2d". Negative durations
// count as zero.
func HumanAge(d time.Duration) string {
	switch {
	case d < time.Minute:
		return strconv.FormatInt(int64(max(d, 0)/time.Second), 10) + "s"
	case d < time.Hour:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	case d < 24*time.Hour:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	default:
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	}
}
