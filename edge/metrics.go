package edge

import (
	"crypto/subtle"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/clawdis/clawdis/bus/subject"
	"github.com/clawdis/clawdis/bus/wire"
)

// Metrics are the gateway's Prometheus metrics (SPEC §14.3), on a registry of their own:
// nothing is registered in the client library's default registry. Every method is safe on
// a nil *Metrics (it does nothing), so code that counts never checks whether metrics exist.
type Metrics struct {
	reg     *prometheus.Registry
	handler http.Handler

	framesIn, framesOut        prometheus.Counter
	eventsSkipped              prometheus.Counter
	authFailures, authLockouts prometheus.Counter
	requests                   *prometheus.CounterVec   // method, code
	requestSeconds             *prometheus.HistogramVec // method
	providerState              *prometheus.GaugeVec     // provider, state
	inbound                    *prometheus.CounterVec   // provider, outcome
	runs                       *prometheus.CounterVec   // status
	runSeconds                 prometheus.Histogram

	now func() time.Time

	mu        sync.Mutex
	states    map[string]string    // provider -> its last state
	runStarts map[string]time.Time // run events subject -> when its first event was seen
}

// maxRunStarts bounds the runs whose start time is remembered, against runs whose final
// never arrives.
const maxRunStarts = 4096

// NewMetrics creates the metrics on a new registry with the Go runtime and process
// collectors; connections reports the current connection count when scraped (nil: none).
func NewMetrics(connections func() int, now func() time.Time) *Metrics {
	if now == nil {
		now = time.Now
	}
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: "clawdis_" + name, Help: help})
	}
	m := &Metrics{
		reg:           prometheus.NewRegistry(),
		framesIn:      counter("frames_in_total", "WebSocket frames received from clients."),
		framesOut:     counter("frames_out_total", "WebSocket frames sent to clients."),
		eventsSkipped: counter("events_skipped_total", "Droppable events skipped for slow consumers."),
		authFailures:  counter("auth_failures_total", "Handshakes refused for a wrong or missing token."),
		authLockouts:  counter("auth_lockouts_total", "Clients locked out after repeated auth failures."),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "clawdis_requests_total", Help: "Client requests by method and result code (OK on success).",
		}, []string{"method", "code"}),
		requestSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "clawdis_request_duration_seconds", Help: "Time from a request to its last res, by method.",
			Buckets: prometheus.DefBuckets,
		}, []string{"method"}),
		providerState: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "clawdis_provider_state", Help: "1 for the current state of each provider, 0 for its past states.",
		}, []string{"provider", "state"}),
		inbound: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "clawdis_inbound_messages_total", Help: "Inbound messages by provider and outcome.",
		}, []string{"provider", "outcome"}),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "clawdis_runs_total", Help: "Finished agent runs by status.",
		}, []string{"status"}),
		runSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "clawdis_run_duration_seconds", Help: "Agent run duration, from its first event to its final.",
			Buckets: []float64{0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600},
		}),
		now:       now,
		states:    map[string]string{},
		runStarts: map[string]time.Time{},
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.framesIn, m.framesOut, m.eventsSkipped, m.authFailures, m.authLockouts,
		m.requests, m.requestSeconds, m.providerState, m.inbound, m.runs, m.runSeconds,
	)
	if connections != nil {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "clawdis_connections", Help: "Open WebSocket connections.",
		}, func() float64 { return float64(connections()) }))
	}
	m.handler = promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
	return m
}

// Registry is the registry the metrics are on.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// FrameIn counts one frame received from a client.
func (m *Metrics) FrameIn() {
	if m != nil {
		m.framesIn.Inc()
	}
}

// FrameOut counts one frame sent to a client.
func (m *Metrics) FrameOut() {
	if m != nil {
		m.framesOut.Inc()
	}
}

// EventSkipped counts one droppable event skipped for a slow consumer.
func (m *Metrics) EventSkipped() {
	if m != nil {
		m.eventsSkipped.Inc()
	}
}

// AuthFailure counts one handshake refused for its token.
func (m *Metrics) AuthFailure() {
	if m != nil {
		m.authFailures.Inc()
	}
}

// AuthLockout counts one client locked out after repeated auth failures.
func (m *Metrics) AuthLockout() {
	if m != nil {
		m.authLockouts.Inc()
	}
}

// Inbound counts one inbound message of provider with its outcome.
func (m *Metrics) Inbound(provider, outcome string) {
	if m != nil {
		m.inbound.WithLabelValues(provider, outcome).Inc()
	}
}

// Request counts one answered request: code is "OK" or the wire error code.
func (m *Metrics) Request(method, code string, took time.Duration) {
	if m == nil {
		return
	}
	m.requests.WithLabelValues(method, code).Inc()
	m.requestSeconds.WithLabelValues(method).Observe(took.Seconds())
}

