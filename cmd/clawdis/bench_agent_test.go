package main

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/clawdis/clawdis/schemas"
	"github.com/clawdis/clawdis/services/telegram/telegramtest"
)

// BenchmarkChatSendFirstDelta: the time from sending chat.send to the first chat event of
// the run, with a command backend that answers at once, through the real edge, bus, agent
// and sessions services.
func BenchmarkChatSendFirstDelta(b *testing.B) {
	b.Setenv("HOME", b.TempDir())
	d := startDaemon(b, b.TempDir(), agentConfig(b), nil)
	events := make(chan schemas.Event, 1024)
	c := dialTest(b, d.url, "webchat", events)
	ctx := context.Background()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		key := "bench-" + strconv.Itoa(i)
		start := time.Now()
		if _, err := c.Request(ctx, schemas.MethodChatSend, map[string]any{"sessionKey": "s" + strconv.Itoa(i), "message": "hi", "idempotencyKey": key}); err != nil {
			b.Fatal(err)
		}
		first, final := false, false
		for !final {
			ev := <-events
			if ev.Event != schemas.EventChat {
				continue
			}
			var p schemas.ChatEventPayload
			if json.Unmarshal(ev.Payload, &p) != nil || p.RunID != key {
				continue
			}
			if !first {
				lat = append(lat, time.Since(start))
				first = true
			}
			final = p.State != schemas.ChatStateDelta
		}
	}
	b.StopTimer()
	reportLatency(b, lat)
}

// BenchmarkTelegramInboundToReply: the time from an inbound update offered by the fake Bot
// API to the reply's sendMessage, with a command backend that answers at once.
func BenchmarkTelegramInboundToReply(b *testing.B) {
	b.Setenv("HOME", b.TempDir())
	b.Setenv("TELEGRAM_BOT_TOKEN", "")
	api := telegramtest.New(testBotToken)
	b.Cleanup(api.Close)
	agentKeys := strings.TrimSuffix(strings.TrimPrefix(agentConfig(b), "{"), "}")
	cfg := `{telegram: {botToken: "` + testBotToken + `", apiRoot: "` + api.URL + `", allowFrom: [4242]}, ` + agentKeys + `}`
	d := startDaemon(b, b.TempDir(), cfg, func(df *daemonFlags) { df.noProviders = false })
	waitTelegramState(b, d.url, schemas.TelegramPolling)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		start := time.Now()
		api.InjectMessage(telegramtest.DirectText(4242, "ping "+strconv.Itoa(i)))
		if _, err := api.WaitSent(ctx); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	reportLatency(b, lat)
}
