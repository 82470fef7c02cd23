package main

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"go.mau.fi/whatsmeow/store"

	"github.com/clawdis/clawdis/schemas"
	"github.com/clawdis/clawdis/services/telegram/telegramtest"
	"github.com/clawdis/clawdis/services/whatsapp"
	"github.com/clawdis/clawdis/services/whatsapp/whatsapptest"
)

// TestWebChatServerMethods clicks through the page against the real gateway's chat.abort,
// sessions.list, sessions.reset and web.login.*, with a Telegram message in the
// transcript: the message labelled as Telegram's, Stop mid-stream keeping the partial reply
// marked (also after a reload, from the transcript), a failed run keeping its partial text,
// switching conversations, starting a new one, and linking WhatsApp by its QR codes (WhatsApp
// itself faked at the network boundary, whatsapptest).
func TestWebChatServerMethods(t *testing.T) {
	exe := needChrome(t)
	// Nothing may reach WhatsApp's servers: the connection after linking dials a closed
	// local port instead (whatsmeow takes its proxy from the environment).
	t.Setenv("HTTPS_PROXY", "http://127.0.0.1:9")
	wa := whatsapptest.New()
	pidfile := filepath.Join(t.TempDir(), "pids")
	cfg := abortAgentConfig(t, pidfile)
	d, api := telegramGateway(t, ", "+strings.TrimSuffix(strings.TrimPrefix(cfg, "{"), "}"), func(df *daemonFlags) {
		df.whatsAppLogin = func(ctx context.Context, dev *store.Device, log *slog.Logger) whatsapp.LoginConn {
			return wa.Dial(ctx, dev, log)
		}
	})
	waitTelegramState(t, d.url, schemas.TelegramPolling)
	api.InjectMessage(telegramtest.DirectText(4242, "hello from Telegram"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := api.WaitSent(ctx); err != nil {
		t.Fatalf("no reply to the Telegram message: %v", err)
	}

	bctx := browser(t, exe)
	if err := chromedp.Do(bctx, desktop(), chromedp.Navigate(startWebChat(t, d.url))); err != nil {
		t.Fatal(err)
	}
	connected := `document.querySelector('#conn').dataset.state === 'connected'`
	waitJS(t, bctx, "connected", connected)
	waitJS(t, bctx, "the Telegram message", `(() => { const li = document.querySelector('#log li.incoming');
		return !!li && li.dataset.channel === 'telegram' && li.querySelector('.from').textContent.startsWith('Telegram · ')
			&& li.querySelector('.text').textContent === 'hello from Telegram'; })()`)
	t.Logf("labelled %q", must(t, bctx, chromedp.Evaluate[string](`document.querySelector('#log li.incoming .from').textContent`)))

	// Stop mid-stream: the partial reply stays, marked stopped.
	lastStopped := `(() => { const li = [...document.querySelectorAll('#log li.assistant')].pop();
		return !!li && li.querySelector('.text').textContent === 'partial reply'
			&& li.querySelector('.note[data-kind="stopped"]')?.textContent === 'stopped'; })()`
	sendText(t, bctx, "a slow one")
	waitJS(t, bctx, "the streaming reply and Stop", `(() => { const li = [...document.querySelectorAll('#log li.assistant')].pop();
		return li.dataset.state === 'streaming' && li.querySelector('.text').textContent === 'partial reply'
			&& !document.getElementById('stop').hidden; })()`)
	shoot(t, bctx, "server-streaming")
	if err := chromedp.Do(bctx, chromedp.Click(chromedp.ID("stop"))); err != nil {
		t.Fatal(err)
	}
	waitJS(t, bctx, "the stopped reply", lastStopped+` && [...document.querySelectorAll('#log li.assistant')].pop().dataset.state === 'aborted'
		&& document.getElementById('stop').hidden`)
	if err := chromedp.Do(bctx, chromedp.Reload()); err != nil {
		t.Fatal(err)
	}
	waitJS(t, bctx, "the stopped reply from the transcript", connected+` && `+lastStopped)
	shoot(t, bctx, "server-stopped")

	// A failed run keeps its partial text, with the error under it.
	sendText(t, bctx, "this will fail")
	waitJS(t, bctx, "the failed reply", `(() => { const li = [...document.querySelectorAll('#log li.assistant')].pop();
		return li.dataset.state === 'error' && li.querySelector('.text').textContent === 'half an answer'
			&& /backend exploded/.test(li.querySelector('.note[data-kind="error"]')?.textContent ?? ''); })()`)
	shoot(t, bctx, "server-failed")

	// Another conversation, then back by the list, then a new conversation under main.
	must(t, bctx, chromedp.Evaluate[chromedp.Void](`(() => { const s = document.getElementById('session');
		s.value = 'side'; s.dispatchEvent(new Event('change')); })()`))
	waitJS(t, bctx, "the empty side conversation", `new URLSearchParams(location.search).get('session') === 'side'
		&& document.querySelectorAll('#log li').length === 0 && !document.getElementById('empty').hidden`)
	sendText(t, bctx, "hello side")
	waitJS(t, bctx, "the reply in side", lastReply("echo: hello side"))
	waitJS(t, bctx, "both conversations listed", `(() => { const keys = [...document.querySelectorAll('#session-list button')].map((b) => b.dataset.key);
		return keys.includes('main') && keys.includes('side')
			&& document.querySelector('#session-list button[aria-current="true"]')?.dataset.key === 'side'
			&& document.querySelector('#session-list button[data-key="side"] .preview').textContent === 'echo: hello side'; })()`)
	shoot(t, bctx, "server-sessions")
	if err := chromedp.Do(bctx, chromedp.Click(chromedp.CSS(`#session-list button[data-key="main"]`))); err != nil {
		t.Fatal(err)
	}
	waitJS(t, bctx, "back in main", `new URLSearchParams(location.search).get('session') === 'main'
		&& document.getElementById('session').value === 'main' && `+lastStopped)
	c, _ := dialEvents(t, d.url)
	before := history(t, c, "main")
	if err := chromedp.Do(bctx, chromedp.Click(chromedp.ID("new-session"))); err != nil {
		t.Fatal(err)
	}
	// WhatsApp runs here unlinked and the gateway offers web.login.*: the hint and the
	// providers panel offer to link it.
	waitJS(t, bctx, "the new conversation", `document.querySelectorAll('#log li').length === 0 && !document.getElementById('empty').hidden
		&& !document.getElementById('empty-wa').hidden && !document.getElementById('wa-link').hidden`)
	after := history(t, c, "main")
	if len(after.Messages) != 0 || after.SessionID == before.SessionID || before.SessionID == "" {
		t.Errorf("after New conversation: session %q with %d messages (before: %q)", after.SessionID, len(after.Messages), before.SessionID)
	}
	shoot(t, bctx, "server-new-conversation")

	// Linking WhatsApp: WhatsApp's code, swapped for the rotated one, then "Linked as".
	must(t, bctx, chromedp.Evaluate[chromedp.Void](`window.__qr = [];
		new MutationObserver(() => { const s = document.getElementById('wa-qr').getAttribute('src'); if (s) window.__qr.push(s); })
			.observe(document.getElementById('wa-qr'), { attributes: true, attributeFilter: ['src'] })`))
	if err := chromedp.Do(bctx, chromedp.Click(chromedp.ID("wa-link"))); err != nil {
		t.Fatal(err)
	}
	var conn *whatsapptest.Conn
	select {
	case conn = <-wa.Dials():
	case <-time.After(20 * time.Second):
		t.Fatal("Link WhatsApp made no login connection")
	}
	conn.Code("2@first-code", time.Minute)
	shownQR := `!document.getElementById('wa-qr').hidden && document.getElementById('wa-qr').naturalWidth > 0
		&& window.__qr.every((s) => s.startsWith('data:image/png;base64,'))`
	waitJS(t, bctx, "the first QR code", `window.__qr.length === 1 && `+shownQR)
	shoot(t, bctx, "server-qr")
	conn.Code("2@second-code", 20*time.Second)
	waitJS(t, bctx, "the rotated QR code", `window.__qr.length === 2 && window.__qr[0] !== window.__qr[1] && `+shownQR)
	if err := conn.Scan("15550001234"); err != nil {
		t.Fatal(err)
	}
	waitJS(t, bctx, "linked", `document.getElementById('wa-status').textContent === 'Linked as +15550001234'
		&& document.getElementById('wa-qr').hidden`)
	// The provider runs again with the new link (it cannot reach WhatsApp here) and health
	// follows: WhatsApp is no longer offered for linking.
	waitJS(t, bctx, "health after linking", `!document.querySelector('#health dd[data-key="whatsapp"]').textContent.startsWith('unlinked')
		&& document.getElementById('empty-wa').hidden`)
	// Its last error (a long dial error here) wraps inside the panel.
	if w := must(t, bctx, chromedp.Evaluate[[]int](`(() => { const s = document.getElementById('side'); return [s.scrollWidth, s.clientWidth]; })()`)); w[0] > w[1] {
		t.Errorf("the side panel overflows: scroll width %d, width %d", w[0], w[1])
	}
	shoot(t, bctx, "server-linked")
}
