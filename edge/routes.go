package edge

import (
	"time"

	"github.com/clawdis/clawdis/bus/subject"
	"github.com/clawdis/clawdis/schemas"
)

// Route maps one client method to the bus. A method that is not in the route table never
// reaches the bus.
type Route struct {
	Method  string
	Subject string
	// Service is the bus service that serves Subject; the route is offered only when the
	// gateway runs (or expects) that service.
	Service string
	// Deadline bounds the bus request; past it the client gets UNAVAILABLE retryable.
	Deadline time.Duration
}

// DefaultRoutes is the full route table of this gateway.
func DefaultRoutes() []Route {
	return []Route{
		{Method: schemas.MethodHealth, Subject: subject.HealthGet, Service: subject.ServiceHealth, Deadline: 5 * time.Second},
		{Method: schemas.MethodStatus, Subject: subject.HealthStatus, Service: subject.ServiceHealth, Deadline: 5 * time.Second},
		{Method: schemas.MethodSystemPresence, Subject: subject.PresenceList, Service: subject.ServicePresence, Deadline: 5 * time.Second},
		{Method: schemas.MethodSystemEvent, Subject: subject.PresenceEvent, Service: subject.ServicePresence, Deadline: 5 * time.Second},
	}
}

// RoutesFor keeps the routes whose service is in services.
func RoutesFor(routes []Route, services []string) []Route {
	have := make(map[string]bool, len(services))
	for _, s := range services {
		have[s] = true
	}
	var out []Route
	for _, r := range routes {
		if have[r.Service] {
			out = append(out, r)
		}
	}
	return out
}
