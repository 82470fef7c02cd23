package autoreply

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/clawdis/clawdis/bus/bustest"
	"github.com/clawdis/clawdis/bus/subject"
	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/schemas"
)

func TestDirectMessageAnswered(t *testing.T) {
	b := bustest.New(t)
	agent := newFakeAgent(t, b)
	wa := newFakeProvider(t, b, ProviderWhatsApp)
	sessions := newFakeSessions(t, b)
	cfg := baseConfig(t)
	cfg.WhatsAppAllowFrom = []string{"+43 660 123-4567"}
	cfg.RunTimeout = 90 * time.Second
	logs := newLogWatch()
	svc := startService(t, b, cfg, logs)
	outcomes := make(chan *nats.Msg, 4)
	mc := b.Conn("metrics")
	if _, err := mc.ChanSubscribe(subject.InboundOutcome, outcomes); err != nil {
		t.Fatal(err)
	}
	if err := mc.Flush(); err != nil { // the subscription is in place before anything happens
		t.Fatal(err)
	}

	msg := waDirect("3EB0A1", "+436601234567", "what's up?")
	msg.Media = []wire.InboundMedia{{Type: "image", Path: "/state/media/inbound/a.jpg"}}
	publish(t, b.Conn("pub"), msg)

	p := recv(t, agent.started, "AgentRun")
	want := schemas.AgentParams{
		Message:        "[WhatsApp +436601234567 2026-03-01T11:59:30Z] what's up?\n<media:image> /state/media/inbound/a.jpg",
		To:             "436601234567@s.whatsapp.net",
		SessionKey:     "main",
		Channel:        "whatsapp",
		Timeout:        ptr(int64(90)),
		IdempotencyKey: runKey(msg),
	}
	if !strings.HasPrefix(p.IdempotencyKey, "auto-whatsapp-436601234567_s_whatsapp_net-3EB0A1-") {
		t.Fatalf("run key %q", p.IdempotencyKey)
	}
	if p.Message != want.Message || p.To != want.To || p.SessionKey != want.SessionKey || p.Channel != want.Channel ||
		p.Deliver || p.Timeout == nil || *p.Timeout != 90 || p.IdempotencyKey != want.IdempotencyKey {
		t.Fatalf("agent params = %+v, want %+v", p, want)
	}
	wa.waitTyping(t, msg.ChatID, true)
	agent.reply(t, p.IdempotencyKey, "  hello back\n")

	sp := recv(t, wa.sends, "ProviderSend")
	wantSend := schemas.SendParams{To: msg.ChatID, Message: "hello back", Provider: "whatsapp", IdempotencyKey: p.IdempotencyKey + "-reply"}
	if sp != wantSend {
		t.Fatalf("send = %+v, want %+v", sp, wantSend)
	}
	wa.waitTyping(t, msg.ChatID, false)
	u := recv(t, sessions, "SessionsUpdate")
	if u.SessionKey != "main" || u.LastChannel == nil || *u.LastChannel != "whatsapp" || u.LastTo == nil || *u.LastTo != msg.ChatID {
		t.Fatalf("session update = %+v", u)
	}
	logs.wait(t, slog.LevelInfo, "inbound answered")
	var o wire.InboundOutcome
	if err := json.Unmarshal(recv(t, outcomes, "InboundOutcome").Data, &o); err != nil ||
		o != (wire.InboundOutcome{Provider: ProviderWhatsApp, Outcome: wire.InboundAnswered}) {
		t.Fatalf("outcome event %+v (%v), want answered by whatsapp", o, err)
	}
	svc.stop()
	if n := unfinished(t, b.Conn("check")); n != 0 {
		t.Fatalf("%d messages without a final outcome after the answer, want 0", n)
	}
}

