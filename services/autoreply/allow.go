package autoreply

import (
	"fmt"
	"strings"

	"github.com/clawdis/clawdis/bus/wire"
)

// Chat types of wire.InboundMessage.
const (
	chatDirect = "direct"
	chatGroup  = "group"
)

// allowlist is a set of normalised sender ids, or everyone.
type allowlist struct {
	all bool
	ids map[string]bool
}

// newAllowlist normalises entries with norm; "*" allows everyone. An entry that normalises
// to nothing (no digits in a phone number) is an error, so a typo never silently allows or
// denies.
func newAllowlist(entries []string, norm func(string) string) (allowlist, error) {
	a := allowlist{ids: map[string]bool{}}
	for _, e := range entries {
		if strings.TrimSpace(e) == "*" {
			a.all = true
			continue
		}
		n := norm(e)
		if n == "" {
			return a, fmt.Errorf("entry %q is not a valid id", e)
		}
		a.ids[n] = true
	}
	return a, nil
}

// has reports whether the raw id (normalised with norm) is allowed.
func (a allowlist) has(id string, norm func(string) string) bool {
	if a.all {
		return true
	}
	n := norm(id)
	return n != "" && a.ids[n]
}

// empty reports whether nothing was listed.
func (a allowlist) empty() bool { return !a.all && len(a.ids) == 0 }

// normE164 reduces a phone number to "+<digits>": a "whatsapp:" prefix, spaces, dashes, dots
// and parentheses are dropped; a JID's user part ("4366…@s.whatsapp.net") is read as the
// number. It returns "" when no digits remain or other characters appear.
func normE164(s string) string {
	s = strings.TrimSpace(s)
	if len(s) >= len("whatsapp:") && strings.EqualFold(s[:len("whatsapp:")], "whatsapp:") {
		s = s[len("whatsapp:"):]
	}
	if user, server, ok := strings.Cut(s, "@"); ok {
		if server != "s.whatsapp.net" {
			return "" // a LID or group JID is not a phone number
		}
		s, _, _ = strings.Cut(user, ":")
	}
	var b strings.Builder
	b.WriteByte('+')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			b.WriteByte(c)
		case c == '+' || c == ' ' || c == '-' || c == '.' || c == '(' || c == ')' || c == '\t':
		default:
			return ""
		}
	}
	if b.Len() == 1 {
		return ""
	}
	return b.String()
}

// normTelegramID trims a Telegram user or chat id; ids are compared as written (numbers,
// negative for groups).
func normTelegramID(s string) string { return strings.TrimSpace(s) }

// allow decides whether msg gets an answer: direct chats answer allowlisted senders (for
// WhatsApp the owner always); groups answer when mentioned (the Mentioned flag or a mention
// pattern) unless the provider's mention requirement is off. Group senders are not checked
// against the allowlist: whoever can mention the account in a group it is in may ask. It
// returns "" when allowed, else why not.
func (s settings) allow(msg wire.InboundMessage) (denied string) {
	switch msg.ChatType {
	case chatGroup:
		need := s.groupMention
		if msg.Provider == ProviderTelegram {
			need = s.telegramMention
		}
		if !need || msg.Mentioned || s.mentionMatch(msg.Text) {
			return ""
		}
		return "group message without a mention"
	case chatDirect:
	default:
		return fmt.Sprintf("unknown chat type %q", msg.ChatType)
	}
	switch msg.Provider {
	case ProviderWhatsApp:
		owner := msg.ToSelf || (msg.Self != "" && normE164(msg.From) != "" && normE164(msg.From) == normE164(msg.Self))
		if owner || s.whatsapp.has(msg.From, normE164) {
			return ""
		}
		if s.whatsapp.empty() {
			return "sender is not the owner (no allowlist set)"
		}
	case ProviderTelegram:
		if s.telegram.has(msg.From, normTelegramID) || s.telegram.has(msg.ChatID, normTelegramID) {
			return ""
		}
	}
	return "sender not in the allowlist"
}

// mentionMatch reports whether text matches a mention pattern.
func (s settings) mentionMatch(text string) bool {
	for _, re := range s.patterns {
		if re.MatchString(text) {
			return true
		}
	}
	return false
}
