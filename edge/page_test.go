package edge

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestBrowserPage(t *testing.T) {
	get := func(t *testing.T, g *gw, path, accept string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, "http://"+g.addr+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	const browserAccept = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
	t.Run("webchat on", func(t *testing.T) {
		g := startEdge(t, func(c *Config) { c.WebChatURL = "http://127.0.0.1:18788" })
		code, body := get(t, g, "/", browserAccept)
		if code != http.StatusOK || !strings.Contains(body, `href="http://127.0.0.1:18788"`) || !strings.Contains(body, "ws://"+g.addr) {
			t.Errorf("browser GET /: %d\n%s", code, body)
		}
		for _, tc := range []struct{ path, accept string }{{"/", ""}, {"/", "application/json"}, {"/other", browserAccept}} {
			if code, _ := get(t, g, tc.path, tc.accept); code != http.StatusUpgradeRequired {
				t.Errorf("GET %s Accept %q: %d, want 426", tc.path, tc.accept, code)
			}
		}
	})
	t.Run("webchat off", func(t *testing.T) {
		g := startEdge(t, nil)
		code, body := get(t, g, "/", browserAccept)
		if code != http.StatusOK || !strings.Contains(body, `id="webchat-off"`) || strings.Contains(body, `id="webchat"`) {
			t.Errorf("browser GET /: %d\n%s", code, body)
		}
	})
}