// TestWhoIsAnswered publishes a message that must be ignored and then one that must be
// answered: the answered one must be the first and only run the agent sees.
func TestWhoIsAnswered(t *testing.T) {
	tgDirect := func(id, from string) wire.InboundMessage {
		return wire.InboundMessage{Provider: ProviderTelegram, MessageID: id, ChatID: from, ChatType: chatDirect,
			From: from, Self: "@clawdbot", Text: "hi", Ts: msgTs.UnixMilli()}
	}
	group := func(provider, id, text string, mentioned bool) wire.InboundMessage {
		chat := "120363000000000001@g.us"
		if provider == ProviderTelegram {
			chat = "-100200300"
		}
		return wire.InboundMessage{Provider: provider, MessageID: id, ChatID: chat, ChatType: chatGroup,
			From: "+436609999999", Text: text, Mentioned: mentioned, Ts: msgTs.UnixMilli()}
	}
	toSelf := waDirect("self-1", "+15550001111", "note to self")
	toSelf.ToSelf = true
	tests := []struct {
		name           string
		cfg            func(*Config)
		ignored, asked wire.InboundMessage
		session        string
	}{
		{"whatsapp unlisted sender", func(c *Config) { c.WhatsAppAllowFrom = []string{"+436601234567"} },
			waDirect("m1", "+436607654321", "hi"), waDirect("m2", "+436601234567", "hi"), "main"},
		{"whatsapp owner only by default", nil,
			waDirect("m1", "+436601234567", "hi"), toSelf, "main"},
		{"whatsapp owner by sender", nil,
			waDirect("m1", "+436601234567", "hi"), waDirect("m2", "+15550001111", "hi"), "main"},
		{"whatsapp star allows everyone but groups still need a mention", func(c *Config) { c.WhatsAppAllowFrom = []string{"*"} },
			group(ProviderWhatsApp, "g1", "hello all", false), waDirect("m2", "+436607654321", "hi"), "main"},
		{"whatsapp group mention flag", nil,
			group(ProviderWhatsApp, "g1", "hello all", false), group(ProviderWhatsApp, "g2", "@15550001111 hi", true),
			"group:120363000000000001@g.us"},
		{"whatsapp group mention pattern", func(c *Config) { c.MentionPatterns = []string{`\bclawd\b`} },
			group(ProviderWhatsApp, "g1", "clawdis is a name", false), group(ProviderWhatsApp, "g2", "Hey CLAWD, what's up?", false),
			"group:120363000000000001@g.us"},
		{"whatsapp group without mention requirement", func(c *Config) { c.GroupRequireMention = ptr(false) },
			waDirect("m1", "+436601234567", "hi"), group(ProviderWhatsApp, "g2", "hello all", false),
			"group:120363000000000001@g.us"},
		{"telegram numeric allowlist", func(c *Config) { c.TelegramAllowFrom = []string{"12345"} },
			tgDirect("1", "999"), tgDirect("2", "12345"), "main"},
		{"telegram nobody by default, mentioned in a group", nil,
			tgDirect("1", "12345"), group(ProviderTelegram, "2", "@clawdbot hi", true), "group:-100200300"},
		{"telegram group needs a mention even when whatsapp groups do not", func(c *Config) { c.GroupRequireMention = ptr(false) },
			group(ProviderTelegram, "1", "hi all", false), group(ProviderWhatsApp, "2", "hi all", false),
			"group:120363000000000001@g.us"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := bustest.New(t)
			agent := newFakeAgent(t, b)
			wa := newFakeProvider(t, b, ProviderWhatsApp)
			tg := newFakeProvider(t, b, ProviderTelegram)
			newFakeSessions(t, b)
			cfg := baseConfig(t)
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			logs := newLogWatch()
			svc := startService(t, b, cfg, logs)
			pub := b.Conn("pub")
			publish(t, pub, tt.ignored)
			publish(t, pub, tt.asked)

			p := recv(t, agent.started, "AgentRun")
			if p.IdempotencyKey != runKey(tt.asked) || p.SessionKey != tt.session || p.To != tt.asked.ChatID {
				t.Fatalf("first run = key %s session %s to %s, want key %s session %s to %s",
					p.IdempotencyKey, p.SessionKey, p.To, runKey(tt.asked), tt.session, tt.asked.ChatID)
			}
			agent.reply(t, p.IdempotencyKey, "answer")
			sends := wa.sends
			if tt.asked.Provider == ProviderTelegram {
				sends = tg.sends
			}
			if sp := recv(t, sends, "reply"); sp.To != tt.asked.ChatID || sp.Message != "answer" {
				t.Fatalf("send = %+v", sp)
			}
			logs.wait(t, slog.LevelInfo, "inbound answered")
			svc.stop()
			if n := agent.runCount(); n != 1 {
				t.Fatalf("agent saw %d runs, want 1", n)
			}
			if n := wa.sendCount() + tg.sendCount(); n != 1 {
				t.Fatalf("%d sends, want 1", n)
			}
			if n := unfinished(t, pub); n != 0 {
				t.Fatalf("%d messages without a final outcome, want both acknowledged", n)
			}
			if r := logs.wait(t, slog.LevelInfo, "inbound not answered"); r.Level != slog.LevelInfo {
				t.Fatalf("the ignored message was logged at %s, want INFO", r.Level)
			}
		})
	}
}

