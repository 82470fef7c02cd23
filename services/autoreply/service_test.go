package autoreply

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/micro"

	"github.com/clawdis/clawdis/bus/bustest"
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
	svc.stop()
	if keys := pendingKeys(t, cfg.JournalPath); len(keys) != 0 {
		t.Fatalf("journal still holds %v", keys)
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
			if keys := pendingKeys(t, cfg.JournalPath); len(keys) != 0 {
				t.Fatalf("journal still holds %v", keys)
			}
			if logs.count("inbound not answered") != 1 {
				t.Fatalf("the ignored message was not logged as not answered")
			}
		})
	}
}

// TestRestartResumesWithSameKey stops the service while the agent works on a message and
// starts a new one on the same journal: the message is run again under the same key and
// exactly one reply is sent.
func TestRestartResumesWithSameKey(t *testing.T) {
	b := bustest.New(t)
	agent := newFakeAgent(t, b)
	wa := newFakeProvider(t, b, ProviderWhatsApp)
	routes := newFakeSessions(t, b)
	cfg := baseConfig(t)
	cfg.WhatsAppAllowFrom = []string{"*"}

	first := startService(t, b, cfg, newLogWatch())
	msg := waDirect("m1", "+436601234567", "long question")
	publish(t, b.Conn("pub"), msg)
	p := recv(t, agent.started, "AgentRun")
	wa.waitTyping(t, msg.ChatID, true)
	first.stop()
	if keys := pendingKeys(t, cfg.JournalPath); !slices.Equal(keys, []string{p.IdempotencyKey}) {
		t.Fatalf("journal after stop = %v, want [%s]", keys, p.IdempotencyKey)
	}

	wa.waitTyping(t, msg.ChatID, false) // the stopped service cleared typing

	logs := newLogWatch()
	second := startService(t, b, cfg, logs)
	logs.wait(t, slog.LevelInfo, "resuming pending messages")
	wa.waitTyping(t, msg.ChatID, true) // shown again once the resumed run is acknowledged
	if n := agent.ackCount(p.IdempotencyKey); n != 2 {
		t.Fatalf("agent run requested %d times after the restart, want 2", n)
	}
	agent.reply(t, p.IdempotencyKey, "the answer")
	if sp := recv(t, wa.sends, "reply"); sp.IdempotencyKey != p.IdempotencyKey+"-reply" {
		t.Fatalf("send = %+v", sp)
	}
	logs.wait(t, slog.LevelInfo, "inbound answered")
	second.stop()

	// A third start finds nothing to resume.
	logs3 := newLogWatch()
	third := startService(t, b, cfg, logs3)
	third.stop()
	if n := logs3.count("resuming pending messages"); n != 0 {
		t.Fatalf("third start resumed messages")
	}
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
		t.Fatalf("last route updated %d times, want once (not again on resume)", n)
	}
}

// TestResumeLimit: a message found pending by too many starts is dropped, not run.
func TestResumeLimit(t *testing.T) {
	b := bustest.New(t)
	agent := newFakeAgent(t, b)
	cfg := baseConfig(t)
	stuck := waDirect("m1", "+15550001111", "crashes the gateway")
	j := newJournal(cfg.JournalPath)
	if err := j.put(entry{Key: runKey(stuck), Msg: stuck, AddedAt: 1, Resumes: maxResumes}); err != nil {
		t.Fatal(err)
	}
	logs := newLogWatch()
	svc := startService(t, b, cfg, logs)
	logs.wait(t, slog.LevelError, "did not finish in several starts")
	svc.stop()
	if keys := pendingKeys(t, cfg.JournalPath); len(keys) != 0 {
		t.Fatalf("journal still holds %v", keys)
	}
	if n := agent.runCount(); n != 0 {
		t.Fatalf("agent saw %d runs", n)
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
	svc.stop()
	if n := wa.sendCount(); n != 0 {
		t.Fatalf("%d sends after a failed run, want 0", n)
	}
	if keys := pendingKeys(t, cfg.JournalPath); len(keys) != 0 {
		t.Fatalf("journal still holds %v", keys)
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

// TestAgentNotRunning: with nobody serving AgentRun the message stays journaled and is
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
	publish(t, b.Conn("pub"), msg)
	logs.wait(t, slog.LevelWarn, "agent run failed; retrying")
	if keys := pendingKeys(t, cfg.JournalPath); !slices.Equal(keys, []string{runKey(msg)}) {
		t.Fatalf("journal while the agent is away = %v", keys)
	}
	agent := newFakeAgent(t, b)
	p := recv(t, agent.started, "AgentRun")
	agent.reply(t, p.IdempotencyKey, "here")
	if sp := recv(t, wa.sends, "reply"); sp.Message != "here" {
		t.Fatalf("send = %+v", sp)
	}
}

func TestAgentNotRunningGivesUp(t *testing.T) {
	b := bustest.New(t)
	cfg := baseConfig(t)
	cfg.WhatsAppAllowFrom = []string{"*"}
	cfg.RetryAttempts = 3
	logs := newLogWatch()
	svc := startService(t, b, cfg, logs)

	publish(t, b.Conn("pub"), waDirect("m1", "+436601234567", "hi"))
	r := logs.wait(t, slog.LevelError, "message dropped: agent unavailable")
	if r.Level != slog.LevelError {
		t.Fatalf("drop logged at %s", r.Level)
	}
	svc.stop()
	if n := logs.count("agent run failed; retrying"); n != 2 {
		t.Fatalf("%d retries logged, want 2", n)
	}
	if keys := pendingKeys(t, cfg.JournalPath); len(keys) != 0 {
		t.Fatalf("journal still holds %v", keys)
	}
}

// TestDuplicateAndEcho: a repeated inbound event while the message is worked on starts
// nothing, and the reply coming back as a message to yourself is not answered.
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
	publish(t, pub, msg)
	publish(t, pub, msg)
	p := recv(t, agent.started, "AgentRun")
	logs.wait(t, slog.LevelDebug, "duplicate ignored")
	agent.reply(t, p.IdempotencyKey, "noted")
	sp := recv(t, wa.sends, "reply")
	logs.wait(t, slog.LevelInfo, "inbound answered")

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
	svc.stop()
	if n := agent.ackCount(p.IdempotencyKey); n != 1 {
		t.Fatalf("first message run %d times", n)
	}
	if n := logs.count("own reply echoed back"); n != 2 {
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

// TestConcurrencyBound: with MaxConcurrent 1 a second message waits (journaled) until the
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
	logs.waitCount(t, "message accepted", 2)
	if keys := pendingKeys(t, cfg.JournalPath); len(keys) != 2 {
		t.Fatalf("journal = %v, want both messages", keys)
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
