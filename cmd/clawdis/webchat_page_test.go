package main

import (
	"context"
	"encoding/json"
	"os"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// screenshotDir is where the page tests keep their screenshots: $CLAWDIS_SCREENSHOTS (or
// the older $CLAWDIS_SCREENSHOT_DIR) when set, else a temporary directory.
func screenshotDir(t *testing.T) string {
	for _, k := range []string{"CLAWDIS_SCREENSHOTS", "CLAWDIS_SCREENSHOT_DIR"} {
		if d := os.Getenv(k); d != "" {
			if err := os.MkdirAll(d, 0o755); err != nil {
				t.Fatal(err)
			}
			return d
		}
	}
	return t.TempDir()
}

// shoot saves a full-page screenshot of the current state as name.png.
func shoot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	savePNG(t, name+".png", must(t, ctx, chromedp.FullScreenshot(100)))
}

// colorScheme emulates prefers-color-scheme ("light" or "dark").
func colorScheme(scheme string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}}})
		return err
	})
}

// phone and desktop are the two window sizes the page is checked at.
func phone() chromedp.Action[chromedp.Void] {
	return chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile)
}
func desktop() chromedp.Action[chromedp.Void] {
	return chromedp.EmulateViewport(1280, 900)
}

// sendText types a message (newlines included) into the composer and sends it.
func sendText(t *testing.T, ctx context.Context, text string) {
	t.Helper()
	q, _ := json.Marshal(text)
	must(t, ctx, chromedp.Evaluate[chromedp.Void](`document.getElementById('input').value = `+string(q)))
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("send"))); err != nil {
		t.Fatal(err)
	}
}