// TestRestartDeliversAgainWithSameKey stops the service while the agent works on a message
// and starts a new one: the stream delivers the message again, it is run under the same key
// and exactly one reply is sent; a third start finds nothing.
func TestRestartDeliversAgainWithSameKey(t *testing.T) {
	b := bustest.New(t)
	agent := newFakeAgent(t, b)
	wa := newFakeProvider(t, b, ProviderWhatsApp)
	routes := newFakeSessions(t, b)
	cfg := baseConfig(t)
	cfg.WhatsAppAllowFrom = []string{"*"}
	nc := b.Conn("pub")

	first := startService(t, b, cfg, newLogWatch())
	msg := waDirect("m1", "+436601234567", "long question")
	publish(t, nc, msg)
	p := recv(t, agent.started, "AgentRun")
	wa.waitTyping(t, msg.ChatID, true)
	first.stop()
	if n := unfinished(t, nc); n != 1 {
		t.Fatalf("%d messages without a final outcome after the stop, want the one not answered", n)
	}
	wa.waitTyping(t, msg.ChatID, false) // the stopped service cleared typing

	logs := newLogWatch()
	second := startService(t, b, cfg, logs)
	wa.waitTyping(t, msg.ChatID, true) // shown again once the run is acknowledged again
	if n := agent.ackCount(p.IdempotencyKey); n != 2 {
		t.Fatalf("agent run requested %d times after the restart, want 2", n)
	}
	agent.reply(t, p.IdempotencyKey, "the answer")
	if sp := recv(t, wa.sends, "reply"); sp.IdempotencyKey != p.IdempotencyKey+"-reply" {
		t.Fatalf("send = %+v", sp)
	}
	logs.wait(t, slog.LevelInfo, "inbound answered")
	second.stop()
	if n := unfinished(t, nc); n != 0 {
		t.Fatalf("%d messages without a final outcome after the answer, want 0", n)
	}

	third := startService(t, b, cfg, newLogWatch())
	third.stop()
	if n := agent.runCount(); n != 1 {
		t.Fatalf("agent started %d runs, want 1", n)
	}
	if n := agent.ackCount(p.IdempotencyKey); n != 2 {
		t.Fatalf("agent run requested %d times, want 2", n)
	}
	if n := wa.sendCount(); n != 1 {
		t.Fatalf("%d sends, want 1", n)
	}
	if n := len(routes); n != 1 {
		t.Fatalf("last route updated %d times, want once (not again on a redelivery)", n)
	}
}

// TestPublishedWhileAwayIsAnswered: messages stored while no autoreply runs are answered,
// each once, when it starts.
func TestPublishedWhileAwayIsAnswered(t *testing.T) {
	b := bustest.New(t)
	agent := newFakeAgent(t, b)
	wa := newFakeProvider(t, b, ProviderWhatsApp)
	newFakeSessions(t, b)
	cfg := baseConfig(t)
	cfg.WhatsAppAllowFrom = []string{"*"}
	nc := b.Conn("pub")
	for i := range 5 {
		publish(t, nc, waDirect(fmt.Sprintf("away-%d", i), "+436601234567", fmt.Sprintf("while away %d", i)))
	}
	logs := newLogWatch()
	startService(t, b, cfg, logs)
	for range 5 {
		p := recv(t, agent.started, "AgentRun")
		agent.reply(t, p.IdempotencyKey, "answer to "+p.IdempotencyKey)
	}
	for range 5 {
		recv(t, wa.sends, "reply")
	}
	logs.waitCount(t, "inbound answered", 5)
	if n := wa.sendCount(); n != 5 {
		t.Fatalf("%d sends, want 5", n)
	}
}

