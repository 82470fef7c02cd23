package telegram

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/schemas"
	"github.com/clawdis/clawdis/services/internal/jsstore"
	"github.com/clawdis/clawdis/services/telegram/telegramtest"
)

// dropInbound deletes the inbound stream, so that nothing can be stored until restoreInbound.
func dropInbound(t *testing.T, nc *nats.Conn) {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := js.DeleteStream(t.Context(), jsstore.InboundStream); err != nil {
		t.Fatal(err)
	}
}

func restoreInbound(t *testing.T, nc *nats.Conn) {
	t.Helper()
	if _, err := jsstore.Inbound(t.Context(), nc, jsstore.Config{}); err != nil {
		t.Fatal(err)
	}
}

// storedTexts returns the texts of the messages in the inbound stream, oldest first.
func storedTexts(t *testing.T, nc *nats.Conn) []string {
	t.Helper()
	js, _ := jetstream.New(nc)
	s, err := js.Stream(t.Context(), jsstore.InboundStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(t.Context(), seq)
		if err != nil {
			t.Fatal(err)
		}
		var msg wire.InboundMessage
		_ = json.Unmarshal(m.Data, &msg)
		texts = append(texts, msg.Text)
	}
	return texts
}

// TestPollingOffsetWaitsForTheStore: an update that cannot be stored is not confirmed to
// Telegram (the offset stays before it): after a backoff getUpdates returns it again, and
// once the store is back it is stored, once.
func TestPollingOffsetWaitsForTheStore(t *testing.T) {
	h := newHarness(t, nil)
	h.waitPolling()
	h.srv.InjectMessage(telegramtest.DirectText(42, "first"))
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := h.srv.WaitConfirmed(ctx); err != nil { // "first" is stored
		t.Fatal(err)
	}
	dropInbound(t, h.nc)
	h.srv.InjectMessage(telegramtest.DirectText(42, "kept"))
	if d := h.waitSleep(); d <= 0 {
		t.Fatalf("backoff %s after a failed store", d)
	}
	restoreInbound(t, h.nc)
	h.releaseSleep()
	if got := waitStored(t, h.nc); got.Text != "kept" {
		t.Fatalf("after the store came back: %+v", got)
	}
	if got := storedTexts(t, h.nc); len(got) != 1 || got[0] != "kept" {
		t.Fatalf("stored %q, want the redelivered update once", got)
	}
}

// waitStored waits for the first message in the inbound stream.
func waitStored(t *testing.T, nc *nats.Conn) wire.InboundMessage {
	t.Helper()
	js, _ := jetstream.New(nc)
	c, err := js.CreateConsumer(t.Context(), jsstore.InboundStream, jetstream.ConsumerConfig{AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	m, err := c.Next(jetstream.FetchMaxWait(waitLimit))
	if err != nil {
		t.Fatalf("nothing stored: %v", err)
	}
	var msg wire.InboundMessage
	if err := json.Unmarshal(m.Data(), &msg); err != nil {
		t.Fatal(err)
	}
	return msg
}

// TestWebhookAnswers200OnlyWhenStored: the webhook answers 503 while the update cannot be
// stored (Telegram sends it again) and 200 once it is; the repeat is stored once.
func TestWebhookAnswers200OnlyWhenStored(t *testing.T) {
	h := newHarness(t, func(c *Config) {
		c.WebhookURL = "https://bot.example.com/telegram-webhook"
		c.WebhookListen = "127.0.0.1:0"
	})
	h.waitState("webhook", func(st wire.ProviderState) bool { return st.State == schemas.TelegramWebhook })
	url := "http://" + h.bot.WebhookAddr() + DefaultWebhookPath
	m := telegramtest.DirectText(42, "hooked")
	m.MessageID, m.Date = 700, time.Now().Unix()
	body, _ := json.Marshal(telegramtest.Update{UpdateID: 9, Message: &m})
	post := func() int {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("post webhook: %v", err)
		}
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	dropInbound(t, h.nc)
	if got := post(); got != http.StatusServiceUnavailable {
		t.Fatalf("status %d without the store, want 503", got)
	}
	restoreInbound(t, h.nc)
	for range 2 { // Telegram's retry, then a duplicate delivery
		if got := post(); got != http.StatusOK {
			t.Fatalf("status %d with the store, want 200", got)
		}
	}
	if got := storedTexts(t, h.nc); len(got) != 1 || got[0] != "hooked" {
		t.Fatalf("stored %q, want the update once", got)
	}
}
