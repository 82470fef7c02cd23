package edge

import "net/http"

// servePlainHTTP answers the gateway port's plain HTTP endpoints besides /healthz:
// /metrics and /readyz. It reports whether it answered; the caller answers anything else
// with 426.
func (s *Server) servePlainHTTP(w http.ResponseWriter, r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	switch r.URL.Path {
	case "/metrics":
		s.serveMetrics(w, r)
	case "/readyz":
		s.serveReadyz(w)
	default:
		return false
	}
	return true
}
