package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"image"
	"image/color"
	"image/png"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/clawdis/clawdis/schemas"
)

// chromePath finds a Chromium for the browser tests: $CLAWDIS_CHROME, then the usual
// Debian locations.
// needChrome returns the Chromium to drive, or skips the test when there is none.
func needChrome(t *testing.T) string {
	t.Helper()
	exe := chromePath()
	if exe == "" {
		t.Skip("no Chromium: install chromium-headless-shell or set CLAWDIS_CHROME")
	}
	return exe
}

func chromePath() string {
	for _, p := range []string{os.Getenv("CLAWDIS_CHROME"), "/usr/bin/chromium-headless-shell",
		"/usr/lib/chromium/headless_shell", "/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if p == "" {
			continue
		}
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	return ""
}

// browser starts a headless Chromium with a fresh profile; it is stopped at cleanup.
func browser(t *testing.T, exe string) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.NoFirstRun,
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1100, 800),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	return ctx
}

// waitJS polls a JavaScript predicate until it is true, failing the test after 30 s.
func waitJS(t *testing.T, ctx context.Context, what, expr string) {
	t.Helper()
	_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr,
		chromedp.WithPollingInterval(20*time.Millisecond), chromedp.WithPollingTimeout(30*time.Second)))
	if err != nil {
		state, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('#conn').textContent + ' | ' + document.querySelector('#log').innerText`))
		t.Fatalf("waiting for %s: %v\npage: %s", what, err, state)
	}
}

func must[T any](t *testing.T, ctx context.Context, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// lastReply is true once the last assistant bubble is finished with the given text.
func lastReply(text string) string {
	q, _ := json.Marshal(text)
	return `(() => { const li = [...document.querySelectorAll('#log li.assistant')].pop();
		return !!li && li.dataset.state === 'done' && li.querySelector('.text').textContent === ` + string(q) + `; })()`
}

// timingProbe records performance.now() at the send click and when the newest assistant
// bubble first shows text.
const timingProbe = `(() => {
	window.__t = {};
	document.getElementById('send').addEventListener('click', () => { window.__t = { click: performance.now() }; }, { capture: true });
	new MutationObserver(() => {
		const li = [...document.querySelectorAll('#log li.assistant')].pop();
		if (window.__t.click && !window.__t.first && li && li.dataset.state !== 'pending' && li.querySelector('.text').textContent) {
			window.__t.first = performance.now();
		}
	}).observe(document.getElementById('log'), { subtree: true, childList: true, characterData: true, attributes: true });
})()`

func TestWebChatInBrowser(t *testing.T) {
	exe := needChrome(t)
	t.Setenv("HOME", t.TempDir())
	state := t.TempDir()
	d := startDaemon(t, state, agentConfig(t), nil)
	gwPort := d.url[len("ws://127.0.0.1:"):]

	// History to show: one turn made through the gateway before the page loads.
	events := make(chan schemas.Event, 256)
	c := dialTest(t, d.url, "cli", events)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.Request(ctx, schemas.MethodChatSend, map[string]any{
		"sessionKey": "main", "message": "seeded question", "idempotencyKey": "seed-1"}); err != nil {
		t.Fatal(err)
	}
	waitChatFinal(t, ctx, events, "seed-1")
	c.Close()

	page := startWebChat(t, d.url)

	bctx := browser(t, exe)
	if err := chromedp.Do(bctx, chromedp.Navigate(page)); err != nil {
		t.Fatal(err)
	}
	waitJS(t, bctx, "connected", `document.querySelector('#conn').dataset.state === 'connected'`)
	waitJS(t, bctx, "the history", `[...document.querySelectorAll('#log li.user .text')].some(e => e.textContent === 'seeded question')
		&& [...document.querySelectorAll('#log li.assistant .text')].some(e => e.textContent === 'echo: seeded question')`)
	waitJS(t, bctx, "the webchat presence entry", `[...document.querySelectorAll('#presence li')].some(li => li.dataset.mode === 'webchat')`)
	waitJS(t, bctx, "provider health", `document.querySelector('#health dd[data-key="whatsapp"]')?.textContent === 'disabled'
		&& document.querySelector('#health dd[data-key="telegram"]')?.textContent === 'unconfigured'`)

	// Send a message; the reply streams in and finishes.
	must(t, bctx, chromedp.Evaluate[chromedp.Void](timingProbe))
	if err := chromedp.Do(bctx, chromedp.SendKeys(chromedp.ID("input"), "hello from the browser"), chromedp.Click(chromedp.ID("send"))); err != nil {
		t.Fatal(err)
	}
	waitJS(t, bctx, "the reply", lastReply("echo: hello from the browser"))
	ms := must(t, bctx, chromedp.Evaluate[float64](`window.__t.first - window.__t.click`))
	t.Logf("send click to first streamed character: %.1f ms", ms)
	shot := must(t, bctx, chromedp.CaptureScreenshot())
	savePNG(t, "webchat-reply.png", shot)

	// An image attachment by the file picker travels as a chat.send attachment.
	pic := filepath.Join(t.TempDir(), "red.png")
	writeTestPNG(t, pic)
	if err := chromedp.Do(bctx, chromedp.SetUploadFiles(chromedp.ID("file"), []string{pic})); err != nil {
		t.Fatal(err)
	}
	waitJS(t, bctx, "the attachment preview", `document.querySelectorAll('#attachments img').length === 1`)
	if err := chromedp.Do(bctx, chromedp.SendKeys(chromedp.ID("input"), "what is this"), chromedp.Click(chromedp.ID("send"))); err != nil {
		t.Fatal(err)
	}
	waitJS(t, bctx, "the reply to the image", lastReply("echo: what is this"))
	waitJS(t, bctx, "the image in the transcript", `!![...document.querySelectorAll('#log li.user')].pop().querySelector('img')`)
	checkHistoryImage(t, d.url, "what is this")

	// Phone-sized window: the composer stays on screen and the sidebar folds away.
	if err := chromedp.Do(bctx, chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile)); err != nil {
		t.Fatal(err)
	}
	waitJS(t, bctx, "the phone layout", `(() => { const r = document.getElementById('send').getBoundingClientRect();
		return r.right <= innerWidth && r.bottom <= innerHeight && getComputedStyle(document.getElementById('side')).display === 'none'; })()`)
	savePNG(t, "webchat-phone.png", must(t, bctx, chromedp.CaptureScreenshot()))
	if err := chromedp.Do(bctx, chromedp.ResetViewport()); err != nil {
		t.Fatal(err)
	}

	// The gateway restarts (same state dir, same port): the page shows it and reconnects.
	d.stop()
	waitJS(t, bctx, "offline", `document.querySelector('#conn').dataset.state === 'offline'`)
	port, _ := strconv.Atoi(gwPort)
	startDaemon(t, state, "", func(df *daemonFlags) { df.port = port })
	waitJS(t, bctx, "reconnected", `document.querySelector('#conn').dataset.state === 'connected'`)
	waitJS(t, bctx, "the history after the restart", `[...document.querySelectorAll('#log li.assistant .text')].some(e => e.textContent === 'echo: what is this')`)
	if err := chromedp.Do(bctx, chromedp.SendKeys(chromedp.ID("input"), "after the restart"), chromedp.Click(chromedp.ID("send"))); err != nil {
		t.Fatal(err)
	}
	waitJS(t, bctx, "a reply after the restart", lastReply("echo: after the restart"))
}

// startWebChat runs the WebChat server as `clawdis webchat --url URL --port 0` runs it and
// returns the page's URL; it is stopped at cleanup.
func startWebChat(t *testing.T, gatewayURL string) string {
	t.Helper()
	return startWebChatToken(t, gatewayURL, "")
}

// startWebChatToken is startWebChat with --token (the gateway's token, which tabs then need).
func startWebChatToken(t *testing.T, gatewayURL, token string) string {
	t.Helper()
	page, _ := startWebChatStop(t, gatewayURL, token)
	return page
}

// startWebChatStop is startWebChatToken that also returns a func stopping the server
// before the test ends.
func startWebChatStop(t *testing.T, gatewayURL, token string) (string, func()) {
	t.Helper()
	logs := &syncBuf{}
	log, _ := newLogger(logs, "json", false)
	ctx, stop := context.WithCancel(context.Background())
	listening := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- runWebChat(ctx, webChatFlags{url: gatewayURL, token: token, listening: func(a string) { listening <- a }}, log)
	}()
	var once sync.Once
	shutdown := func() {
		once.Do(func() {
			stop()
			if err := <-done; err != nil {
				t.Errorf("webchat: %v\nlogs: %s", err, logs.String())
			}
		})
	}
	t.Cleanup(shutdown)
	select {
	case a := <-listening:
		return "http://" + a + "/", shutdown
	case err := <-done:
		t.Fatalf("webchat exited: %v\nlogs: %s", err, logs.String())
		return "", nil
	}
}

// TestWebChatShowsAgentFailure: a failing agent turn ends the pending reply with clear error
// text instead of leaving it waiting.
func TestWebChatShowsAgentFailure(t *testing.T) {
	exe := needChrome(t)
	t.Setenv("HOME", t.TempDir())
	d := startDaemon(t, t.TempDir(), `{agent: {backend: "command", command: ["/bin/sh", "-c", "echo agent exploded >&2; exit 3"]}}`, nil)
	bctx := browser(t, exe)
	if err := chromedp.Do(bctx, chromedp.Navigate(startWebChat(t, d.url)+"?session=broken")); err != nil {
		t.Fatal(err)
	}
	waitJS(t, bctx, "connected", `document.querySelector('#conn').dataset.state === 'connected'`)
	if got := must(t, bctx, chromedp.Value(chromedp.ID("session"))); got != "broken" {
		t.Errorf("session picker shows %q, want the ?session= value", got)
	}
	if err := chromedp.Do(bctx, chromedp.SendKeys(chromedp.ID("input"), "hi"), chromedp.Click(chromedp.ID("send"))); err != nil {
		t.Fatal(err)
	}
	waitJS(t, bctx, "the error text", `(() => { const li = [...document.querySelectorAll('#log li.assistant')].pop();
		return !!li && li.dataset.state === 'error' && li.textContent.startsWith('The agent failed: ') && li.textContent.includes('exploded'); })()`)
	text := must(t, bctx, chromedp.Evaluate[string](`[...document.querySelectorAll('#log li.assistant')].pop().textContent`))
	t.Logf("error shown: %q", text)
}

func waitChatFinal(t *testing.T, ctx context.Context, events <-chan schemas.Event, runID string) {
	t.Helper()
	for {
		select {
		case ev := <-events:
			var p schemas.ChatEventPayload
			if ev.Event == schemas.EventChat && json.Unmarshal(ev.Payload, &p) == nil && p.RunID == runID && p.State != schemas.ChatStateDelta {
				if p.State != schemas.ChatStateFinal {
					t.Fatalf("run %s: %s %s", runID, p.State, p.ErrorMessage)
				}
				return
			}
		case <-ctx.Done():
			t.Fatalf("run %s: no final chat event", runID)
		}
	}
}

// checkHistoryImage asserts that the last user message with text has an image part.
func checkHistoryImage(t *testing.T, url, text string) {
	t.Helper()
	c := dialTest(t, url, "cli", nil)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	raw, err := c.Request(ctx, schemas.MethodChatHistory, map[string]any{"sessionKey": "main"})
	if err != nil {
		t.Fatal(err)
	}
	var h schemas.ChatHistoryResult
	if err := json.Unmarshal(raw, &h); err != nil {
		t.Fatal(err)
	}
	for i := len(h.Messages) - 1; i >= 0; i-- {
		m := h.Messages[i]
		if m.Role != "user" || len(m.Content) == 0 || m.Content[0].Text != text {
			continue
		}
		for _, part := range m.Content {
			if part.Type == "image" && part.MimeType == "image/png" && part.Data != "" {
				return
			}
		}
		t.Fatalf("the message %q has no image: %+v", text, m.Content)
	}
	t.Fatalf("no user message %q in the history", text)
}

func writeTestPNG(t *testing.T, path string) {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 64, 48))
	for y := range 48 {
		for x := range 64 {
			img.Set(x, y, color.RGBA{R: 220, G: uint8(x * 3), B: 40, A: 255})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

// savePNG checks that b is a PNG and writes it to screenshotDir.
func savePNG(t *testing.T, name string, b []byte) {
	t.Helper()
	if !bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")) {
		t.Fatalf("%s is not a PNG (%d bytes)", name, len(b))
	}
	if _, err := png.DecodeConfig(bytes.NewReader(b)); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	dir := screenshotDir(t)
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", path, len(b))
}

// lineWatch is a log writer that reports the first write containing want.
type lineWatch struct {
	buf  syncBuf
	want string
	seen chan struct{}
	once sync.Once
}

func (w *lineWatch) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte(w.want)) {
		w.once.Do(func() { close(w.seen) })
	}
	return w.buf.Write(p)
}

// TestWebChatCmd runs `clawdis webchat` until its context ends (as a signal would end it)
// and checks its flag validation; it needs no browser.
func TestWebChatCmd(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	t.Setenv("CLAWDIS_GATEWAY_TOKEN", "")
	for _, tt := range []struct {
		args    []string
		wantErr string
		usage   bool
	}{
		{args: []string{"--port", "70000"}, wantErr: "--port 70000 out of range", usage: true},
		{args: []string{"extra"}, wantErr: `unknown command "extra"`, usage: true},
		{args: []string{"--log-format", "xml"}, wantErr: "--log-format must be auto, text or json", usage: true},
	} {
		cmd := newWebChatCmd(&bytes.Buffer{})
		cmd.SetArgs(tt.args)
		cmd.SilenceErrors, cmd.SilenceUsage = true, true
		err := cmd.Execute()
		var ue usageError
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) || errors.As(err, &ue) != tt.usage {
			t.Errorf("webchat %v: %v, want %q (usage error %v)", tt.args, err, tt.wantErr, tt.usage)
		}
	}

	// Started against a gateway that is not there: it serves (the page says the gateway is
	// offline) and stops cleanly when its context ends.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gw := "ws://" + ln.Addr().String()
	ln.Close()
	out := &lineWatch{want: "webchat listening", seen: make(chan struct{})}
	cmd := newWebChatCmd(out)
	cmd.SetArgs([]string{"--url", gw, "--port", "0", "--log-format", "json"})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()
	select {
	case <-out.seen:
	case err := <-done:
		t.Fatalf("webchat exited: %v\n%s", err, out.buf.String())
	case <-time.After(15 * time.Second):
		t.Fatalf("webchat did not start\n%s", out.buf.String())
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("webchat: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("webchat did not stop")
	}
	if strings.Contains(out.buf.String(), `"level":"ERROR"`) {
		t.Errorf("error logs:\n%s", out.buf.String())
	}
}

// TestWebChatTokenInBrowser: with a gateway token configured the page needs it (SPEC §10): it
// takes it from the #token=… of the URL `clawdis dashboard` prints and removes it from the
// address bar, keeps it in localStorage for the next visit, and without one asks for it
// with a form.
func TestWebChatTokenInBrowser(t *testing.T) {
	exe := needChrome(t)
	t.Setenv("HOME", t.TempDir())
	const token = "browser-gateway/token+1&x=%41" // characters the fragment must escape
	d := startDaemon(t, t.TempDir(), "", func(df *daemonFlags) { df.token = token })
	page := startWebChatToken(t, d.url, token)
	bctx := browser(t, exe)
	connected := `document.querySelector('#conn').dataset.state === 'connected'`

	pu, err := url.Parse(page)
	if err != nil {
		t.Fatal(err)
	}
	port, _ := strconv.Atoi(pu.Port())
	if err := chromedp.Do(bctx, chromedp.Navigate(dashboardURL(port, token))); err != nil {
		t.Fatal(err)
	}
	waitJS(t, bctx, "connected with the fragment's token", connected)
	if got := must(t, bctx, chromedp.Evaluate[string](`location.href`)); strings.Contains(got, "token") {
		t.Errorf("the token stayed in the address bar: %s", got)
	}

	// The next visit finds it in localStorage.
	if err := chromedp.Do(bctx, chromedp.Navigate(page)); err != nil {
		t.Fatal(err)
	}
	waitJS(t, bctx, "connected with the stored token", connected)

	// Without one the page asks, once the relay refused the hello.
	must(t, bctx, chromedp.Evaluate[chromedp.Void](`localStorage.clear()`))
	if err := chromedp.Do(bctx, chromedp.Reload()); err != nil {
		t.Fatal(err)
	}
	waitJS(t, bctx, "the token form", `document.querySelector('#conn').dataset.state === 'unauthorized' && !document.getElementById('token-form').hidden`)
	shoot(t, bctx, "token-form-desktop")
	if err := chromedp.Do(bctx, phone()); err != nil {
		t.Fatal(err)
	}
	shoot(t, bctx, "token-form-phone")
	if err := chromedp.Do(bctx, desktop()); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(bctx, chromedp.SendKeys(chromedp.ID("token-input"), token), chromedp.Click(chromedp.CSS("#token-form button"))); err != nil {
		t.Fatal(err)
	}
	waitJS(t, bctx, "connected with the entered token", connected+` && document.getElementById('token-form').hidden && localStorage.getItem('clawdis.webchat.token') === `+strconv.Quote(token))
}
