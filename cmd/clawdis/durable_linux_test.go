package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/clawdis/clawdis/services/telegram/telegramtest"
)

// gateAgentConfig is a config whose agent is testdata/gate-agent.sh working in dir, and
// whose Telegram bot talks to api and answers the chats allow.
func gateAgentConfig(t *testing.T, dir string, api *telegramtest.Server, allow ...int64) string {
	t.Helper()
	script, err := filepath.Abs("testdata/gate-agent.sh")
	if err != nil {
		t.Fatal(err)
	}
	argv, _ := json.Marshal([]string{script, dir, "{{Body}}"})
	ids, _ := json.Marshal(allow)
	return `{agent: {backend: "command", command: ` + string(argv) + `, timeoutSeconds: 120},
		telegram: {botToken: "` + testBotToken + `", apiRoot: "` + api.URL + `", allowFrom: ` + string(ids) + `}}`
}

// startDurableGateway runs the gateway binary with providers on stateDir, whose
// clawdis.json must exist, and waits until Telegram polls.
func startDurableGateway(t *testing.T, home, stateDir string, port int) *gatewayProc {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p := startProc(t, home, port, exe, "gateway", "--state-dir", stateDir, "--port", strconv.Itoa(port),
		"--log-format", "json", "--no-webchat")
	p.waitListening()
	p.waitLog("telegram long polling started")
	return p
}

// waitLogs waits until n records with msg were logged.
func (p *gatewayProc) waitLogs(msg string, n int) {
	p.t.Helper()
	seen := 0
	_, err := p.logs.wait(func(r map[string]any) bool {
		if r["msg"] == msg {
			seen++
		}
		return seen == n
	}, procTimeout)
	if err != nil {
		p.t.Fatalf("waiting for %d logs %q (saw %d): %v\nstdout:\n%s", n, msg, seen, err, p.logs.text())
	}
}

// waitFileLine waits until the file at path has the line line (the gate agent writes its
// runs there; nothing else tells that a command started).
func waitFileLine(t *testing.T, path, line string) {
	t.Helper()
	deadline := time.After(procTimeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if b, err := os.ReadFile(path); err == nil && slices.Contains(strings.Split(string(b), "\n"), line) {
			return
		}
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("no line %q in %s within %s", line, path, procTimeout)
		}
	}
}

// waitTyping waits until Telegram was shown "typing" in every chat of chats.
func waitTyping(t *testing.T, api *telegramtest.Server, chats ...int64) {
	t.Helper()
	want := slices.Clone(chats)
	deadline := time.After(procTimeout)
	for len(want) > 0 {
		select {
		case a := <-api.Actions():
			want = slices.DeleteFunc(want, func(c int64) bool { return a.Action == "typing" && strconv.FormatInt(c, 10) == a.ChatID })
		case <-deadline:
			t.Fatalf("no typing in chats %v", want)
		}
	}
}

// TestTelegramDMsSurviveKill9: DMs arrive while the run of an earlier one is in progress;
// the gateway is killed with SIGKILL and started again on the same state dir: every DM is
// answered exactly once, and nothing is left in the inbound stream.
func TestTelegramDMsSurviveKill9(t *testing.T) {
	requireLinux(t)
	home, state, work := t.TempDir(), t.TempDir(), t.TempDir()
	api := telegramtest.New(testBotToken)
	t.Cleanup(api.Close)
	chats := []int64{4242, 4343, 4444}
	if err := os.WriteFile(filepath.Join(state, "clawdis.json"), []byte(gateAgentConfig(t, work, api, chats...)), 0o600); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	first := startDurableGateway(t, home, state, port)
	api.InjectMessage(telegramtest.DirectText(chats[0], "dm-1"))
	waitTyping(t, api, chats[0])
	waitFileLine(t, filepath.Join(work, "runs"), "dm-1") // dm-1's command runs (and waits for its gate)
	api.InjectMessage(telegramtest.DirectText(chats[1], "dm-2"))
	api.InjectMessage(telegramtest.DirectText(chats[2], "dm-3"))
	waitTyping(t, api, chats[1], chats[2]) // stored, handed to autoreply, queued at the agent
	if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	first.waitExit()
	if n := len(api.SentMessages()); n != 0 {
		t.Fatalf("%d replies before the kill, want none", n)
	}

	second := startDurableGateway(t, home, state, port)
	if err := os.WriteFile(filepath.Join(work, "gate"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), procTimeout)
	defer cancel()
	got := map[string]int{}
	for range 3 {
		s, err := api.WaitSent(ctx)
		if err != nil {
			t.Fatalf("replies %v, want one to each DM: %v\nlogs:\n%s", got, err, second.logs.text())
		}
		got[strconv.FormatInt(s.Chat, 10)+" "+s.Text]++
	}
	second.waitLogs("inbound answered", 3) // logged once each is acknowledged to the stream
	for i, c := range chats {
		if k := strconv.FormatInt(c, 10) + " reply to dm-" + strconv.Itoa(i+1); got[k] != 1 {
			t.Fatalf("replies %v, want %q once", got, k)
		}
	}
	// A DM after them is answered too, and after it nothing else was sent: the main
	// session runs its turns in order, so a doubled answer would have come first.
	api.InjectMessage(telegramtest.DirectText(chats[0], "dm-4"))
	s, err := api.WaitSent(ctx)
	if err != nil || s.Text != "reply to dm-4" {
		t.Fatalf("reply to dm-4: %+v %v", s, err)
	}
	second.waitLogs("inbound answered", 4)
	if n := len(api.SentMessages()); n != 4 {
		t.Fatalf("%d replies, want 4: %+v", n, api.SentMessages())
	}
	// dm-1 ran in each gateway (the first run was killed); dm-2 and dm-3 only waited in
	// the first, behind dm-1 in the session's turn.
	runs, _ := os.ReadFile(filepath.Join(work, "runs"))
	for word, n := range map[string]int{"dm-1": 2, "dm-2": 1, "dm-3": 1, "dm-4": 1} {
		if c := strings.Count(string(runs), word+"\n"); c != n {
			t.Fatalf("%s ran %d times, want %d: %q", word, c, n, runs)
		}
	}
}

