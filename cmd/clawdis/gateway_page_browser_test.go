package main

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestGatewayPageInBrowser opens the gateway port in Chromium: it shows a page linking to
// WebChat instead of "426 upgrade required", and the page it links to is a WebChat that connects.
func TestGatewayPageInBrowser(t *testing.T) {
	exe := needChrome(t)
	t.Setenv("HOME", t.TempDir())
	wcPort := freePort(t)
	d := startDaemon(t, t.TempDir(), "", func(df *daemonFlags) { df.noWebchat = false; df.webchatPort = wcPort })
	page := "http://" + strings.TrimPrefix(d.url, "ws://") + "/"

	bctx := browser(t, exe)
	if err := chromedp.Do(bctx, chromedp.Navigate(page)); err != nil {
		t.Fatal(err)
	}
	href := must(t, bctx, chromedp.Evaluate[string](`document.querySelector('#webchat')?.href ?? ''`))
	if want := "http://127.0.0.1:" + strconv.Itoa(wcPort) + "/"; href != want {
		body := must(t, bctx, chromedp.Evaluate[string](`document.body.innerText`))
		t.Fatalf("WebChat link %q, want %q; page:\n%s", href, want, body)
	}
	savePNG(t, "gateway-page.png", must(t, bctx, chromedp.CaptureScreenshot()))

	if err := chromedp.Do(bctx, chromedp.Navigate(href)); err != nil {
		t.Fatal(err)
	}
	_, err := chromedp.Run(bctx, chromedp.Poll[chromedp.Void](`document.querySelector('#conn')?.dataset.state === 'connected'`,
		chromedp.WithPollingInterval(20*time.Millisecond), chromedp.WithPollingTimeout(30*time.Second)))
	if err != nil {
		t.Fatalf("WebChat did not connect at the linked page: %v", err)
	}
}
