package edge

import (
	"html/template"
	"net/http"
	"strings"
)

// servePlainHTTP answers the gateway port's plain HTTP endpoints besides /healthz:
// /metrics, /readyz and the page a browser gets at /. It reports whether it answered; the
// caller answers anything else with 426.
func (s *Server) servePlainHTTP(w http.ResponseWriter, r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	switch {
	case r.URL.Path == "/metrics":
		s.serveMetrics(w, r)
	case r.URL.Path == "/readyz":
		s.serveReadyz(w)
	case r.URL.Path == "/" && strings.Contains(r.Header.Get("Accept"), "text/html"):
		s.servePage(w, r)
	default:
		return false
	}
	return true
}

// pageTemplate is the page a browser gets on the gateway port: what the port is, and where
// people chat instead.
var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>clawdis gateway</title>
<style>
body { font: 16px/1.5 system-ui, sans-serif; max-width: 40em; margin: 4em auto; padding: 0 1em; color: #222; }
h1 { font-size: 1.4em; }
code { background: #f3f3f3; padding: 0 .25em; border-radius: 3px; }
a.chat { display: inline-block; margin: .5em 0; padding: .5em 1em; background: #2563eb; color: #fff; border-radius: 6px; text-decoration: none; }
.muted { color: #666; font-size: .9em; }
</style>
</head>
<body>
<h1>clawdis gateway</h1>
<p>This is the gateway's WebSocket port: the <code>clawdis</code> CLI and apps connect here at <code>ws://{{.Host}}</code>.</p>
{{if .WebChat}}<p>To chat in your browser, open WebChat:</p>
<p><a id="webchat" class="chat" href="{{.WebChat}}">Open WebChat</a> <span class="muted">{{.WebChat}}</span></p>
{{else}}<p id="webchat-off">WebChat is turned off: enable <code>webchat.enabled</code> in the config, or run <code>clawdis webchat</code>.</p>
{{end}}<p class="muted">clawdis {{.Version}} · <a href="/healthz">/healthz</a> · <a href="/readyz">/readyz</a></p>
</body>
</html>
`))

// servePage answers a browser that opened the gateway port with a page linking to WebChat.
func (s *Server) servePage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_ = pageTemplate.Execute(w, struct{ Host, WebChat, Version string }{r.Host, s.cfg.WebChatURL, s.cfg.Version})
}
