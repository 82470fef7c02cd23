//go:build integration

package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clawdis/clawdis/schemas"
	"github.com/clawdis/clawdis/services/telegram/telegramtest"
)

// The durability tests (SPEC §13): direct messages the telegram container accepted are
// answered exactly once, whatever was away while they arrived. Every DM of a test comes from
// a chat of its own, so that a reply is attributed to its DM by chat and text; Telegram DMs
// all go to the agent's main session, whose turns run one after another.

// dm is one direct message injected into the fake Bot API.
type dm struct {
	chat int64
	text string
}

// lastChat is the last chat id dmBatch handed out: every batch comes from chats of its own,
// also when a test runs again (-count) on the same stack.
var lastChat atomic.Int64

func init() { lastChat.Store(710000) }

// dmBatch is n DMs from n chats no other batch used, with texts that name their number (no
// text is a prefix of another).
func dmBatch(n int, what string) []dm {
	first := lastChat.Add(int64(n)) - int64(n) + 1
	dms := make([]dm, n)
	for i := range dms {
		dms[i] = dm{chat: first + int64(i), text: fmt.Sprintf("%s, DM %d of %d.", what, i+1, n)}
	}
	return dms
}

// inject posts d to the fake Bot API.
func (s *stack) inject(t *testing.T, d dm) {
	t.Helper()
	s.fakeInject(t, d.chat, d.text)
}

// waitConfirmed waits until the telegram service confirmed every update injected so far to
// the fake (moved its getUpdates offset past them): it does so only once the inbound stream
// stored them (SPEC §13), so from here on they are the bus's to lose.
func (s *stack) waitConfirmed(t *testing.T, ctx context.Context) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.fakeURL("/_fake/confirmed"), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("the telegram service never confirmed the injected updates: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("/_fake/confirmed: %s", resp.Status)
	}
}

// repliesTo counts the messages the bot sent to each chat of dms, and among them the ones
// that answer the chat's DM (the scripted agent echoes the text).
func repliesTo(sent []telegramtest.Sent, dms []dm) (toChat, answers map[int64]int) {
	toChat, answers = map[int64]int{}, map[int64]int{}
	for _, d := range dms {
		toChat[d.chat], answers[d.chat] = 0, 0
	}
	for _, m := range sent {
		for _, d := range dms {
			if m.Chat != d.chat {
				continue
			}
			toChat[d.chat]++
			if m.Method == "sendMessage" && strings.Contains(m.Text, "echo: ") && strings.Contains(m.Text, d.text) {
				answers[d.chat]++
			}
		}
	}
	return toChat, answers
}

