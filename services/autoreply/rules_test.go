package autoreply

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/clawdis/clawdis/bus/wire"
)

func TestNormE164(t *testing.T) {
	tests := []struct{ in, want string }{
		{"+43 660 123-4567", "+436601234567"},
		{"436601234567", "+436601234567"},
		{"whatsapp:+1 (555) 000.1111", "+15550001111"},
		{"436601234567@s.whatsapp.net", "+436601234567"},
		{"436601234567:12@s.whatsapp.net", "+436601234567"},
		{"123456@lid", ""},
		{"120363@g.us", ""},
		{"", ""},
		{"+", ""},
		{"abc", ""},
		{"+43 660 x", ""},
	}
	for _, tt := range tests {
		if got := normE164(tt.in); got != tt.want {
			t.Errorf("normE164(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestAllow(t *testing.T) {
	direct := func(provider, from string) wire.InboundMessage {
		return wire.InboundMessage{Provider: provider, ChatType: chatDirect, From: from, ChatID: from, Self: "+15550001111"}
	}
	group := func(provider, text string, mentioned bool) wire.InboundMessage {
		return wire.InboundMessage{Provider: provider, ChatType: chatGroup, From: "+436601234567", Text: text, Mentioned: mentioned}
	}
	tgGroupChat := wire.InboundMessage{Provider: ProviderTelegram, ChatType: chatDirect, From: "777", ChatID: "-100555"}
	tests := []struct {
		name  string
		cfg   Config
		msg   wire.InboundMessage
		allow bool
	}{
		{"wa owner by default", Config{}, direct(ProviderWhatsApp, "+1 555 000 1111"), true},
		{"wa stranger by default", Config{}, direct(ProviderWhatsApp, "+436601234567"), false},
		{"wa to self", Config{}, wire.InboundMessage{Provider: ProviderWhatsApp, ChatType: chatDirect, ToSelf: true}, true},
		{"wa no self known", Config{}, wire.InboundMessage{Provider: ProviderWhatsApp, ChatType: chatDirect, From: "+1"}, false},
		{"wa listed, other spelling", Config{WhatsAppAllowFrom: []string{"whatsapp:+43-660-1234567"}}, direct(ProviderWhatsApp, "+436601234567"), true},
		{"wa owner with a list", Config{WhatsAppAllowFrom: []string{"+436601234567"}}, direct(ProviderWhatsApp, "+15550001111"), true},
		{"wa unlisted", Config{WhatsAppAllowFrom: []string{"+436601234567"}}, direct(ProviderWhatsApp, "+436607654321"), false},
		{"wa lid sender never matches", Config{WhatsAppAllowFrom: []string{"+436601234567"}}, direct(ProviderWhatsApp, "436601234567@lid"), false},
		{"wa star", Config{WhatsAppAllowFrom: []string{"*"}}, direct(ProviderWhatsApp, "+436607654321"), true},
		{"tg nobody by default", Config{}, direct(ProviderTelegram, "12345"), false},
		{"tg listed user", Config{TelegramAllowFrom: []string{" 12345 "}}, direct(ProviderTelegram, "12345"), true},
		{"tg unlisted user", Config{TelegramAllowFrom: []string{"12345"}}, direct(ProviderTelegram, "1234"), false},
		{"tg listed chat", Config{TelegramAllowFrom: []string{"-100555"}}, tgGroupChat, true},
		{"tg star", Config{TelegramAllowFrom: []string{"*"}}, direct(ProviderTelegram, "1"), true},
		{"tg allowlist is not whatsapp's", Config{WhatsAppAllowFrom: []string{"*"}}, direct(ProviderTelegram, "1"), false},
		{"group without mention", Config{}, group(ProviderWhatsApp, "hello", false), false},
		{"group mentioned", Config{}, group(ProviderWhatsApp, "hello", true), true},
		{"group pattern", Config{MentionPatterns: []string{`^@?clawd\b`}}, group(ProviderWhatsApp, "@Clawd do it", false), true},
		{"group pattern no match", Config{MentionPatterns: []string{`^@?clawd\b`}}, group(ProviderWhatsApp, "ask clawd", false), false},
		{"group mention not required", Config{GroupRequireMention: ptr(false)}, group(ProviderWhatsApp, "hello", false), true},
		{"group mention required explicitly", Config{GroupRequireMention: ptr(true)}, group(ProviderWhatsApp, "hello", false), false},
		{"tg group mention still required", Config{GroupRequireMention: ptr(false)}, group(ProviderTelegram, "hello", false), false},
		{"tg group mention not required", Config{TelegramRequireMention: ptr(false)}, group(ProviderTelegram, "hello", false), true},
		{"tg group mentioned", Config{}, group(ProviderTelegram, "@bot hi", true), true},
		{"unknown chat type", Config{WhatsAppAllowFrom: []string{"*"}}, wire.InboundMessage{Provider: ProviderWhatsApp, ChatType: "channel"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := tt.cfg.validate()
			if err != nil {
				t.Fatal(err)
			}
			why := s.allow(tt.msg)
			if (why == "") != tt.allow {
				t.Fatalf("allow = %q, want allowed=%v", why, tt.allow)
			}
		})
	}
}

func TestRunKey(t *testing.T) {
	safe := regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
	msg := func(provider, chat, id string) wire.InboundMessage {
		return wire.InboundMessage{Provider: provider, ChatID: chat, MessageID: id}
	}
	if got := runKey(msg("telegram", "12345", "678")); got != "auto-telegram-12345-678" {
		t.Fatalf("clean key changed: %s", got)
	}
	keys := map[string]string{}
	for _, m := range []wire.InboundMessage{
		msg("telegram", "12345", "678"),
		msg("telegram", "-100200", "1"),
		msg("whatsapp", "4366@s.whatsapp.net", "3EB0"),
		msg("whatsapp", "4366_s_whatsapp_net", "3EB0"), // would collide without the hash
		msg("whatsapp", "4366@s.whatsapp.net", "3EB0 "),
		msg("whatsapp", "4366@s.whatsapp.net", strings.Repeat("x", 500)),
		msg("whatsapp", "4366@s.whatsapp.net", strings.Repeat("x", 499)+"y"),
		msg("whatsapp", "grüße", "ä/../b"),
	} {
		k := runKey(m)
		if !safe.MatchString(k) || len(k) > maxKeyLen+13 {
			t.Errorf("runKey(%+v) = %q: unsafe or too long", m, k)
		}
		if k != runKey(m) {
			t.Errorf("runKey(%+v) is not stable", m)
		}
		raw := m.Provider + "|" + m.ChatID + "|" + m.MessageID
		if prev, dup := keys[k]; dup {
			t.Errorf("%q and %q share key %q", prev, raw, k)
		}
		keys[k] = raw
	}
	if replyKey("k") != "k-reply" {
		t.Fatal("reply key")
	}
}

func TestEnvelope(t *testing.T) {
	vienna, err := time.LoadLocation("Europe/Vienna")
	if err != nil {
		vienna = time.FixedZone("CET", 3600)
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	s, err := Config{Location: vienna, Now: func() time.Time { return now }}.validate()
	if err != nil {
		t.Fatal(err)
	}
	ts := time.Date(2026, 1, 15, 9, 30, 0, 0, time.UTC).UnixMilli()
	tests := []struct {
		name string
		msg  wire.InboundMessage
		want string
	}{
		{"text", wire.InboundMessage{Provider: "whatsapp", From: "+4366", Text: "hi there", Ts: ts},
			"[WhatsApp +4366 2026-01-15T10:30:00+01:00] hi there"},
		{"telegram, no stamp uses now", wire.InboundMessage{Provider: "telegram", From: "12345", Text: "yo"},
			"[Telegram 12345 2026-01-02T04:04:05+01:00] yo"},
		{"caption and media", wire.InboundMessage{Provider: "whatsapp", From: "+4366", Text: "look", Ts: ts,
			Media: []wire.InboundMedia{{Type: "image", Path: "/m/a.jpg"}, {Type: "document", Path: "/m/b.pdf"}}},
			"[WhatsApp +4366 2026-01-15T10:30:00+01:00] look\n<media:image> /m/a.jpg\n<media:document> /m/b.pdf"},
		{"placeholder text, failed download", wire.InboundMessage{Provider: "whatsapp", From: "+4366", Text: "<media:audio>", Ts: ts,
			Media: []wire.InboundMedia{{Type: "audio"}}},
			"[WhatsApp +4366 2026-01-15T10:30:00+01:00]\n<media:audio>"},
	}
	for _, tt := range tests {
		if got := s.envelope(tt.msg); got != tt.want {
			t.Errorf("%s:\n got %q\nwant %q", tt.name, got, tt.want)
		}
	}
	if got := s.sessionKey(wire.InboundMessage{ChatType: chatGroup, ChatID: "1@g.us"}); got != "group:1@g.us" {
		t.Errorf("group session key %q", got)
	}
	if got := s.sessionKey(wire.InboundMessage{ChatType: chatDirect, ChatID: "1"}); got != "main" {
		t.Errorf("direct session key %q", got)
	}
}

func TestConfigValidate(t *testing.T) {
	bad := []struct {
		name string
		cfg  Config
		want string
	}{
		{"unknown provider", Config{Providers: []string{"sms"}}, "unknown provider"},
		{"provider twice", Config{Providers: []string{"telegram", "telegram"}}, "twice"},
		{"bad pattern", Config{MentionPatterns: []string{"("}}, "mention pattern"},
		{"bad number", Config{WhatsAppAllowFrom: []string{"+43 abc"}}, "WhatsAppAllowFrom"},
		{"empty telegram id", Config{TelegramAllowFrom: []string{" "}}, "TelegramAllowFrom"},
		{"negative timeout", Config{RunTimeout: -time.Second}, "RunTimeout"},
		{"negative concurrency", Config{MaxConcurrent: -1}, "MaxConcurrent"},
		{"backoff order", Config{RetryInitial: time.Minute, RetryMax: time.Second}, "RetryInitial"},
		{"main key spaces", Config{MainKey: " main"}, "MainKey"},
	}
	for _, tt := range bad {
		if _, err := tt.cfg.validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want one containing %q", tt.name, err, tt.want)
		}
	}
	s, err := Config{RunTimeout: 1500 * time.Millisecond}.validate()
	if err != nil {
		t.Fatal(err)
	}
	if s.MainKey != "main" || len(s.Providers) != 2 || s.MaxConcurrent != DefaultMaxConcurrent ||
		!s.groupMention || !s.telegramMention || *s.runTimeoutSeconds() != 2 {
		t.Fatalf("defaults not applied: %+v", s)
	}
	if (settings{}).runTimeoutSeconds() != nil {
		t.Fatal("zero RunTimeout must leave the agent's default")
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second,
		32 * time.Second, time.Minute, time.Minute}
	for i, w := range want {
		if got := s.backoff(i + 1); got != w {
			t.Errorf("backoff(%d) = %s, want %s", i+1, got, w)
		}
	}
}

func TestEchoGuard(t *testing.T) {
	now := time.Unix(1700000000, 0)
	g := newEchoGuard(func() time.Time { return now })
	self := wire.InboundMessage{Provider: "whatsapp", ChatID: "1@s.whatsapp.net", MessageID: "x", Text: " reply ", ToSelf: true}
	g.expectText("whatsapp", self.ChatID, "reply")
	if !g.isEcho(self) {
		t.Fatal("text echo to self not recognised")
	}
	if g.isEcho(self) {
		t.Fatal("a text echo is recognised once only")
	}
	other := self
	other.ToSelf = false
	g.expectText("whatsapp", self.ChatID, "reply")
	if g.isEcho(other) {
		t.Fatal("text match outside a chat to yourself")
	}
	g.sent("whatsapp", "chat", "id-1")
	byID := wire.InboundMessage{Provider: "whatsapp", ChatID: "chat", MessageID: "id-1"}
	if !g.isEcho(byID) {
		t.Fatal("id echo not recognised")
	}
	now = now.Add(echoTTL + time.Second)
	if g.isEcho(byID) {
		t.Fatal("expired id still recognised")
	}
	for i := range echoMaxKeys + 10 {
		g.sent("whatsapp", "chat", strings.Repeat("i", i%50)+string(rune('a'+i%26))+time.Duration(i).String())
	}
	if n := g.keys.Len(); n > echoMaxKeys {
		t.Fatalf("guard holds %d keys, cap %d", n, echoMaxKeys)
	}
}
