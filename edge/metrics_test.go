package edge

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/clawdis/clawdis/bus/subject"
	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/schemas"
)

// scrape gets url and parses it as Prometheus text.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return mfs
}

// metricValue is the value of the sample of family name whose labels include labels; -1
// when there is none.
func metricValue(mfs map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	mf := mfs[name]
	if mf == nil {
		return -1
	}
next:
	for _, m := range mf.GetMetric() {
		have := map[string]string{}
		for _, lp := range m.GetLabel() {
			have[lp.GetName()] = lp.GetValue()
		}
		for k, v := range labels {
			if have[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	return -1
}

func TestMetricsAfterRequests(t *testing.T) {
	g := startEdge(t, nil)
	startFakeServices(t, g.nc)
	c1, _ := g.connect("cli")
	g.connect("ui") // a second connection, open until the test ends
	for _, id := range []string{"h1", "h2", "h3"} {
		c1.send(map[string]any{"type": "req", "id": id, "method": schemas.MethodHealth})
		if res := c1.nextRes(id); res["ok"] != true {
			t.Fatalf("health: %v", res)
		}
	}
	c1.send(map[string]any{"type": "req", "id": "s1", "method": schemas.MethodStatus})
	c1.nextRes("s1")
	c1.send(map[string]any{"type": "req", "id": "u1", "method": "no.such.method"})
	if code, _, _ := errCode(c1.nextRes("u1")); code != wire.CodeInvalidRequest {
		t.Fatalf("unknown method: %s", code)
	}

	mfs := scrape(t, "http://"+g.addr+"/metrics")
	for _, want := range []struct {
		name   string
		labels map[string]string
		value  float64
	}{
		{"clawdis_requests_total", map[string]string{"method": schemas.MethodHealth, "code": "OK"}, 3},
		{"clawdis_requests_total", map[string]string{"method": schemas.MethodStatus, "code": "OK"}, 1},
		{"clawdis_requests_total", map[string]string{"method": "unknown", "code": wire.CodeInvalidRequest}, 1},
		{"clawdis_request_duration_seconds", map[string]string{"method": schemas.MethodHealth}, 3},
		{"clawdis_connections", nil, 2},
	} {
		if got := metricValue(mfs, want.name, want.labels); got != want.value {
			t.Errorf("%s%v = %v, want %v", want.name, want.labels, got, want.value)
		}
	}
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total", "clawdis_frames_in_total",
		"clawdis_events_skipped_total", "clawdis_auth_failures_total", "clawdis_auth_lockouts_total"} {
		if mfs[name] == nil {
			t.Errorf("no %s in the scrape", name)
		}
	}
}

func TestMetricsAccessRules(t *testing.T) {
	g := startEdge(t, func(c *Config) { c.Token = "s3cret-token" })
	for _, tc := range []struct {
		remote, auth string
		want         int
	}{
		{"127.0.0.1:5000", "", http.StatusOK},
		{"10.1.2.3:5000", "", http.StatusUnauthorized},
		{"10.1.2.3:5000", "Bearer wrong", http.StatusUnauthorized},
		{"10.1.2.3:5000", "Bearer s3cret-token", http.StatusOK},
	} {
		r := httptest.NewRequest(http.MethodGet, "/metrics", nil)
		r.RemoteAddr = tc.remote
		r.Host = "127.0.0.1:18789"
		if tc.auth != "" {
			r.Header.Set("Authorization", tc.auth)
		}
		w := httptest.NewRecorder()
		g.srv.serveHTTP(w, r)
		if w.Code != tc.want {
			t.Errorf("%s %q: %d, want %d", tc.remote, tc.auth, w.Code, tc.want)
		}
	}
}

func TestMetricsProviderStateAndRuns(t *testing.T) {
	m := NewMetrics(nil, nil)
	m.ProviderState("telegram", schemas.TelegramUnconfigured)
	m.ProviderState("telegram", "polling")
	m.runEvent("gw.v1.evt.agent.run.a", wire.RunEventAgent, []byte(`{}`))
	m.runEvent("gw.v1.evt.agent.run.a", wire.RunEventFinal, []byte(`{"ok":true,"payload":{"status":"ok"}}`))
	m.runEvent("gw.v1.evt.agent.run.b", wire.RunEventFinal, []byte(`{"ok":false,"payload":{"status":"timeout"}}`))
	srv := httptest.NewServer(m.handler)
	defer srv.Close()
	mfs := scrape(t, srv.URL)
	for _, want := range []struct {
		name   string
		labels map[string]string
		value  float64
	}{
		{"clawdis_provider_state", map[string]string{"provider": "telegram", "state": "polling"}, 1},
		{"clawdis_provider_state", map[string]string{"provider": "telegram", "state": schemas.TelegramUnconfigured}, 0},
		{"clawdis_runs_total", map[string]string{"status": "ok"}, 1},
		{"clawdis_runs_total", map[string]string{"status": "timeout"}, 1},
		{"clawdis_run_duration_seconds", nil, 1}, // run b's start was never seen
	} {
		if got := metricValue(mfs, want.name, want.labels); got != want.value {
			t.Errorf("%s%v = %v, want %v", want.name, want.labels, got, want.value)
		}
	}
}

// TestMetricsFollowTheBus: provider state events and agent run events published on the bus
// reach the metrics.
func TestMetricsFollowTheBus(t *testing.T) {
	g := startEdge(t, nil)
	startFakeServices(t, g.nc)
	g.connect("cli") // Run has subscribed once a connection is served
	pub := g.bus.Conn("provider")
	stateSubj, err := subject.ProviderState("telegram")
	if err != nil {
		t.Fatal(err)
	}
	state, _ := json.Marshal(wire.ProviderState{Provider: "telegram", State: schemas.TelegramPolling, Ts: 1})
	if err := pub.Publish(stateSubj, state); err != nil {
		t.Fatal(err)
	}
	runSubj := subject.AgentRunEvents("run-1")
	publishRunEvent(t, pub, runSubj, wire.RunEventAgent, map[string]any{"runId": "run-1"})
	publishRunEvent(t, pub, runSubj, wire.RunEventFinal, map[string]any{"ok": true, "payload": map[string]any{"status": "ok"}})

	// The metrics' subscriptions run on their own goroutines: scrape until both arrived.
	deadline := time.After(10 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		mfs := scrape(t, "http://"+g.addr+"/metrics")
		polling := metricValue(mfs, "clawdis_provider_state", map[string]string{"provider": "telegram", "state": schemas.TelegramPolling})
		runs := metricValue(mfs, "clawdis_runs_total", map[string]string{"status": "ok"})
		took := metricValue(mfs, "clawdis_run_duration_seconds", nil)
		if polling == 1 && runs == 1 && took == 1 {
			return
		}
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("provider state %v, runs %v, durations %v; want 1 each", polling, runs, took)
		}
	}
}
