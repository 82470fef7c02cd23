package whatsapp

import (
	"errors"
	"testing"

	"github.com/clawdis/clawdis/services/provider"
)

func TestNormalizeRecipient(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want string // "" = *provider.RecipientError
	}{
		{"+436641234567", "436641234567@s.whatsapp.net"},
		{"436641234567", "436641234567@s.whatsapp.net"},
		{"+43 664 123 45 67", "436641234567@s.whatsapp.net"},
		{"+1 (415) 555-2671", "14155552671@s.whatsapp.net"},
		{"whatsapp:+4915112345678", "4915112345678@s.whatsapp.net"},
		{"WhatsApp: +49-151-1234-5678", "4915112345678@s.whatsapp.net"},
		{"  +436641234567  ", "436641234567@s.whatsapp.net"},
		{"436641234567@s.whatsapp.net", "436641234567@s.whatsapp.net"},
		{"436641234567:12@s.whatsapp.net", "436641234567@s.whatsapp.net"},
		{"120363041234567890@g.us", "120363041234567890@g.us"},
		{"436641234567-1600000000@g.us", "436641234567-1600000000@g.us"},
		{"whatsapp:120363041234567890@g.us", "120363041234567890@g.us"},
		{"123456789012345@lid", "123456789012345@lid"},
		{"", ""},
		{"   ", ""},
		{"whatsapp:", ""},
		{"hello", ""},
		{"+43 664 abc", ""},
		{"++436641234567", ""},
		{"43+6641234567", ""},
		{"12345", ""},              // too short
		{"+1234567890123456", ""},  // 16 digits
		{"06641234567", ""},        // national format, no country code
		{"bob@example.com", ""},    // unknown server
		{"abc@s.whatsapp.net", ""}, // non-numeric user
		{"abc@g.us", ""},
		{"@g.us", ""},
		{"status@broadcast", ""},
	} {
		t.Run(tt.in, func(t *testing.T) {
			got, err := NormalizeRecipient(tt.in)
			if tt.want == "" {
				var re *provider.RecipientError
				if !errors.As(err, &re) || re.To != tt.in || re.Reason == "" {
					t.Fatalf("NormalizeRecipient(%q) = %v, %v; want a RecipientError", tt.in, got, err)
				}
				return
			}
			if err != nil || got.String() != tt.want {
				t.Fatalf("NormalizeRecipient(%q) = %v, %v; want %s", tt.in, got, err, tt.want)
			}
		})
	}
}