// TestGivesUpAfterMaxDeliveries: a message whose deliveries all end without a final outcome
// (no agent answers) is logged as given up after MaxDeliveries and leaves the stream.
func TestGivesUpAfterMaxDeliveries(t *testing.T) {
	b := bustest.New(t)
	cfg := baseConfig(t)
	cfg.WhatsAppAllowFrom = []string{"*"}
	cfg.RetryAttempts = 1
	cfg.MaxDeliveries = 2
	logs := newLogWatch()
	svc := startService(t, b, cfg, logs)
	nc := b.Conn("pub")
	publish(t, nc, waDirect("m1", "+436601234567", "nobody home"))
	r := logs.wait(t, slog.LevelError, "given up")
	if r.Level != slog.LevelError {
		t.Fatalf("give-up logged at %s", r.Level)
	}
	svc.stop()
	if n := logs.count("not answered yet"); n != 2 {
		t.Fatalf("%d deliveries handed back, want 2", n)
	}
	if n := unfinished(t, nc); n != 0 {
		t.Fatalf("%d messages without a final outcome, want the given-up one done", n)
	}
}

func TestAgentFailureSendsNothing(t *testing.T) {
	b := bustest.New(t)
	agent := newFakeAgent(t, b)
	wa := newFakeProvider(t, b, ProviderWhatsApp)
	newFakeSessions(t, b)
	cfg := baseConfig(t)
	cfg.WhatsAppAllowFrom = []string{"*"}
	logs := newLogWatch()
	svc := startService(t, b, cfg, logs)

	publish(t, b.Conn("pub"), waDirect("m1", "+436601234567", "hi"))
	p := recv(t, agent.started, "AgentRun")
	payload, _ := json.Marshal(schemas.AgentResult{RunID: p.IdempotencyKey, Status: "timeout"})
	agent.finish(t, p.IdempotencyKey, wire.RunFinal{Payload: payload,
		Error: &wire.Error{Code: wire.CodeAgentTimeout, Message: "agent run exceeded 600s"}})
	r := logs.wait(t, slog.LevelWarn, "agent run failed; no reply sent")
	if r.Level != slog.LevelWarn {
		t.Fatalf("failure logged at %s, want WARN", r.Level)
	}
	logs.wait(t, slog.LevelInfo, "inbound not answered")
	svc.stop()
	if n := wa.sendCount(); n != 0 {
		t.Fatalf("%d sends after a failed run, want 0", n)
	}
	if n := unfinished(t, b.Conn("check")); n != 0 {
		t.Fatalf("%d messages without a final outcome, want the failed one acknowledged", n)
	}
}

// TestLostRunRunsAgain: a final with a retryable error (the agent lost the run) starts the
// run again under the same key.
func TestLostRunRunsAgain(t *testing.T) {
	b := bustest.New(t)
	agent := newFakeAgent(t, b)
	wa := newFakeProvider(t, b, ProviderWhatsApp)
	newFakeSessions(t, b)
	cfg := baseConfig(t)
	cfg.WhatsAppAllowFrom = []string{"*"}
	startService(t, b, cfg, newLogWatch())

	publish(t, b.Conn("pub"), waDirect("m1", "+436601234567", "hi"))
	p := recv(t, agent.started, "AgentRun")
	agent.finish(t, p.IdempotencyKey, wire.RunFinal{Error: wire.Unavailable(true, "run lost in a restart")})
	again := recv(t, agent.started, "second AgentRun")
	if again.IdempotencyKey != p.IdempotencyKey {
		t.Fatalf("second run key %s, want %s", again.IdempotencyKey, p.IdempotencyKey)
	}
	agent.reply(t, p.IdempotencyKey, "ok now")
	if sp := recv(t, wa.sends, "reply"); sp.Message != "ok now" {
		t.Fatalf("send = %+v", sp)
	}
}