// TestSplitAutoreplyStartedLater: a gateway without autoreply (--bus-listen, --without
// autoreply) takes Telegram DMs into the inbound stream; `clawdis service autoreply`
// started later answers each exactly once.
func TestSplitAutoreplyStartedLater(t *testing.T) {
	requireLinux(t)
	home, state, work := t.TempDir(), t.TempDir(), t.TempDir()
	api := telegramtest.New(testBotToken)
	t.Cleanup(api.Close)
	if err := os.WriteFile(filepath.Join(work, "gate"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(state, "clawdis.json")
	if err := os.WriteFile(config, []byte(gateAgentConfig(t, work, api, 4242)), 0o600); err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	gw := startProc(t, home, port, exe, "gateway", "--state-dir", state, "--port", strconv.Itoa(port),
		"--log-format", "json", "--no-webchat", "--bus-listen", "127.0.0.1:0", "--without", "autoreply")
	natsURL, _ := gw.waitLog("bus listening")["nats_url"].(string)
	gw.waitListening()
	gw.waitLog("telegram long polling started")
	for i := 1; i <= 3; i++ {
		api.InjectMessage(telegramtest.DirectText(4242, "split-"+strconv.Itoa(i)))
	}
	ctx, cancel := context.WithTimeout(context.Background(), procTimeout)
	defer cancel()
	if err := api.WaitConfirmed(ctx); err != nil { // stored: Telegram was told so
		t.Fatal(err)
	}
	if n := len(api.SentMessages()); n != 0 {
		t.Fatalf("%d replies without autoreply", n)
	}

	svc := startProc(t, home, 0, exe, "service", "autoreply", "--nats-url", natsURL, "--state-dir", t.TempDir(),
		"--config", config, "--log-format", "json")
	svc.waitLog("service running")
	got := map[string]int{}
	for range 3 {
		s, err := api.WaitSent(ctx)
		if err != nil {
			t.Fatalf("replies %v: %v\nservice logs:\n%s", got, err, svc.logs.text())
		}
		got[s.Text]++
	}
	svc.waitLogs("inbound answered", 3)
	for i := 1; i <= 3; i++ {
		if k := "reply to split-" + strconv.Itoa(i); got[k] != 1 {
			t.Fatalf("replies %v, want %q once", got, k)
		}
	}
	api.InjectMessage(telegramtest.DirectText(4242, "split-4"))
	if s, err := api.WaitSent(ctx); err != nil || s.Text != "reply to split-4" {
		t.Fatalf("reply to split-4: %+v %v", s, err)
	}
	if n := len(api.SentMessages()); n != 4 {
		t.Fatalf("%d replies, want 4: %+v", n, api.SentMessages())
	}
	_ = svc.cmd.Process.Signal(syscall.SIGTERM)
	if code := svc.waitExit(); code != 0 {
		t.Errorf("autoreply exited %d", code)
	}
}
