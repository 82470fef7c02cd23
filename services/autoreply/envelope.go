package autoreply

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"time"

	"github.com/clawdis/clawdis/bus/wire"
)

// maxKeyLen bounds the sanitised part of a run key.
const maxKeyLen = 160

// runKey is the agent run's idempotency key (and so its runId) of an inbound message:
// "auto-<provider>-<chatId>-<messageId>" reduced to letters, digits, '_' and '-' so it is
// usable as a subject token and a file name. When reducing changed or shortened anything, a
// hash of the original is appended so that two different messages never share a key.
func runKey(msg wire.InboundMessage) string {
	raw := "auto-" + msg.Provider + "-" + msg.ChatID + "-" + msg.MessageID
	var b strings.Builder
	changed := false
	for _, r := range raw {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
			changed = true
		}
	}
	key := b.String()
	if len(key) > maxKeyLen {
		key, changed = key[:maxKeyLen], true
	}
	if changed {
		sum := sha256.Sum256([]byte(raw))
		key += "-" + hex.EncodeToString(sum[:6])
	}
	return key
}

// replyKey is the provider send's idempotency key of the reply to the run runKey.
func replyKey(runKey string) string { return runKey + "-reply" }

// sessionKey is the agent session of a message: the main key for direct chats,
// "group:<chatId>" for groups.
func (s settings) sessionKey(msg wire.InboundMessage) string {
	if msg.ChatType == chatGroup {
		return "group:" + msg.ChatID
	}
	return s.MainKey
}

// providerName is how the envelope names a provider.
func providerName(id string) string {
	switch id {
	case ProviderWhatsApp:
		return "WhatsApp"
	case ProviderTelegram:
		return "Telegram"
	}
	return id
}

// envelope is the agent prompt of msg: "[<Provider> <sender> <RFC3339 local time>] <text>",
// then one line per media attachment "<media:<type>> <path>" (no path when the download
// failed). The time is the network's stamp, or now when it has none.
func (s settings) envelope(msg wire.InboundMessage) string {
	ts := s.Now()
	if msg.Ts > 0 {
		ts = time.UnixMilli(msg.Ts)
	}
	var b strings.Builder
	b.WriteString("[")
	b.WriteString(providerName(msg.Provider))
	b.WriteString(" ")
	b.WriteString(msg.From)
	b.WriteString(" ")
	b.WriteString(ts.In(s.Location).Format(time.RFC3339))
	b.WriteString("]")
	text := msg.Text
	if len(msg.Media) > 0 && text == "<media:"+msg.Media[0].Type+">" {
		text = "" // the provider's placeholder for a caption-less attachment; the line follows
	}
	if text != "" {
		b.WriteString(" ")
		b.WriteString(text)
	}
	for _, m := range msg.Media {
		b.WriteString("\n<media:")
		b.WriteString(m.Type)
		b.WriteString(">")
		if m.Path != "" {
			b.WriteString(" ")
			b.WriteString(m.Path)
		}
	}
	return b.String()
}