// ProviderState records a provider's state event: the gauge of the new state is 1, the
// provider's previous state 0.
func (m *Metrics) ProviderState(provider, state string) {
	if m == nil || provider == "" || state == "" {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if prev, ok := m.states[provider]; ok && prev != state {
		m.providerState.WithLabelValues(provider, prev).Set(0)
	}
	m.states[provider] = state
	m.providerState.WithLabelValues(provider, state).Set(1)
}

// runEvent follows one event of the agent run published on subj: the first starts the
// run's clock, the final counts the run by status with its duration.
func (m *Metrics) runEvent(subj, kind string, data []byte) {
	if m == nil {
		return
	}
	now := m.now()
	m.mu.Lock()
	start, seen := m.runStarts[subj]
	if kind == wire.RunEventFinal {
		delete(m.runStarts, subj)
	} else if !seen && len(m.runStarts) < maxRunStarts {
		m.runStarts[subj] = now
	}
	m.mu.Unlock()
	if kind != wire.RunEventFinal {
		return
	}
	m.runs.WithLabelValues(runStatus(data)).Inc()
	if seen {
		m.runSeconds.Observe(now.Sub(start).Seconds())
	}
}

// runStatus is the status of a run's final: its payload's status, else ok or error.
func runStatus(data []byte) string {
	var fin struct {
		OK      bool `json:"ok"`
		Payload struct {
			Status string `json:"status"`
		} `json:"payload"`
	}
	if json.Unmarshal(data, &fin) != nil {
		return "error"
	}
	switch {
	case fin.Payload.Status != "" && len(fin.Payload.Status) <= 32:
		return fin.Payload.Status
	case fin.OK:
		return "ok"
	default:
		return "error"
	}
}

// knownOutcome bounds the outcome label to the values autoreply reports.
var knownOutcome = map[string]bool{
	wire.InboundAnswered: true, wire.InboundNotAnswered: true, wire.InboundRetry: true, wire.InboundGivenUp: true,
}

// runEventsAll matches the events subjects of every agent run (not chat turns).
var runEventsAll = subject.Prefix + ".evt.agent.run.*"

// follow subscribes the metrics to the bus events they count: provider state changes and
// agent runs. The caller unsubscribes what it returns.
func (m *Metrics) follow(nc *nats.Conn, log *slog.Logger) ([]*nats.Subscription, error) {
	if m == nil {
		return nil, nil
	}
	states, err := nc.Subscribe(subject.ProviderStateAll, func(msg *nats.Msg) {
		var ps wire.ProviderState
		if err := json.Unmarshal(msg.Data, &ps); err != nil {
			log.Debug("metrics: ignoring malformed provider state event", "err", err)
			return
		}
		m.ProviderState(ps.Provider, ps.State)
	})
	if err != nil {
		return nil, err
	}
	runs, err := nc.Subscribe(runEventsAll, func(msg *nats.Msg) {
		m.runEvent(msg.Subject, msg.Header.Get(wire.HeaderRunEvent), msg.Data)
	})
	if err != nil {
		_ = states.Unsubscribe()
		return nil, err
	}
	inbound, err := nc.Subscribe(subject.InboundOutcome, func(msg *nats.Msg) {
		var o wire.InboundOutcome
		if err := json.Unmarshal(msg.Data, &o); err != nil || !knownOutcome[o.Outcome] || !subject.ValidToken(o.Provider) || len(o.Provider) > 32 {
			log.Debug("metrics: ignoring malformed inbound outcome event")
			return
		}
		m.Inbound(o.Provider, o.Outcome)
	})
	if err != nil {
		_ = states.Unsubscribe()
		_ = runs.Unsubscribe()
		return nil, err
	}
	return []*nats.Subscription{states, runs, inbound}, nil
}

// serveMetrics answers GET /metrics under the WebSocket's access rules: a loopback client,
// or the configured token as "Authorization: Bearer <token>".
func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request) {
	if !s.httpAuthorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="clawdis"`)
		http.Error(w, "401 unauthorized: send the gateway token as Authorization: Bearer <token>", http.StatusUnauthorized)
		return
	}
	s.metrics.handler.ServeHTTP(w, r)
}

// httpAuthorized applies the WebSocket's access rules to a plain HTTP request: loopback
// clients and gateways without a token need nothing, others the token as a bearer token.
func (s *Server) httpAuthorized(r *http.Request) bool {
	if _, ip := clientAddr(r.RemoteAddr); ip == "" || s.cfg.Token == "" {
		return true
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), []byte(s.cfg.Token)) == 1
}
