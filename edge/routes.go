package edge

import (
	"encoding/json"
	"time"

	"github.com/clawdis/clawdis/bus/subject"
	"github.com/clawdis/clawdis/bus/wire"
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
	// DeadlineFor, when set, is the deadline of one request given its (valid) params: for a
	// method that waits as long as the client asks (web.login.wait). Deadline is not used.
	DeadlineFor func(params []byte) time.Duration
	// TwoStage makes the method two-stage (SPEC §6.6): the service's answer is the
	// acknowledgement of a run whose id is the params' idempotencyKey, and the edge sends a
	// second res with the run's final event (wire.Runs). An answer marked wire.HeaderRunFinal
	// is the final of a run that had already finished: it is the only res.
	TwoStage bool
	// SubjectFor, when set, picks the subject from the params (the send method's provider).
	SubjectFor func(params []byte) (string, error)
	// Rewrite, when set, turns the client's params into the bus request body; maxPayload is
	// the connection's frame limit.
	Rewrite func(params []byte, maxPayload int64) ([]byte, error)
}

// Events a route's service publishes, broadcast by the edge under these names.
var serviceEvents = map[string][]string{
	subject.ServiceAgent: {schemas.EventAgent, schemas.EventChat},
}

// DefaultRoutes is the full route table of this gateway.
func DefaultRoutes() []Route {
	const quick = 5 * time.Second
	return []Route{
		{Method: schemas.MethodHealth, Subject: subject.HealthGet, Service: subject.ServiceHealth, Deadline: quick},
		{Method: schemas.MethodStatus, Subject: subject.HealthStatus, Service: subject.ServiceHealth, Deadline: quick},
		{Method: schemas.MethodSystemPresence, Subject: subject.PresenceList, Service: subject.ServicePresence, Deadline: quick},
		{Method: schemas.MethodSystemEvent, Subject: subject.PresenceEvent, Service: subject.ServicePresence, Deadline: quick},
		{Method: schemas.MethodSend, Service: "provider", SubjectFor: sendSubject, Deadline: 60 * time.Second},
		{Method: schemas.MethodAgent, Subject: subject.AgentRun, TwoStage: true, Service: subject.ServiceAgent, Deadline: 10 * time.Second},
		{Method: schemas.MethodChatSend, Subject: subject.ChatSend, Service: subject.ServiceAgent, Deadline: 10 * time.Second},
		{Method: schemas.MethodChatHistory, Subject: subject.SessionsHistory, Service: subject.ServiceSessions, Deadline: quick, Rewrite: historyRequest},
		{Method: schemas.MethodChatAbort, Subject: subject.ChatAbort, Service: subject.ServiceAgent, Deadline: quick},
		{Method: schemas.MethodSessionsList, Subject: subject.SessionsList, Service: subject.ServiceSessions, Deadline: quick},
		{Method: schemas.MethodSessionsReset, Subject: subject.SessionsReset, Service: subject.ServiceSessions, Deadline: quick},
		{Method: schemas.MethodWebLoginStart, Subject: subject.WebLoginStart, Service: subject.ServiceWhatsApp, Deadline: webLoginStartDeadline},
		{Method: schemas.MethodWebLoginWait, Subject: subject.WebLoginWait, Service: subject.ServiceWhatsApp, DeadlineFor: webLoginWaitDeadline},
	}
}

// web.login deadlines (SPEC §6.12). A start answers within 30 s even when WhatsApp cannot
// be reached (the provider bounds unlinking and reaching WhatsApp); a wait lasts up to its
// timeoutMs (default 60 s). Each gets a margin, so the provider's own answer arrives first.
const (
	webLoginStartDeadline = 35 * time.Second
	webLoginWaitDefault   = 60 * time.Second
	webLoginMargin        = 10 * time.Second
)

// webLoginWaitDeadline is the timeoutMs of web.login.wait params plus a margin.
func webLoginWaitDeadline(params []byte) time.Duration {
	var p schemas.WebLoginWaitParams
	if json.Unmarshal(params, &p) != nil || p.TimeoutMs == nil || *p.TimeoutMs <= 0 {
		return webLoginWaitDefault + webLoginMargin
	}
	return time.Duration(*p.TimeoutMs)*time.Millisecond + webLoginMargin
}

// deadline is how long one request of the route may take.
func (r Route) deadline(params []byte) time.Duration {
	if r.DeadlineFor != nil {
		return r.DeadlineFor(params)
	}
	return r.Deadline
}

// RoutesFor keeps the routes whose service is in services. The pseudo-service "provider"
// (the send method) is kept when either provider runs.
func RoutesFor(routes []Route, services []string) []Route {
	have := make(map[string]bool, len(services))
	for _, s := range services {
		have[s] = true
	}
	have["provider"] = have[subject.ServiceWhatsApp] || have[subject.ServiceTelegram]
	var out []Route
	for _, r := range routes {
		if have[r.Service] {
			out = append(out, r)
		}
	}
	return out
}

// sendSubject routes send to the chosen provider (whatsapp by default).
func sendSubject(params []byte) (string, error) {
	var p struct {
		Provider string `json:"provider"`
	}
	_ = json.Unmarshal(params, &p) // validated by the schema already
	if p.Provider == "" {
		p.Provider = subject.ServiceWhatsApp
	}
	return subject.ProviderSend(p.Provider)
}

// historyRequest adds the byte bound of the frame to chat.history params: the answer must
// fit in one frame, with room for the res envelope.
func historyRequest(params []byte, maxPayload int64) ([]byte, error) {
	var p schemas.ChatHistoryParams
	if err := wire.DecodeParams(params, &p, "chat.history params"); err != nil {
		return nil, err
	}
	req := wire.HistoryRequest{SessionKey: p.SessionKey, MaxBytes: int(maxPayload) - 1024}
	if p.Limit != nil {
		req.Limit = *p.Limit
	}
	return json.Marshal(req)
}
