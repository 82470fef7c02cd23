package telegram

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/schemas"
	"github.com/clawdis/clawdis/services/telegram/telegramtest"
)

func TestWebhookMode(t *testing.T) {
	const secret = "hook-secret-123"
	h := newHarness(t, func(c *Config) {
		c.WebhookURL = "https://bot.example.com/telegram-webhook"
		c.WebhookSecret = secret
		c.WebhookListen = "127.0.0.1:0"
	})
	st := h.waitState("webhook", func(st wire.ProviderState) bool { return st.State == schemas.TelegramWebhook })
	if !st.Connected || st.Self != botSelf {
		t.Errorf("webhook state %+v", st)
	}
	if got := h.srv.Webhook(); got.URL != "https://bot.example.com/telegram-webhook" || got.Secret != secret {
		t.Errorf("registered webhook %+v", got)
	}
	url := "http://" + h.bot.WebhookAddr() + DefaultWebhookPath

	post := func(secretHeader string, u telegramtest.Update) int {
		t.Helper()
		body, _ := json.Marshal(u)
		ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if secretHeader != "" {
			req.Header.Set("X-Telegram-Bot-Api-Secret-Token", secretHeader)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("post webhook: %v", err)
		}
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	msg := func(id int, text string) *telegramtest.Message {
		m := telegramtest.DirectText(42, text)
		m.MessageID, m.Date = id, time.Now().Unix()
		return &m
	}
	for _, tt := range []struct {
		name, secret string
		want         int
	}{
		{"no secret", "", http.StatusForbidden},
		{"wrong secret", "guess", http.StatusForbidden},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := post(tt.secret, telegramtest.Update{UpdateID: 1, Message: msg(500, "forged")}); got != tt.want {
				t.Errorf("status %d, want %d", got, tt.want)
			}
		})
	}
	if got := post(secret, telegramtest.Update{UpdateID: 2, Message: msg(501, "genuine")}); got != http.StatusOK {
		t.Fatalf("status %d with the right secret", got)
	}
	// Only the genuine update arrives: the forged ones were never handed on.
	if got := h.waitInbound(); got.Text != "genuine" || got.MessageID != "501" || got.ChatType != "direct" {
		t.Errorf("inbound %+v", got)
	}
	if n := h.srv.Calls("getUpdates"); n != 0 {
		t.Errorf("%d getUpdates calls in webhook mode", n)
	}
	h.stop()
	if addr := h.bot.WebhookAddr(); addr != "" {
		t.Errorf("webhook still listening on %s after stop", addr)
	}
}
