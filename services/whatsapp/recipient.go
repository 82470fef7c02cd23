package whatsapp

import (
	"strings"

	"github.com/clawdis/clawdis/services/provider"
	"go.mau.fi/whatsmeow/types"
)

// NormalizeRecipient turns a recipient as a client gave it into a WhatsApp JID:
//
//   - an E.164 number with or without "+", with spaces, dashes, dots or parentheses, and an
//     optional "whatsapp:" prefix -> "<digits>@s.whatsapp.net";
//   - a user JID "<digits>@s.whatsapp.net" (a device suffix is dropped) or a group JID
//     "…@g.us" is kept;
//   - a hidden-user JID "<digits>@lid" is kept: inbound chats that cannot be resolved to a
//     phone number carry one as their ChatID, and replies must reach them.
//
// Anything else is a *provider.RecipientError.
func NormalizeRecipient(to string) (types.JID, error) {
	bad := func(reason string) (types.JID, error) {
		return types.EmptyJID, &provider.RecipientError{To: to, Reason: reason}
	}
	s := strings.TrimSpace(to)
	if len(s) >= len("whatsapp:") && strings.EqualFold(s[:len("whatsapp:")], "whatsapp:") {
		s = strings.TrimSpace(s[len("whatsapp:"):])
	}
	if s == "" {
		return bad("empty")
	}
	if user, server, ok := strings.Cut(s, "@"); ok {
		switch strings.ToLower(server) {
		case types.DefaultUserServer, types.HiddenUserServer:
			user, _, _ = strings.Cut(user, ":") // drop a device suffix
			if !allDigits(user) || len(user) < 5 || len(user) > 20 {
				return bad("the user part of a user JID must be a phone number")
			}
			return types.NewJID(user, strings.ToLower(server)), nil
		case types.GroupServer:
			if !validGroupID(user) {
				return bad("malformed group JID")
			}
			return types.NewJID(user, types.GroupServer), nil
		default:
			return bad("only …@s.whatsapp.net, …@lid and …@g.us JIDs are supported")
		}
	}
	digits := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			digits = append(digits, c)
		case c == '+' && len(digits) == 0 && i == strings.IndexByte(s, '+'):
			// a single leading plus
		case c == ' ' || c == '-' || c == '(' || c == ')' || c == '.' || c == '\t':
		default:
			return bad("not a phone number or WhatsApp JID")
		}
	}
	// E.164 allows at most 15 digits; the shortest real numbers have 7 or more.
	if len(digits) < 7 || len(digits) > 15 {
		return bad("a phone number has 7 to 15 digits")
	}
	if digits[0] == '0' {
		return bad("the number must start with its country code (E.164)")
	}
	return types.NewJID(string(digits), types.DefaultUserServer), nil
}

// validGroupID accepts "<digits>" and the older "<digits>-<digits>" group ids.
func validGroupID(id string) bool {
	a, b, two := strings.Cut(id, "-")
	if !allDigits(a) || (two && !allDigits(b)) {
		return false
	}
	return true
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// e164 renders a phone-number JID as E.164 ("+4366…"); other JIDs render as their string.
func e164(jid types.JID) string {
	if jid.Server == types.DefaultUserServer && allDigits(jid.User) {
		return "+" + jid.User
	}
	return jid.ToNonAD().String()
}