// TestWebChatPage clicks through what the page shows beyond a plain transcript (SPEC §10):
// a reply rendered as Markdown, timestamps, messages that came from a provider, with
// screenshots at desktop and phone width in light and dark.
func TestWebChatPage(t *testing.T) {
	exe := needChrome(t)
	t.Setenv("HOME", t.TempDir())
	d := startDaemon(t, t.TempDir(), agentConfig(t), nil)
	page := startWebChat(t, d.url)
	bctx := browser(t, exe)
	if err := chromedp.Do(bctx, desktop(), chromedp.Navigate(page)); err != nil {
		t.Fatal(err)
	}
	waitJS(t, bctx, "connected", `document.querySelector('#conn').dataset.state === 'connected'`)

	// A new conversation says what to do. WhatsApp is disabled here (no providers), so
	// linking it is offered nowhere.
	waitJS(t, bctx, "the empty-state hint", `(() => { const e = document.getElementById('empty');
		return !e.hidden && e.offsetHeight > 0 && e.textContent.includes('Type a message')
			&& e.textContent.includes('agent configured on the gateway')
			&& document.querySelector('#health dd[data-key="whatsapp"]')?.textContent === 'disabled'
			&& document.getElementById('empty-wa').hidden && document.getElementById('wa-link').hidden; })()`)
	shoot(t, bctx, "page-empty-desktop-light")
	checkDrawer(t, bctx)
	shoot(t, bctx, "page-empty-phone-light")
	if err := chromedp.Do(bctx, desktop()); err != nil {
		t.Fatal(err)
	}

	// A reply in Markdown (the echo agent repeats the prompt); the hint goes away.
	sendText(t, bctx, "**bold** and [the site](https://example.com/x) and `code`\n\n```go\nx := 1\n```")
	waitJS(t, bctx, "the Markdown reply", `(() => { const li = [...document.querySelectorAll('#log li.assistant')].pop();
		return !!li && li.dataset.state === 'done' && !!li.querySelector('.text pre code'); })()`)
	var md struct {
		Bold, LinkText, Href, Target, Rel, CodeFont, PreFont, BodyFont, UserText string
	}
	raw := must(t, bctx, chromedp.Evaluate[string](`(() => {
		const li = [...document.querySelectorAll('#log li.assistant')].pop();
		const a = li.querySelector('.text a');
		const font = (e) => e ? getComputedStyle(e).fontFamily : '';
		return JSON.stringify({ Bold: li.querySelector('.text strong')?.textContent, LinkText: a?.textContent,
			Href: a?.getAttribute('href'), Target: a?.target, Rel: a?.rel,
			CodeFont: font(li.querySelector('.text p code')), PreFont: font(li.querySelector('.text pre')),
			BodyFont: font(li.querySelector('.text p')),
			UserText: [...document.querySelectorAll('#log li.user .text')].pop().textContent });
	})()`))
	if err := json.Unmarshal([]byte(raw), &md); err != nil {
		t.Fatal(err)
	}
	t.Logf("rendered reply: %+v", md)
	if md.Bold != "bold" || md.LinkText != "the site" || md.Href != "https://example.com/x" ||
		md.Target != "_blank" || md.Rel != "noopener noreferrer" {
		t.Errorf("reply Markdown: %+v", md)
	}
	if !monospace(md.PreFont) || !monospace(md.CodeFont) || monospace(md.BodyFont) {
		t.Errorf("fonts: pre %q, code %q, text %q; want monospace for code only", md.PreFont, md.CodeFont, md.BodyFont)
	}
	if want := "**bold** and [the site](https://example.com/x) and `code`\n\n```go\nx := 1\n```"; md.UserText != want {
		t.Errorf("the owner's message shows %q, want the plain text %q", md.UserText, want)
	}

	// Nothing in the side panel runs over its edge.
	waitJS(t, bctx, "the side panel within its width", `(() => { const s = document.getElementById('side');
		return s.scrollWidth <= s.clientWidth && [...s.querySelectorAll('dd')].every((dd) => dd.scrollWidth <= dd.clientWidth); })()`)

	// Every message carries its time: short text, the full date in the title.
	waitJS(t, bctx, "timestamps", `[...document.querySelectorAll('#log li')].every((li) => {
		const tm = li.querySelector('.meta time');
		return !!tm && /\d/.test(tm.textContent) && tm.title.length > tm.textContent.length && !isNaN(Date.parse(tm.dateTime));
	})`)

	// A message that came from Telegram is shown as someone else's, labelled, without the
	// envelope the agent saw, and as plain text.
	must(t, bctx, chromedp.Evaluate[chromedp.Void](`import('/messages.js').then(({ bubble }) => {
		document.getElementById('log').append(bubble({ role: 'user', channel: 'telegram', sender: 'Ada', timestamp: Date.now(),
			content: [{ type: 'text', text: '[Telegram 123456789 2026-12-06T11:12:19Z] hi from **Telegram**' }] }));
	})`, chromedp.EvalAwaitPromise))
	waitJS(t, bctx, "the Telegram message", `(() => { const li = document.querySelector('#log li.incoming');
		return !!li && li.dataset.channel === 'telegram' && li.querySelector('.from').textContent === 'Telegram · Ada'
			&& li.querySelector('.text').textContent === 'hi from **Telegram**' && !li.querySelector('.text strong')
			&& getComputedStyle(li).alignSelf === 'flex-start'
			&& getComputedStyle(li).backgroundColor !== getComputedStyle(document.querySelector('#log li.user:not(.incoming)')).backgroundColor; })()`)

	for _, scheme := range []string{"light", "dark"} {
		if err := chromedp.Do(bctx, colorScheme(scheme), desktop()); err != nil {
			t.Fatal(err)
		}
		shoot(t, bctx, "page-desktop-"+scheme)
		if err := chromedp.Do(bctx, phone()); err != nil {
			t.Fatal(err)
		}
		waitJS(t, bctx, "the phone layout", `innerWidth === 390`)
		shoot(t, bctx, "page-phone-"+scheme)
	}

	// The gateway goes away: every status says so, none stays "ok".
	if err := chromedp.Do(bctx, colorScheme("light"), desktop()); err != nil {
		t.Fatal(err)
	}
	d.stop()
	waitJS(t, bctx, "every status unknown", allUnknown)
	shoot(t, bctx, "page-gateway-stopped-desktop")
	if err := chromedp.Do(bctx, phone()); err != nil {
		t.Fatal(err)
	}
	shoot(t, bctx, "page-gateway-stopped-phone")
}

// checkDrawer checks the status drawer at phone width: its toggle opens it below the
// header (never over the toggle), and its close button, Esc and a click outside close it.
func checkDrawer(t *testing.T, ctx context.Context) {
	t.Helper()
	if err := chromedp.Do(ctx, phone()); err != nil {
		t.Fatal(err)
	}
	const open = `getComputedStyle(document.getElementById('side')).display !== 'none'`
	const closed = `getComputedStyle(document.getElementById('side')).display === 'none'`
	waitJS(t, ctx, "the phone layout, drawer closed", `innerWidth === 390 && `+closed)
	toggle := func(how string) {
		t.Helper()
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("side-toggle"))); err != nil {
			t.Fatal(err)
		}
		waitJS(t, ctx, "the drawer open before "+how, open+` && (() => {
			const s = document.getElementById('side').getBoundingClientRect(), b = document.getElementById('side-toggle').getBoundingClientRect();
			const c = document.getElementById('side-close').getBoundingClientRect();
			return s.top >= b.bottom && c.width > 0 && c.right <= innerWidth && c.top >= s.top;
		})()`)
	}
	toggle("the close button")
	shoot(t, ctx, "page-drawer-open-phone")
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("side-close"))); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "closed by its button", closed)
	toggle("Esc")
	if err := chromedp.Do(ctx, chromedp.KeyEvent(kb.Escape)); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "closed by Esc", closed)
	toggle("a click outside")
	if err := chromedp.Do(ctx, chromedp.MouseClickXY(20, 400)); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "closed by a click outside", closed)
	toggle("the toggle")
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("side-toggle"))); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "closed by the toggle", closed)
}

