package telegram

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"

	tele "gopkg.in/telebot.v3"

	"github.com/clawdis/clawdis/services/provider"
	"github.com/clawdis/clawdis/services/telegram/telegramtest"
)

func TestSplitText(t *testing.T) {
	line := strings.Repeat("a", 9) + "\n" // 10 units
	for _, tt := range []struct {
		name  string
		text  string
		limit int
		want  []string
	}{
		{"short", "hello", 10, []string{"hello"}},
		{"empty", "  \n", 10, nil},
		{"at newline", line + line + "tail", 22, []string{line + strings.Repeat("a", 9), "tail"}},
		{"at space", "aaaa bbbb cccc", 10, []string{"aaaa bbbb", "cccc"}},
		{"hard cut", strings.Repeat("x", 25), 10, []string{strings.Repeat("x", 10), strings.Repeat("x", 10), strings.Repeat("x", 5)}},
		{"utf16 units", strings.Repeat("😀", 6), 4, []string{"😀😀", "😀😀", "😀😀"}},
		{"multibyte kept whole", "ééééé", 2, []string{"éé", "éé", "é"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := splitText(tt.text, tt.limit)
			if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", tt.want) {
				t.Errorf("splitText = %q, want %q", got, tt.want)
			}
			for _, c := range got {
				if utf16Len(c) > tt.limit {
					t.Errorf("chunk %q over the limit", c)
				}
			}
		})
	}
}

func TestNormalizeRecipient(t *testing.T) {
	for _, tt := range []struct {
		in, want string
		bad      bool
	}{
		{in: "42", want: "42"},
		{in: " -1001234 ", want: "-1001234"},
		{in: "telegram:42", want: "42"},
		{in: "@news_channel", want: "@news_channel"},
		{in: "@ab", bad: true},
		{in: "+43 660", bad: true},
		{in: "", bad: true},
	} {
		got, err := normalizeRecipient(tt.in)
		var rerr *provider.RecipientError
		switch {
		case tt.bad && !errors.As(err, &rerr):
			t.Errorf("normalizeRecipient(%q) = %q, %v; want a RecipientError", tt.in, got, err)
		case !tt.bad && (err != nil || string(got) != tt.want):
			t.Errorf("normalizeRecipient(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestMentions(t *testing.T) {
	for _, tt := range []struct {
		text string
		want bool
	}{
		{"@bot_name hi", true},
		{"hi @BOT_NAME.", true},
		{"hi @bot_name_2", false},
		{"mail me at x@bot_name", true},
		{"no mention", false},
	} {
		if got := mentions(tt.text, "bot_name"); got != tt.want {
			t.Errorf("mentions(%q) = %v", tt.text, got)
		}
	}
}

func TestClassify(t *testing.T) {
	for _, tt := range []struct {
		name       string
		err        error
		code       int
		retryAfter int
		isAPI      bool
	}{
		{"unauthorized", tele.ErrUnauthorized, 401, 0, true},
		{"conflict", fmt.Errorf("telegram: Conflict: terminated by other getUpdates request (409)"), 409, 0, true},
		{"parse", fmt.Errorf("telegram: Bad Request: can't parse entities: x (400)"), 400, 0, true},
		{"flood", realFloodError(t, 3), 429, 3, true},
		{"transport", errors.New("telebot: dial tcp: connection refused"), 0, 0, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ae, isAPI := classify(tt.err)
			if isAPI != tt.isAPI || ae.code != tt.code || ae.retryAfter != tt.retryAfter {
				t.Errorf("classify = %+v %v", ae, isAPI)
			}
		})
	}
}

// realFloodError returns the error telebot makes of a 429 answer of the fake API.
func realFloodError(t *testing.T, retry int) error {
	srv := telegramtest.New(testToken)
	defer srv.Close()
	srv.RateLimitOnce(retry)
	b, err := New(Config{Token: testToken, APIRoot: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.api(context.Background()).Send(recipient("42"), "x")
	var flood tele.FloodError
	if !errors.As(err, &flood) {
		t.Fatalf("telebot answered %v to a 429, want a FloodError", err)
	}
	return err
}

func TestRedact(t *testing.T) {
	b := &Bot{cfg: Config{Token: testToken}}
	inner := fmt.Errorf("dial: %w", context.Canceled)
	raw := fmt.Errorf("telebot: %w", &url.Error{Op: "Post", URL: "https://api.telegram.org/bot" + testToken + "/getMe", Err: inner})
	got := b.redact(raw)
	if strings.Contains(got.Error(), testToken) || !strings.Contains(got.Error(), "/bot"+redacted+"/getMe") {
		t.Errorf("redacted %q", got)
	}
	if !errors.Is(got, context.Canceled) {
		t.Error("redaction lost the cause")
	}
	plain := errors.New("telegram: chat not found (400)")
	if b.redact(plain) != plain {
		t.Error("an error without the token was changed")
	}
}

func TestKind(t *testing.T) {
	for mt, want := range map[string]string{
		"image/jpeg": "photo", "image/png": "photo", "image/gif": "document", "video/mp4": "video",
		"audio/ogg": "voice", "audio/mpeg": "audio", "application/pdf": "document", "": "document",
	} {
		if got := kind(mt); got != want {
			t.Errorf("kind(%q) = %q, want %q", mt, got, want)
		}
	}
}
