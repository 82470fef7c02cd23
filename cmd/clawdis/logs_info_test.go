package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/clawdis/clawdis/schemas"
	"github.com/clawdis/clawdis/services/telegram/telegramtest"
)

// TestLogsAtInfo starts the gateway at info with its providers, connects a CLI client and
// checks the output (SPEC §14.2): one ready line saying what to do next, each provider's
// state once per change, no per-service ping lines, no CLI connect lines, durations in
// milliseconds in JSON.
func TestLogsAtInfo(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	t.Setenv("TELEGRAM_BOT_TOKEN", "")
	d := startDaemon(t, t.TempDir(), "", func(df *daemonFlags) { df.noProviders = false })
	c := dialTest(t, d.url, "cli", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.Request(ctx, schemas.MethodHealth, nil); err != nil {
		t.Fatal(err)
	}
	c.Close()
	d.stop()

	var ready []string
	lastState := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(d.logs.String()), "\n") {
		var r map[string]any
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("not a JSON log line: %q", line)
		}
		msg, _ := r["msg"].(string)
		switch {
		case strings.HasPrefix(msg, "ready: "):
			ready = append(ready, msg)
		case msg == "service answers" || msg == "webchat listening" || msg == "network stopped for good":
			t.Errorf("at info: %s", line)
		case msg == "client connected" && r["mode"] == "cli":
			t.Errorf("a cli client's connect at info: %s", line)
		case msg == "provider state":
			comp, _ := r["component"].(string)
			state, _ := r["state"].(string)
			if lastState[comp] == state {
				t.Errorf("provider state logged twice for one change: %s", line)
			}
			lastState[comp] = state
		}
		if _, ok := r["timeout"]; ok {
			t.Errorf("a duration in nanoseconds: %s", line)
		}
	}
	if len(ready) != 1 {
		t.Fatalf("want one ready line, got %q\nlogs:\n%s", ready, d.logs.String())
	}
	for _, want := range []string{"ready: " + d.url + " · ", "no config file; defaults", "WhatsApp not linked (run: clawdis login)",
		"Telegram not configured", "agent: none"} {
		if !strings.Contains(ready[0], want) {
			t.Errorf("ready line %q lacks %q", ready[0], want)
		}
	}
	if len(lastState) != 2 {
		t.Errorf("provider state lines for %v, want whatsapp and telegram", lastState)
	}
	if !strings.Contains(d.logs.String(), `"timeout_ms":600000`) {
		t.Errorf("no timeout_ms in the agent's start line:\n%s", d.logs.String())
	}
}

// TestInboundOutcomesAtInfo: with Telegram on a fake Bot API, a DM from an allowed sender
// and one from a stranger each get one info line with the outcome (and the reason for the
// one not answered), and the ready line names the bot's state.
func TestInboundOutcomesAtInfo(t *testing.T) {
	script := agentConfig(t)
	d, api := telegramGateway(t, ", "+strings.TrimSuffix(strings.TrimPrefix(script, "{"), "}"))
	waitTelegramState(t, d.url, schemas.TelegramPolling)

	api.InjectMessage(telegramtest.DirectText(777, "from a stranger"))
	api.InjectMessage(telegramtest.DirectText(4242, "hi bot"))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := api.WaitSent(ctx); err != nil {
		t.Fatalf("no reply: %v\nlogs: %s", err, d.logs.String())
	}
	waitLogged(t, d.logs, `"msg":"inbound answered"`)
	d.stop()

	outcomes := map[string][]map[string]any{}
	for _, line := range strings.Split(strings.TrimSpace(d.logs.String()), "\n") {
		var r map[string]any
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("not a JSON log line: %q", line)
		}
		if msg, _ := r["msg"].(string); strings.HasPrefix(msg, "inbound ") {
			outcomes[msg] = append(outcomes[msg], r)
		}
		if msg, _ := r["msg"].(string); strings.HasPrefix(msg, "ready: ") && !strings.Contains(msg, "Telegram ") {
			t.Errorf("ready line without Telegram: %s", msg)
		}
	}
	no, yes := outcomes["inbound not answered"], outcomes["inbound answered"]
	if len(no) != 1 || no[0]["chat_id"] != "777" || no[0]["provider"] != "telegram" || no[0]["reason"] == "" || no[0]["level"] != "INFO" {
		t.Errorf("not answered lines: %v", no)
	}
	if len(yes) != 1 || yes[0]["chat_id"] != "4242" || yes[0]["provider"] != "telegram" || yes[0]["level"] != "INFO" {
		t.Errorf("answered lines: %v", yes)
	}
}

// waitLogged waits until the daemon's log holds want, failing after 20 s.
func waitLogged(t *testing.T, logs *syncBuf, want string) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !strings.Contains(logs.String(), want) {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("never logged %s; logs:\n%s", want, logs.String())
		}
	}
}