// allUnknown is true when the page shows the gateway as offline and no status as current.
const allUnknown = `(() => {
	const dds = [...document.querySelectorAll('#health dd')];
	return document.querySelector('#conn').dataset.state === 'offline'
		&& !document.getElementById('conn-detail').hidden
		&& dds.length === 5 && dds.every((dd) => dd.dataset.key === 'gateway'
			? dd.textContent === 'unreachable' && dd.className === 'bad'
			: dd.textContent === 'unknown' && dd.className === 'unknown')
		&& !document.querySelector('#health .good, #presence li:not(.unknown)');
})()`

// TestWebChatNoGateway: a standalone WebChat in front of a gateway that is not running says
// which gateway it tries and why it fails, instead of "connecting…" forever.
func TestWebChatNoGateway(t *testing.T) {
	exe := needChrome(t)
	t.Setenv("HOME", t.TempDir())
	dead := closedURL(t)
	bctx := browser(t, exe)
	if err := chromedp.Do(bctx, desktop(), chromedp.Navigate(startWebChat(t, dead))); err != nil {
		t.Fatal(err)
	}
	q, _ := json.Marshal(dead)
	waitJS(t, bctx, "the gateway URL and the error", allUnknown+` && document.getElementById('conn-detail').textContent.includes(`+string(q)+`)
		&& document.getElementById('conn-detail').textContent.includes('refused')`)
	t.Logf("shown: %s", must(t, bctx, chromedp.Evaluate[string](`document.getElementById('conn-detail').textContent`)))
	shoot(t, bctx, "page-no-gateway")
}

// monospace reports whether a computed font-family list starts with a monospace face.
func monospace(family string) bool {
	for _, f := range []string{"ui-monospace", "monospace", "\"DejaVu Sans Mono\"", "Menlo", "Consolas"} {
		if len(family) >= len(f) && family[:len(f)] == f {
			return true
		}
	}
	return false
}

// TestWebChatRelayGone: when the browser loses the WebChat server itself, every status says
// so too.
func TestWebChatRelayGone(t *testing.T) {
	exe := needChrome(t)
	t.Setenv("HOME", t.TempDir())
	t.Setenv("CLAWDIS_GATEWAY_TOKEN", "")
	t.Setenv("HTTPS_PROXY", "http://127.0.0.1:9") // WhatsApp runs unlinked; nothing may reach its servers
	d := startDaemon(t, t.TempDir(), "", func(df *daemonFlags) { df.noProviders = false })
	page, stop := startWebChatStop(t, d.url, "")
	bctx := browser(t, exe)
	if err := chromedp.Do(bctx, desktop(), chromedp.Navigate(page)); err != nil {
		t.Fatal(err)
	}
	waitJS(t, bctx, "connected with health shown", `document.querySelector('#conn').dataset.state === 'connected'
		&& document.querySelector('#health dd[data-key="gateway"]')?.textContent === 'ok'
		&& !document.getElementById('wa-link').hidden && !document.getElementById('new-session').disabled`)
	stop()
	waitJS(t, bctx, "every status unknown", `(() => {
		const dds = [...document.querySelectorAll('#health dd')];
		return document.querySelector('#conn').dataset.state === 'disconnected'
			&& document.getElementById('conn-detail').textContent.startsWith('The WebChat server is not reachable')
			&& dds.length === 5 && dds.every((dd) => dd.className !== 'good' && ['unknown', 'unreachable'].includes(dd.textContent))
			&& !document.querySelector('#presence li:not(.unknown)') && document.getElementById('send').disabled
			&& document.getElementById('wa-link').hidden && document.getElementById('empty-wa').hidden
			&& document.getElementById('new-session').disabled;
	})()`)
	shoot(t, bctx, "page-relay-gone")
}