// requireUnanswered fails t when the bot already sent anything to a chat of dms.
func (s *stack) requireUnanswered(t *testing.T, ctx context.Context, dms []dm) {
	t.Helper()
	sent, err := s.fakeSent(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if toChat, _ := repliesTo(sent, dms); sum(toChat) != 0 {
		t.Fatalf("sent to the DMs' chats while nothing should answer them: %v", toChat)
	}
}

// requireAnsweredOnce waits until every DM of dms has its reply and autoreply logged it
// answered (which it does after the inbound stream confirmed its acknowledgement: the
// message is not delivered again). Then one more DM, from the first DM's chat, is answered
// too, and by then the bot has sent exactly one message to each chat of dms, its DM's answer,
// and one more to the first chat: a doubled answer to any of them would have come before
// the last DM's, as the main session runs its turns in order.
func (s *stack) requireAnsweredOnce(t *testing.T, ctx context.Context, dms []dm) {
	t.Helper()
	var (
		toChat, answers map[int64]int
		sent            []telegramtest.Sent
		err             error
	)
	for {
		if sent, err = s.fakeSent(ctx); err == nil {
			toChat, answers = repliesTo(sent, dms)
			if count(answers, func(n int) bool { return n > 0 }) == len(dms) {
				break
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("not every DM was answered: answers per chat %v (all sent to the chats: %v; err %v)", answers, toChat, err)
		case <-time.After(200 * time.Millisecond): // the fake is another process: poll it
		}
	}
	s.waitLogged(t, ctx, "autoreply", func(recs []logRecord) (bool, string) {
		answered := map[string]int{}
		for _, r := range recs {
			if r.Msg == "inbound answered" && r.Provider == "telegram" {
				answered[r.ChatID]++
			}
		}
		missing := 0
		for _, d := range dms {
			if answered[strconv.FormatInt(d.chat, 10)] == 0 {
				missing++
			}
		}
		return missing == 0, fmt.Sprintf("%d of %d DMs not logged answered", missing, len(dms))
	})
	last := dm{chat: dms[0].chat, text: fmt.Sprintf("One more after the %d, to close the window.", len(dms))}
	s.inject(t, last)
	s.waitSent(t, ctx, last.chat, func(m telegramtest.Sent) bool { return strings.Contains(m.Text, last.text) })
	if sent, err = s.fakeSent(ctx); err != nil {
		t.Fatal(err)
	}
	toChat, answers = repliesTo(sent, dms)
	for _, d := range dms {
		want := 1
		if d.chat == last.chat {
			want = 2
		}
		if answers[d.chat] != 1 || toChat[d.chat] != want {
			t.Fatalf("chat %d: %d answers to %q and %d messages in all, want 1 and %d (answers per chat %v, all sent %v)",
				d.chat, answers[d.chat], d.text, toChat[d.chat], want, answers, toChat)
		}
	}
}

// logRecord is the part of a JSON log record the tests read.
type logRecord struct {
	Level    string `json:"level"`
	Msg      string `json:"msg"`
	Provider string `json:"provider"`
	ChatID   string `json:"chat_id"`
	Err      string `json:"err"`
}

// logs reads every JSON log record service's container wrote, across its restarts.
func (s *stack) logs(ctx context.Context, service string) ([]logRecord, error) {
	id, err := s.containerIDErr(service)
	if err != nil {
		return nil, err
	}
	out, err := exec.CommandContext(ctx, "docker", "logs", id).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("docker logs %s: %w", service, err)
	}
	var recs []logRecord
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		var r logRecord
		if json.Unmarshal(sc.Bytes(), &r) == nil && r.Msg != "" {
			recs = append(recs, r)
		}
	}
	return recs, nil
}

// containerID is the id of service's container, failing t when there is none.
func (s *stack) containerID(t *testing.T, service string) string {
	t.Helper()
	id, err := s.containerIDErr(service)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func (s *stack) containerIDErr(service string) (string, error) {
	out, err := s.run(time.Minute, "ps", "-q", service)
	if err != nil {
		return "", err
	}
	id := strings.TrimSpace(out)
	if id == "" || strings.ContainsAny(id, " \n") {
		return "", fmt.Errorf("not one container for %s: %q", service, id)
	}
	return id, nil
}

// waitLogged polls service's log until cond accepts it; cond also says what it misses, for
// the failure message.
func (s *stack) waitLogged(t *testing.T, ctx context.Context, service string, cond func([]logRecord) (bool, string)) {
	t.Helper()
	last := "no log read"
	for {
		recs, err := s.logs(ctx, service)
		if err == nil {
			var ok bool
			if ok, last = cond(recs); ok {
				return
			}
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s never logged what the test waits for: %s", service, last)
		case <-time.After(500 * time.Millisecond): // the log is another process's: poll it
		}
	}
}

func sum(m map[int64]int) (n int) {
	for _, v := range m {
		n += v
	}
	return n
}

func count(m map[int64]int, f func(int) bool) (n int) {
	for _, v := range m {
		if f(v) {
			n++
		}
	}
	return n
}

// TestTelegramDMsWaitForAutoreply: five DMs arrive while the autoreply container is
// stopped. The telegram container stores them in the inbound stream (it confirms them to
// the Bot API) and nothing answers them; once autoreply starts again it answers each exactly
// once, and nothing more arrives after them.
func TestTelegramDMsWaitForAutoreply(t *testing.T) {
	s, c, ctx := breaking(t, "autoreply")
	dms := dmBatch(5, "Sent while autoreply was stopped")

	s.composeT(t, "stop", "autoreply")
	waitHealth(t, ctx, s, c, func(h schemas.HealthSummary) bool { return !serviceOK(h, "autoreply") })
	for _, d := range dms {
		s.inject(t, d)
	}
	s.waitConfirmed(t, ctx)
	s.requireUnanswered(t, ctx, dms)

	s.composeT(t, "start", "autoreply")
	s.requireAnsweredOnce(t, ctx, dms)
}
