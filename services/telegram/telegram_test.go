package telegram

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/clawdis/clawdis/bus/subject"
	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/schemas"
	"github.com/clawdis/clawdis/services/provider"
	"github.com/clawdis/clawdis/services/telegram/telegramtest"
)

const botSelf = "@" + telegramtest.BotUsername

func TestInboundMessages(t *testing.T) {
	h := newHarness(t, nil)
	if st := h.waitPolling(); st.Self != botSelf || !st.Configured || !st.Connected {
		t.Errorf("polling state %+v", st)
	}
	botUser := h.srv.Bot()
	reply := telegramtest.GroupText(-1001234, 43, "pls help")
	reply.ReplyToMessage = &telegramtest.Message{MessageID: 1, From: &botUser, Chat: reply.Chat, Text: "earlier"}
	for _, tt := range []struct {
		name      string
		msg       telegramtest.Message
		chatType  string
		mentioned bool
	}{
		{"direct", telegramtest.DirectText(42, "hello bot"), "direct", false},
		{"group without mention", telegramtest.GroupText(-1001234, 43, "hello all"), "group", false},
		{"group with mention", telegramtest.GroupText(-1001234, 43, "hey @Clawdis_Test_Bot, do it"), "group", true},
		{"longer name is no mention", telegramtest.GroupText(-1001234, 43, "@clawdis_test_bot2 hi"), "group", false},
		{"reply to the bot", reply, "group", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sent := h.srv.InjectMessage(tt.msg)
			got := h.waitInbound()
			want := wire.InboundMessage{
				Provider:  subject.ServiceTelegram,
				MessageID: itoa(int64(sent.MessageID)),
				ChatID:    itoa(sent.Chat.ID),
				ChatType:  tt.chatType,
				From:      itoa(sent.From.ID),
				FromName:  "Ada",
				Self:      botSelf,
				Mentioned: tt.mentioned,
				Text:      tt.msg.Text,
				Ts:        sent.Date * 1000,
			}
			if !equalInbound(got, want) {
				t.Errorf("inbound\n got %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestInboundMediaDownload(t *testing.T) {
	dir := t.TempDir()
	h := newHarness(t, func(c *Config) { c.MediaDir = dir; c.MediaMaxMB = 1 })
	h.waitPolling()

	small := bytes.Repeat([]byte("\xff\xd8jpeg"), 100)
	id := h.srv.AddFile(small)
	m := telegramtest.DirectText(42, "")
	m.Caption = "look"
	m.Photo = []telegramtest.PhotoSize{{FileID: "thumb", Width: 1, Height: 1}, {FileID: id, Width: 9, Height: 9, FileSize: int64(len(small))}}
	h.srv.InjectMessage(m)
	got := h.waitInbound()
	if got.Text != "look" || len(got.Media) != 1 || got.Media[0].Type != "image" || got.Media[0].Path == "" {
		t.Fatalf("inbound %+v", got)
	}
	if b, err := os.ReadFile(got.Media[0].Path); err != nil || !bytes.Equal(b, small) {
		t.Errorf("downloaded file: %v", err)
	}
	if filepath.Dir(got.Media[0].Path) != dir {
		t.Errorf("media saved at %s, want under %s", got.Media[0].Path, dir)
	}

	big := make([]byte, 2<<20) // over MediaMaxMB, and the size is not announced
	doc := telegramtest.DirectText(42, "")
	doc.Document = &telegramtest.Document{FileID: h.srv.AddFile(big), FileName: "big.bin", MimeType: "application/octet-stream"}
	h.srv.InjectMessage(doc)
	got = h.waitInbound()
	if len(got.Media) != 1 || got.Media[0].Type != "document" || got.Media[0].Path != "" {
		t.Errorf("oversized media %+v", got.Media)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("media dir holds %d files, want only the small one", len(entries))
	}
}

func TestLongTextSplitsIntoTwoMessages(t *testing.T) {
	h := newHarness(t, nil)
	h.waitPolling()
	var b strings.Builder
	for b.Len() < 5000 {
		b.WriteString(strings.Repeat("x", 99) + "\n")
	}
	text := b.String()[:5000]
	res, werr := h.send(schemas.SendParams{To: "42", Message: text})
	if werr != nil {
		t.Fatalf("send: %v", werr)
	}
	first, second := h.nextSent(), h.nextSent()
	if res.ChatID != "42" || res.MessageID != itoa(int64(first.MessageID)) || res.Provider != "telegram" {
		t.Errorf("result %+v, first message %+v", res, first)
	}
	if len(first.Text) > maxChunk || len(second.Text) > maxChunk || !strings.HasSuffix(first.Text, "x") {
		t.Errorf("chunks of %d and %d chars; the first must end at a line", len(first.Text), len(second.Text))
	}
	if first.Text+"\n"+second.Text != text {
		t.Error("the chunks do not add up to the text")
	}
	if n := h.srv.Calls("sendMessage"); n != 2 {
		t.Errorf("%d sendMessage calls, want 2", n)
	}
}

func TestMarkdownParseErrorFallsBackToPlain(t *testing.T) {
	h := newHarness(t, nil)
	h.waitPolling()
	h.srv.FailMarkdownOnce()
	if _, werr := h.send(schemas.SendParams{To: "42", Message: "unbalanced *bold"}); werr != nil {
		t.Fatalf("send: %v", werr)
	}
	got := h.nextSent()
	if got.Text != "unbalanced *bold" || got.ParseMode != "" {
		t.Errorf("sent %+v, want plain text", got)
	}
	if n := h.srv.Calls("sendMessage"); n != 2 {
		t.Errorf("%d sendMessage calls, want 2 (Markdown, then plain)", n)
	}

	if _, werr := h.send(schemas.SendParams{To: "42", Message: "*fine*"}); werr != nil {
		t.Fatalf("send: %v", werr)
	}
	if got := h.nextSent(); got.ParseMode != "Markdown" {
		t.Errorf("second send parse mode %q, want Markdown", got.ParseMode)
	}
}

func TestRateLimitIsWaitedOut(t *testing.T) {
	h := newHarness(t, nil)
	h.waitPolling()
	h.srv.RateLimitOnce(1)
	type result struct {
		res  schemas.SendResult
		werr *wire.Error
	}
	done := make(chan result, 1)
	go func() {
		res, werr := h.send(schemas.SendParams{To: "42", Message: "after the limit"})
		done <- result{res, werr}
	}()
	if d := h.waitSleep(); d != time.Second {
		t.Errorf("waited %s, want retry_after 1s", d)
	}
	select {
	case r := <-done:
		t.Fatalf("send finished before the wait ended: %+v", r)
	default:
	}
	h.releaseSleep()
	r := <-done
	if r.werr != nil || r.res.MessageID == "" {
		t.Fatalf("send: %+v %v", r.res, r.werr)
	}
	if got := h.nextSent(); got.Text != "after the limit" {
		t.Errorf("sent %+v", got)
	}
	if n := h.srv.Calls("sendMessage"); n != 2 {
		t.Errorf("%d sendMessage calls, want 2", n)
	}
}

func TestConflictShowsErrorWithoutHotLoop(t *testing.T) {
	h := newHarness(t, nil)
	h.srv.SetConflict(true)
	st := h.waitState("conflict", func(st wire.ProviderState) bool { return st.State == schemas.TelegramError })
	if st.LastError != conflictError || st.Connected || !st.Configured {
		t.Errorf("conflict state %+v", st)
	}
	for round := 1; round <= 3; round++ {
		if d := h.waitSleep(); d != DefaultConflictBackoff {
			t.Errorf("round %d: waited %s after a 409, want %s", round, d, DefaultConflictBackoff)
		}
		// While the bot waits, it does not poll: one getUpdates per backoff window.
		if n := h.srv.Calls("getUpdates"); n != round {
			t.Errorf("round %d: %d getUpdates calls", round, n)
		}
		if round == 3 {
			h.srv.SetConflict(false)
		}
		h.releaseSleep()
	}
	if st := h.waitPolling(); st.LastError != "" || !st.Connected {
		t.Errorf("state after the conflict ended %+v", st)
	}
}

func TestUnauthorizedTokenIsTerminal(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Token = "7000001:wrong-token-but-also-secret" })
	st := h.waitState("error", func(st wire.ProviderState) bool { return st.State == schemas.TelegramError })
	if st.LastError != errUnauthorized.Error() {
		t.Errorf("state %+v", st)
	}
	if strings.Contains(h.logs.String(), "wrong-token-but-also-secret") {
		t.Error("the rejected token appears in the logs")
	}
	if n := h.srv.Calls("getUpdates"); n != 0 {
		t.Errorf("%d getUpdates calls after a 401", n)
	}
}

func TestUnconfigured(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Token = "" })
	st := h.waitState("unconfigured", func(st wire.ProviderState) bool { return st.State == schemas.TelegramUnconfigured })
	if st.Configured {
		t.Errorf("state %+v", st)
	}
	_, werr := h.send(schemas.SendParams{To: "42", Message: "x"})
	if werr == nil || werr.Code != wire.CodeUnavailable || werr.Retryable {
		t.Errorf("send without token: %+v, want UNAVAILABLE not retryable", werr)
	}
	if n := h.srv.Calls("getMe"); n != 0 {
		t.Errorf("%d getMe calls without a token", n)
	}
}

