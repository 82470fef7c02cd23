package health

import (
	"strconv"
	"strings"
	"time"

	"github.com/clawdis/clawdis/bus/subject"
	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/schemas"
)

// status builds the StatusSummary at now with the given queued system events.
func (s snapshot) status(now time.Time, queued []string) schemas.StatusSummary {
	nowMs := now.UnixMilli()
	if queued == nil {
		queued = []string{}
	}
	sum := schemas.StatusSummary{
		Web: schemas.StatusWeb{
			Linked:    s.web.Linked,
			AuthAgeMs: authAge(s.web.AuthAtMs, nowMs),
		},
		HeartbeatSeconds:   s.heartbeatSeconds(),
		ProviderSummary:    s.providerLines(nowMs),
		QueuedSystemEvents: queued,
		Sessions: schemas.StatusSessions{
			Path:  s.meta(subject.ServiceSessions, wire.MetaStorePath),
			Count: s.sessions.count,
			Defaults: schemas.SessionDefaults{
				Backend: s.meta(subject.ServiceAgent, wire.MetaBackend),
				Model:   s.meta(subject.ServiceAgent, wire.MetaModel),
			},
			Recent: make([]schemas.StatusSession, 0, len(s.sessions.recent)),
		},
	}
	if wc := s.service(subject.ServiceWebChat); wc.ok && wc.meta[wire.MetaPort] != "" {
		sum.WebChatURL = "http://127.0.0.1:" + wc.meta[wire.MetaPort] + "/" // WebChat listens on loopback only
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

// providerLines are the plain-text provider lines of the status summary. A provider this
// gateway does not run is disabled; WebChat is enabled while its facts service answers.
func (s snapshot) providerLines(nowMs int64) []string {
	wc := s.service(subject.ServiceWebChat)
	return []string{
		whatsAppLine(s.web.Linked, s.web.State, s.web.Self, s.web.LastError, authAge(s.web.AuthAtMs, nowMs)),
		telegramLine(s.telegramConfigured(), s.telegram.State, s.telegram.Self, s.telegram.LastError,
			!s.listed(providerTelegram) && !s.telegramSeen),
		webChatLine(wc.ok, wc.meta[wire.MetaPort]),
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

// telegramLine describes the Telegram provider, e.g. "Telegram: configured (@bot)". It is
// disabled when the gateway does not run it.
func telegramLine(configured bool, state, self, lastError string, disabled bool) string {
	switch {
	case disabled:
		return "Telegram: disabled"
	case !configured:
		return "Telegram: not configured"
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

// webChatLine describes the WebChat server; port may be unknown ("").
func webChatLine(enabled bool, port string) string {
	switch {
	case !enabled:
		return "WebChat: disabled"
	case port == "":
		return "WebChat: enabled"
	default:
		return "WebChat: enabled (port " + port + ")"
	}
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