// TestAgentNotRunning: with nobody serving AgentRun the message stays in the stream and is
// retried; once the agent appears it is answered.
func TestAgentNotRunning(t *testing.T) {
	b := bustest.New(t)
	wa := newFakeProvider(t, b, ProviderWhatsApp)
	newFakeSessions(t, b)
	cfg := baseConfig(t)
	cfg.WhatsAppAllowFrom = []string{"*"}
	cfg.RetryAttempts = 1000
	logs := newLogWatch()
	startService(t, b, cfg, logs)

	msg := waDirect("m1", "+436601234567", "hi")
	nc := b.Conn("pub")
	publish(t, nc, msg)
	logs.wait(t, slog.LevelWarn, "agent run failed; retrying")
	if n := unfinished(t, nc); n != 1 {
		t.Fatalf("%d messages without a final outcome while the agent is away, want 1", n)
	}
	agent := newFakeAgent(t, b)
	p := recv(t, agent.started, "AgentRun")
	agent.reply(t, p.IdempotencyKey, "here")
	if sp := recv(t, wa.sends, "reply"); sp.Message != "here" {
		t.Fatalf("send = %+v", sp)
	}
}

// TestAgentNotRunningHandsBack: when the attempts of a delivery are used up the message
// goes back to the stream for a later delivery rather than being dropped.
func TestAgentNotRunningHandsBack(t *testing.T) {
	b := bustest.New(t)
	cfg := baseConfig(t)
	cfg.WhatsAppAllowFrom = []string{"*"}
	cfg.RetryAttempts = 3
	logs := newLogWatch()
	svc := startService(t, b, cfg, logs)

	publish(t, b.Conn("pub"), waDirect("m1", "+436601234567", "hi"))
	r := logs.wait(t, slog.LevelWarn, "not answered yet; the stream delivers it again")
	if r.Level != slog.LevelWarn {
		t.Fatalf("hand-back logged at %s", r.Level)
	}
	svc.stop()
	if n := logs.count("agent run failed; retrying"); n < 2 {
		t.Fatalf("%d retries logged, want at least 2", n)
	}
	if n := unfinished(t, b.Conn("check")); n != 1 {
		t.Fatalf("%d messages without a final outcome, want the message kept", n)
	}
}

// TestDuplicateAndEcho: a second copy of a message is dropped by the stream, and the reply
// coming back as a message to yourself is not answered.
func TestDuplicateAndEcho(t *testing.T) {
	b := bustest.New(t)
	agent := newFakeAgent(t, b)
	wa := newFakeProvider(t, b, ProviderWhatsApp)
	newFakeSessions(t, b)
	cfg := baseConfig(t)
	logs := newLogWatch()
	svc := startService(t, b, cfg, logs)
	pub := b.Conn("pub")

	msg := waDirect("m1", "+15550001111", "note")
	msg.ToSelf = true
	if publish(t, pub, msg) {
		t.Fatal("the first copy is a duplicate")
	}
	if !publish(t, pub, msg) {
		t.Fatal("the second copy was stored again")
	}
	p := recv(t, agent.started, "AgentRun")
	agent.reply(t, p.IdempotencyKey, "noted")
	sp := recv(t, wa.sends, "reply")
	logs.wait(t, slog.LevelInfo, "reply sent")

	echoByID := msg
	echoByID.MessageID, echoByID.Text = wa.result(sp.IdempotencyKey).MessageID, "noted"
	echoByText := msg
	echoByText.MessageID, echoByText.Text = "other-device-id", "noted"
	next := msg
	next.MessageID, next.Text = "m2", "next note"
	for _, m := range []wire.InboundMessage{echoByID, echoByText, next} {
		publish(t, pub, m)
	}
	p2 := recv(t, agent.started, "second AgentRun")
	if p2.IdempotencyKey != runKey(next) {
		t.Fatalf("second run %s, want %s (an echo was answered)", p2.IdempotencyKey, runKey(next))
	}
	agent.reply(t, p2.IdempotencyKey, "noted too")
	recv(t, wa.sends, "second reply")
	logs.waitCount(t, "inbound not answered", 2)
	svc.stop()
	if n := agent.ackCount(p.IdempotencyKey); n != 1 {
		t.Fatalf("first message run %d times", n)
	}
	if n := logs.countAttr("inbound not answered", "reason", "own reply echoed back"); n != 2 {
		t.Fatalf("%d echoes recognised, want 2", n)
	}
}