func TestTokenNeverInErrors(t *testing.T) {
	h := newHarness(t, nil)
	h.waitPolling()
	// A transport failure: telebot's error carries the request URL with the token.
	dead := telegramtest.New(testToken)
	dead.Close()
	bot, err := New(Config{Token: testToken, APIRoot: dead.URL, Log: h.bot.cfg.Log})
	if err != nil {
		t.Fatal(err)
	}
	_, err = bot.Send(context.Background(), outbound("42", "x"))
	if err == nil || strings.Contains(err.Error(), testToken) || !strings.Contains(err.Error(), redacted) {
		t.Errorf("send error %v: want the URL with the token redacted", err)
	}
	if _, err := bot.getMe(context.Background()); err == nil || strings.Contains(err.Error(), testToken) {
		t.Errorf("getMe error %v", err)
	}
	if err := bot.Typing(context.Background(), "42", true); err == nil || strings.Contains(err.Error(), testToken) {
		t.Errorf("typing error %v", err)
	}
	// Through the core: the restart state carries the redacted error.
	h2 := newHarness(t, func(c *Config) { c.APIRoot = dead.URL })
	st := h2.waitState("error", func(st wire.ProviderState) bool { return st.State == schemas.TelegramError && st.LastError != "" })
	if strings.Contains(st.LastError, testToken) || !strings.Contains(st.LastError, redacted) {
		t.Errorf("state error %q", st.LastError)
	}
	_, werr := h2.send(schemas.SendParams{To: "42", Message: "x"})
	if werr == nil || werr.Code != wire.CodeUnavailable || !werr.Retryable {
		t.Errorf("send to an unreachable API: %+v, want UNAVAILABLE retryable", werr)
	}
}

