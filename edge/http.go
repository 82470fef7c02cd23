package edge

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/coder/websocket"
)

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.hostAllowed(r.Host) {
		// A page under a foreign name resolving here (DNS rebinding) gets nothing, /healthz included.
		http.Error(w, "421 misdirected request: unexpected host", http.StatusMisdirectedRequest)
		return
	}
	if !isUpgrade(r) {
		if r.URL.Path == "/healthz" && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
			s.serveHealthz(w)
			return
		}
		if s.servePlainHTTP(w, r) {
			return
		}
		w.Header().Set("Upgrade", "websocket")
		http.Error(w, "426 upgrade required: this is the clawdis gateway's WebSocket port", http.StatusUpgradeRequired)
		return
	}
	if origin := r.Header.Get("Origin"); origin != "" && !s.originAllowed(origin) {
		s.log.Warn("refused WebSocket upgrade from foreign origin", "origin", origin, "remote", r.RemoteAddr)
		http.Error(w, "403 forbidden: origin not allowed", http.StatusForbidden)
		return
	}
	if s.hub.Stopping() {
		http.Error(w, "503 gateway stopping", http.StatusServiceUnavailable)
		return
	}
	if !s.hub.Reserve(s.cfg.MaxConnections) {
		s.log.Debug("refused WebSocket upgrade: too many connections", "max", s.cfg.MaxConnections)
		http.Error(w, "503 too many connections", http.StatusServiceUnavailable)
		return
	}
	opts := &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled}
	if origin := r.Header.Get("Origin"); origin != "" {
		// Already checked above, more strictly than the library does (it always accepts
		// same-host origins, which DNS rebinding abuses); let exactly this origin through.
		if u, err := url.Parse(origin); err == nil {
			opts.OriginPatterns = []string{escapeGlob(u.Scheme + "://" + u.Host)}
		}
	}
	ws, err := Accept(w, r, opts)
	if err != nil {
		s.hub.Unreserve()
		s.log.Debug("websocket accept failed", "remote", r.RemoteAddr, "err", err)
		return
	}
	if !s.hub.Go(ws, r.RemoteAddr, &s.conn, s, s.log) {
		_ = ws.Close(websocket.StatusServiceRestart, "service restart")
	}
}

// hostAllowed accepts a Host header naming a loopback host, the bound address or one of
// Config.AllowedHosts (any port).
func (s *Server) hostAllowed(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if host == "" {
		return false
	}
	if IsLoopbackHost(host) {
		return true
	}
	if bound, _, err := net.SplitHostPort(s.cfg.Listener.Addr().String()); err == nil {
		if ip := net.ParseIP(host); ip != nil && !ip.IsUnspecified() {
			b := net.ParseIP(bound)
			if ip.Equal(b) || b.IsUnspecified() && isLocalIP(ip) {
				return true
			}
		}
	}
	for _, a := range s.cfg.AllowedHosts {
		if strings.EqualFold(strings.TrimSuffix(a, "."), strings.TrimSuffix(host, ".")) {
			return true
		}
	}
	return false
}

// isLocalIP reports whether ip is one of this machine's interface addresses: with a wildcard
// bind, each of them is "the bind address".
func isLocalIP(ip net.IP) bool {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.Equal(ip) {
			return true
		}
	}
	return false
}

func (s *Server) serveHealthz(w http.ResponseWriter) {
	n := s.hub.Count()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	body := `{"ok":true,"connections":` + strconv.Itoa(n) +
		`,"uptimeMs":` + strconv.FormatInt(s.cfg.Now().Sub(s.started).Milliseconds(), 10) + "}\n"
	_, _ = w.Write([]byte(body))
}

func isUpgrade(r *http.Request) bool {
	return headerHasToken(r.Header, "Connection", "upgrade") && headerHasToken(r.Header, "Upgrade", "websocket")
}

func headerHasToken(h http.Header, key, token string) bool {
	for _, v := range h.Values(key) {
		for _, part := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(part), token) {
				return true
			}
		}
	}
	return false
}

// originAllowed accepts loopback http(s) origins on any port and the configured extra origins.
func (s *Server) originAllowed(origin string) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	norm := strings.ToLower(u.Scheme + "://" + u.Host)
	for _, a := range s.cfg.AllowedOrigins {
		if strings.ToLower(strings.TrimRight(a, "/")) == norm {
			return true
		}
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return false
	}
	host := u.Hostname()
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && (ip.Equal(net.IPv4(127, 0, 0, 1)) || ip.Equal(net.IPv6loopback))
}

// escapeGlob quotes path.Match metacharacters so a pattern matches only s itself.
func escapeGlob(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Accept upgrades a WebSocket request like websocket.Accept, but the connection gets small
// read and write buffers (net/http's are 4 KiB each, most of an idle connection's memory);
// frames larger than a buffer are read and written through it in pieces.
func Accept(w http.ResponseWriter, r *http.Request, opts *websocket.AcceptOptions) (*websocket.Conn, error) {
	return websocket.Accept(smallBufHijacker{w}, r, opts)
}

// Buffer sizes of an upgraded connection: a typical request frame (health, a short chat.send)
// fits the read buffer with its header, a health res the write buffer; a larger frame takes
// one more read or write call. Each KiB here is about 2 KiB of RSS per idle connection (the
// buffers are live heap, and the collector lets the heap grow to twice the live heap): with
// 1 KiB and 2 KiB, 10,000 idle connections took 200–203 MiB, with these 193 MiB.
const (
	connReadBuf  = 512
	connWriteBuf = 1 << 10
)

type smallBufHijacker struct{ http.ResponseWriter }

func (h smallBufHijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	br := bufio.NewReaderSize(conn, connReadBuf)
	if n := brw.Reader.Buffered(); n > 0 {
		// Bytes the client sent right after its request (its hello) must be in the new
		// reader's buffer: websocket.Accept takes what is buffered and reads on from conn.
		b, _ := brw.Reader.Peek(n)
		br = bufio.NewReaderSize(io.MultiReader(bytes.NewReader(bytes.Clone(b)), conn), max(connReadBuf, n))
		if _, err := br.Peek(n); err != nil {
			_ = conn.Close()
			return nil, nil, fmt.Errorf("hijack: buffer early bytes: %w", err)
		}
	}
	return conn, bufio.NewReadWriter(br, bufio.NewWriterSize(conn, connWriteBuf)), nil
}