func TestPingAndReady(t *testing.T) {
	b := bustest.New(t)
	startService(t, b, Config{}, newLogWatch())
	subj, err := micro.ControlSubject(micro.PingVerb, "autoreply", "")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	var ping micro.Ping
	if err := wire.RequestJSON(ctx, b.Conn("pinger"), subj, nil, &ping); err != nil {
		t.Fatalf("ping: %v", err)
	}
	if ping.Name != "autoreply" {
		t.Fatalf("ping answered by %q", ping.Name)
	}
}

// TestConcurrencyBound: with MaxConcurrent 1 a second message waits in the stream until the
// first one is answered.
func TestConcurrencyBound(t *testing.T) {
	b := bustest.New(t)
	agent := newFakeAgent(t, b)
	wa := newFakeProvider(t, b, ProviderWhatsApp)
	newFakeSessions(t, b)
	cfg := baseConfig(t)
	cfg.WhatsAppAllowFrom = []string{"*"}
	cfg.MaxConcurrent = 1
	logs := newLogWatch()
	startService(t, b, cfg, logs)
	pub := b.Conn("pub")
	m1, m2 := waDirect("m1", "+436601234567", "one"), waDirect("m2", "+436607654321", "two")
	publish(t, pub, m1)
	p1 := recv(t, agent.started, "first AgentRun")
	publish(t, pub, m2)
	// The consumer counts a stored message a moment after the publish's ack: ask until
	// both messages are counted, then check where each one is.
	pending, unacked := consumerState(t, pub)
	for deadline := time.Now().Add(waitFor); pending+unacked < 2 && time.Now().Before(deadline); {
		pending, unacked = consumerState(t, pub)
	}
	if pending != 1 || unacked != 1 {
		t.Fatalf("consumer: %d waiting, %d being answered; want 1 and 1", pending, unacked)
	}
	agent.reply(t, p1.IdempotencyKey, "r1")
	p2 := recv(t, agent.started, "second AgentRun")
	agent.reply(t, p2.IdempotencyKey, "r2")
	recv(t, wa.sends, "first reply")
	recv(t, wa.sends, "second reply")
	if p1.IdempotencyKey != runKey(m1) || p2.IdempotencyKey != runKey(m2) {
		t.Fatalf("runs out of order: %s, %s", p1.IdempotencyKey, p2.IdempotencyKey)
	}
	agent.mu.Lock()
	defer agent.mu.Unlock()
	if agent.maxActive != 1 {
		t.Fatalf("%d runs at once, want 1", agent.maxActive)
	}
}

// TestLegacyJournalMigrated: the messages an earlier version left pending are put into the
// stream once (one the provider stored meanwhile is not doubled), answered, and the file is
// renamed *.migrated.
func TestLegacyJournalMigrated(t *testing.T) {
	b := bustest.New(t)
	agent := newFakeAgent(t, b)
	wa := newFakeProvider(t, b, ProviderWhatsApp)
	newFakeSessions(t, b)
	cfg := baseConfig(t)
	cfg.WhatsAppAllowFrom = []string{"*"}
	cfg.LegacyJournalPath = filepath.Join(t.TempDir(), "autoreply", "pending.json")
	m1, m2 := waDirect("old-1", "+436601234567", "left pending"), waDirect("old-2", "+436601234567", "also stored anew")
	journal, _ := json.Marshal(map[string]any{"version": 1, "pending": []map[string]any{
		{"key": runKey(m1), "msg": m1, "addedAt": 1}, {"key": runKey(m2), "msg": m2, "addedAt": 2}}})
	if err := os.MkdirAll(filepath.Dir(cfg.LegacyJournalPath), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg.LegacyJournalPath, journal, 0o600); err != nil {
		t.Fatal(err)
	}
	publish(t, b.Conn("pub"), m2) // the provider stored it again after the upgrade
	startService(t, b, cfg, newLogWatch())
	for range 2 {
		p := recv(t, agent.started, "AgentRun")
		agent.reply(t, p.IdempotencyKey, "answered")
		recv(t, wa.sends, "reply")
	}
	if _, err := os.Stat(cfg.LegacyJournalPath + ".migrated"); err != nil {
		t.Fatalf("journal not renamed: %v", err)
	}
	if n := agent.runCount(); n != 2 {
		t.Fatalf("%d runs, want 2", n)
	}
}
