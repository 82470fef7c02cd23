package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/clawdis/clawdis/schemas"
	"github.com/clawdis/clawdis/services/telegram/telegramtest"
)

const testBotToken = "123456:TEST-token-never-logged"

// telegramGateway runs a gateway whose Telegram provider talks to a fake Bot API.
func telegramGateway(t *testing.T, extra string, mods ...func(*daemonFlags)) (*daemon, *telegramtest.Server) {
	t.Helper()
	t.Setenv("HOME", t.TempDir())
	t.Setenv("TELEGRAM_BOT_TOKEN", "")
	api := telegramtest.New(testBotToken)
	t.Cleanup(api.Close)
	cfg := `{telegram: {botToken: "` + testBotToken + `", apiRoot: "` + api.URL + `", allowFrom: [4242]}` + extra + `}`
	d := startDaemon(t, t.TempDir(), cfg, func(df *daemonFlags) {
		df.noProviders = false
		for _, m := range mods {
			m(df)
		}
	})
	return d, api
}

// waitTelegramState reads health (the answer, then events) until Telegram is in state want.
func waitTelegramState(t testing.TB, url, want string) schemas.HealthSummary {
	t.Helper()
	events := make(chan schemas.Event, 64)
	c := dialTest(t, url, "cli", events)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	raw, err := c.Request(ctx, schemas.MethodHealth, nil)
	if err != nil {
		t.Fatal(err)
	}
	for {
		var h schemas.HealthSummary
		if err := json.Unmarshal(raw, &h); err == nil && h.Telegram.State == want {
			return h
		}
		select {
		case ev := <-events:
			if ev.Event == schemas.EventHealth {
				raw = ev.Payload
			}
		case <-ctx.Done():
			t.Fatalf("telegram never reached state %q; last health %s", want, raw)
		}
	}
}

func TestTelegramSendThroughGateway(t *testing.T) {
	d, api := telegramGateway(t, "")
	h := waitTelegramState(t, d.url, schemas.TelegramPolling)
	if p := h.Telegram.Probe; p == nil || !p.OK || p.Bot == nil || p.Bot.Username != api.Bot().Username {
		t.Errorf("health.telegram.probe = %+v, want the bot from getMe", p)
	}
	if !h.Telegram.Configured {
		t.Error("health.telegram.configured is false with a token")
	}

	var out, errb bytes.Buffer
	long := strings.Repeat("word ", 1000) // 5,000 characters: two messages
	args := []string{"gateway", "send", "--provider", "telegram", "--to", "4242", "--message", long, "--url", d.url, "--json"}
	if code := execute(args, &out, &errb); code != 0 {
		t.Fatalf("send: exit %d, stderr %q", code, errb.String())
	}
	var res schemas.SendResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil || res.Provider != "telegram" || res.ChatID != "4242" || res.MessageID == "" {
		t.Fatalf("send payload %s (%v)", out.String(), err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var got []string
	for len(got) < 2 {
		s, err := api.WaitSent(ctx)
		if err != nil {
			t.Fatalf("sent %d messages, want 2: %v", len(got), err)
		}
		got = append(got, s.Text)
	}
	if joined := strings.Join(got, " "); strings.Join(strings.Fields(joined), " ") != strings.TrimSpace(long) {
		t.Errorf("the two messages do not add up to the text")
	}
	if strings.Contains(d.logs.String(), testBotToken) {
		t.Error("the bot token appears in the gateway log")
	}
	// An unknown provider is refused by the schema before it reaches the bus.
	errb.Reset()
	args = []string{"gateway", "send", "--provider", "fax", "--to", "1", "--message", "m", "--url", d.url}
	if code := execute(args, &out, &errb); code != 1 || !strings.Contains(errb.String(), "INVALID_REQUEST") {
		t.Errorf("unknown provider: exit %d, %q", code, errb.String())
	}
}

// TestTelegramDMAnsweredByAgent: a DM from an allowed chat becomes an agent turn whose reply
// goes back to that chat; an unlisted sender and an unmentioned group get nothing.
func TestTelegramDMAnsweredByAgent(t *testing.T) {
	script := agentConfig(t)
	// agentConfig is a whole object; splice its agent key into the telegram config.
	d, api := telegramGateway(t, ", "+strings.TrimSuffix(strings.TrimPrefix(script, "{"), "}"))
	waitTelegramState(t, d.url, schemas.TelegramPolling)

	api.InjectMessage(telegramtest.DirectText(777, "from a stranger"))
	api.InjectMessage(telegramtest.GroupText(-100, 4242, "no mention here"))
	api.InjectMessage(telegramtest.DirectText(4242, "hi bot"))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sent, err := api.WaitSent(ctx)
	if err != nil {
		t.Fatalf("no reply: %v\nlogs: %s", err, d.logs.String())
	}
	if sent.Chat != 4242 || !strings.HasPrefix(sent.Text, "echo: [Telegram") || !strings.HasSuffix(sent.Text, "hi bot") {
		t.Fatalf("reply %+v", sent)
	}
	// Direct chats share the main session, whose turns run in arrival order: had the
	// stranger been answered, that reply would have come first.
	if n := len(api.SentMessages()); n != 1 {
		t.Errorf("%d messages sent, want 1: %+v", n, api.SentMessages())
	}
	if strings.Contains(d.logs.String(), testBotToken) {
		t.Error("the bot token appears in the gateway log")
	}
}
