package webchat

import (
	"bytes"
	"embed"
	"io/fs"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/clawdis/clawdis/edge"
)

//go:embed static
var embedded embed.FS

// assets is the page: static/ of this package, compiled into the binary.
var assets = mustSub(embedded, "static")

func mustSub(f fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(f, dir)
	if err != nil {
		panic("webchat: embedded assets: " + err.Error())
	}
	return sub
}

// contentTypes are the types of the files the page consists of; nothing else is served.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
}

// csp keeps the page to its own files, its own WebSocket and inline images (data: and blob:
// URLs of attachments).
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// ServeHTTP serves the page and /ws to loopback clients and clients in Config.AllowFrom
// only, and only under a loopback host name.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !peerAllowed(r.RemoteAddr, s.cfg.AllowFrom) {
		if len(s.cfg.AllowFrom) == 0 {
			s.log.Warn("refused non-loopback client", "remote", r.RemoteAddr)
			http.Error(w, "403 forbidden: WebChat serves loopback clients only", http.StatusForbidden)
			return
		}
		s.log.Warn("refused client outside loopback and the allowed networks", "remote", r.RemoteAddr)
		http.Error(w, "403 forbidden: WebChat serves loopback and allowed networks only", http.StatusForbidden)
		return
	}
	// A page reached under a foreign host name (DNS rebinding) gets nothing. This stays
	// loopback-only with AllowFrom too: a client let in through a container's published port
	// still addresses the page as 127.0.0.1.
	if host, ok := hostOnly(r.Host); !ok || !edge.IsLoopbackHost(host) {
		http.Error(w, "403 forbidden: unexpected host", http.StatusForbidden)
		return
	}
	if r.URL.Path == "/ws" {
		s.serveWS(w, r)
		return
	}
	s.serveStatic(w, r)
}

func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	origin := r.Header.Get("Origin")
	if origin != "" && !sameOrigin(origin, r.Host) {
		s.log.Warn("refused WebSocket from foreign origin", "origin", origin)
		http.Error(w, "403 forbidden: origin not allowed", http.StatusForbidden)
		return
	}
	if s.hub.Stopping() {
		http.Error(w, "503 webchat stopping", http.StatusServiceUnavailable)
		return
	}
	if !s.hub.Reserve(s.cfg.MaxConnections) {
		http.Error(w, "503 too many connections", http.StatusServiceUnavailable)
		return
	}
	// The origin, when present, is the request's own host: the library accepts that as is.
	ws, err := edge.Accept(w, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		s.hub.Unreserve()
		s.log.Debug("websocket accept failed", "err", err)
		return
	}
	if !s.hub.Go(ws, r.RemoteAddr, &s.conn, s, s.log) {
		_ = ws.Close(websocket.StatusServiceRestart, "service restart")
	}
}

func (s *Server) serveStatic(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "405 method not allowed", http.StatusMethodNotAllowed)
		return
	}
	name := strings.TrimPrefix(r.URL.Path, "/")
	if name == "" {
		name = "index.html"
	}
	ctype, known := contentTypes[path.Ext(name)]
	if !known || !fs.ValidPath(name) || strings.Contains(name, `\`) {
		http.NotFound(w, r)
		return
	}
	data, err := fs.ReadFile(assets, name)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", ctype)
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", csp)
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(data))
}

// loopbackRemote reports whether a request's RemoteAddr is a loopback address.
func loopbackRemote(remote string) bool {
	host, _, err := net.SplitHostPort(remote)
	return err == nil && edge.IsLoopbackHost(host)
}

// peerAllowed reports whether a request's RemoteAddr is a loopback address or, unmapped from
// IPv4-in-IPv6, inside one of allow.
func peerAllowed(remote string, allow []netip.Prefix) bool {
	if loopbackRemote(remote) {
		return true
	}
	if len(allow) == 0 {
		return false
	}
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return false
	}
	ip := ap.Addr().Unmap()
	for _, p := range allow {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// hostOnly strips the port from a Host header value.
func hostOnly(hostport string) (string, bool) {
	if hostport == "" {
		return "", false
	}
	if host, _, err := net.SplitHostPort(hostport); err == nil {
		return host, true
	}
	return strings.Trim(hostport, "[]"), true
}

// sameOrigin reports whether origin is http(s)://<host> for the request's own loopback host.
func sameOrigin(origin, host string) bool {
	u, err := url.Parse(origin)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Path != "" || u.User != nil {
		return false
	}
	if !strings.EqualFold(u.Host, host) {
		return false
	}
	h, ok := hostOnly(u.Host)
	return ok && edge.IsLoopbackHost(strings.ToLower(h))
}
