package edge

import (
	"encoding/json"
	"net/http"

	"github.com/clawdis/clawdis/bus/subject"
	"github.com/clawdis/clawdis/schemas"
)

// readiness is the body of /readyz.
type readiness struct {
	Ready bool `json:"ready"`
	// NotReady names the services that do not answer.
	NotReady []string `json:"notReady,omitempty"`
}

// serveReadyz answers 200 when every service the gateway runs answers its health checks,
// by the health summary the edge holds, else 503 naming the services that do not.
func (s *Server) serveReadyz(w http.ResponseWriter) {
	s.ensureState()
	s.hub.Lock()
	raw := s.health
	s.hub.Unlock()
	rd := readinessOf(raw)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if !rd.Ready {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_ = json.NewEncoder(w).Encode(rd)
}

// readinessOf judges a health summary (nil: the health service never answered).
func readinessOf(raw []byte) readiness {
	var sum schemas.HealthSummary
	if raw == nil || json.Unmarshal(raw, &sum) != nil {
		return readiness{NotReady: []string{subject.ServiceHealth}}
	}
	var rd readiness
	for _, svc := range sum.Services {
		if !svc.OK {
			rd.NotReady = append(rd.NotReady, svc.Name)
		}
	}
	if !sum.OK && len(rd.NotReady) == 0 {
		rd.NotReady = []string{subject.ServiceHealth}
	}
	rd.Ready = len(rd.NotReady) == 0
	return rd
}