func TestTyping(t *testing.T) {
	h := newHarness(t, nil)
	h.waitPolling()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if _, err := wire.Request(ctx, h.nc, must(subject.ProviderTyping(subject.ServiceTelegram)),
		[]byte(`{"chatId":"42","on":true}`), nil); err != nil {
		t.Fatalf("typing: %v", err)
	}
	select {
	case a := <-h.srv.Actions():
		if a != (telegramtest.Action{ChatID: "42", Action: "typing"}) {
			t.Errorf("action %+v", a)
		}
	case <-time.After(waitLimit):
		t.Fatal("no chat action")
	}
}

func TestSendMedia(t *testing.T) {
	h := newHarness(t, nil)
	h.waitPolling()
	png := append([]byte("\x89PNG\r\n\x1a\n"), make([]byte, 100)...)
	path := filepath.Join(t.TempDir(), "pic.png")
	if err := os.WriteFile(path, png, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, media, method, sentMedia string
	}{
		{"local photo", path, "sendPhoto", "upload:"},
		{"document url", "https://example.com/files/report.pdf", "sendDocument", "https://example.com/files/report.pdf"},
		{"audio url", "https://example.com/a/song.mp3", "sendAudio", "https://example.com/a/song.mp3"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res, werr := h.send(schemas.SendParams{To: "@news_channel", Message: "see *this*", MediaURL: tt.media})
			if werr != nil {
				t.Fatalf("send: %v", werr)
			}
			got := h.nextSent()
			if got.Method != tt.method || got.Caption != "see *this*" || got.ParseMode != "Markdown" ||
				got.Media != tt.sentMedia || got.ChatID != "@news_channel" {
				t.Errorf("sent %+v", got)
			}
			if res.ChatID != itoa(got.Chat) {
				t.Errorf("result chat %q, want the resolved %d", res.ChatID, got.Chat)
			}
		})
	}
	_, werr := h.send(schemas.SendParams{To: "42", Message: "x", MediaURL: filepath.Join(t.TempDir(), "missing.png")})
	if werr == nil || werr.Code != wire.CodeInvalidRequest {
		t.Errorf("missing media file: %+v, want INVALID_REQUEST", werr)
	}
	_, werr = h.send(schemas.SendParams{To: "not a chat", Message: "x"})
	if werr == nil || werr.Code != wire.CodeInvalidRequest {
		t.Errorf("bad recipient: %+v, want INVALID_REQUEST", werr)
	}
}

func TestProbeFailureShowsInLastError(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.ProbeInterval = 20 * time.Millisecond })
	h.waitPolling()
	select { // revoke while a long poll (authorized when it arrived) waits
	case <-h.srv.Polls():
	case <-time.After(waitLimit):
		t.Fatal("no long poll")
	}
	h.srv.Revoke()
	st := h.waitState("probe failure", func(st wire.ProviderState) bool {
		return strings.HasPrefix(st.LastError, "getMe probe failed")
	})
	if st.State != schemas.TelegramPolling {
		t.Errorf("state %+v", st)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func equalInbound(a, b wire.InboundMessage) bool { return reflect.DeepEqual(a, b) }

func outbound(to, text string) provider.Outbound { return provider.Outbound{To: to, Text: text} }
