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
		c1.Send(map[string]any{"type": "req", "id": id, "method": schemas.MethodHealth})
		if res := c1.NextRes(id); res["ok"] != true {
			t.Fatalf("health: %v", res)
		}
	}
	c1.Send(map[string]any{"type": "req", "id": "s1", "method": schemas.MethodStatus})
	c1.NextRes("s1")
	c1.Send(map[string]any{"type": "req", "id": "u1", "method": "no.such.method"})
	if code, _, _ := errCode(c1.NextRes("u1")); code != wire.CodeInvalidRequest {
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
		{"clawdis_frames_in_total", nil, 7}, // two hellos, five requests
	} {
		if got := metricValue(mfs, want.name, want.labels); got != want.value {
			t.Errorf("%s%v = %v, want %v", want.name, want.labels, got, want.value)
		}
	}
	if out := metricValue(mfs, "clawdis_frames_out_total", nil); out < 7 { // two hello-oks, five res, and events
		t.Errorf("frames out = %v, want at least 7", out)
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
	for _, o := range []wire.InboundOutcome{
		{Provider: "telegram", Outcome: wire.InboundAnswered},
		{Provider: "telegram", Outcome: "made-up"}, // not a label value: ignored
		{Provider: "telegram", Outcome: wire.InboundNotAnswered, Reason: "not in allowFrom"},
	} {
		data, _ := json.Marshal(o)
		if err := pub.Publish(subject.InboundOutcome, data); err != nil {
			t.Fatal(err)
		}
	}

	// The metrics' subscriptions run on their own goroutines: scrape until all arrived.
	deadline := time.After(10 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		mfs := scrape(t, "http://"+g.addr+"/metrics")
		polling := metricValue(mfs, "clawdis_provider_state", map[string]string{"provider": "telegram", "state": schemas.TelegramPolling})
		runs := metricValue(mfs, "clawdis_runs_total", map[string]string{"status": "ok"})
		took := metricValue(mfs, "clawdis_run_duration_seconds", nil)
		answered := metricValue(mfs, "clawdis_inbound_messages_total", map[string]string{"provider": "telegram", "outcome": wire.InboundAnswered})
		skipped := metricValue(mfs, "clawdis_inbound_messages_total", map[string]string{"provider": "telegram", "outcome": wire.InboundNotAnswered})
		if polling == 1 && runs == 1 && took == 1 && answered == 1 && skipped == 1 {
			if bogus := metricValue(mfs, "clawdis_inbound_messages_total", map[string]string{"outcome": "made-up"}); bogus != -1 {
				t.Errorf("an unknown outcome became a label value (%v)", bogus)
			}
			return
		}
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("provider state %v, runs %v, durations %v, inbound answered %v, not answered %v; want 1 each",
				polling, runs, took, answered, skipped)
		}
	}
}

// TestMetricsCountFramesAndAuth: frames in and out are counted as they pass, wrong tokens
// as auth failures, and the lockout they cause once.
func TestMetricsCountFramesAndAuth(t *testing.T) {
	g := startEdge(t, func(c *Config) {
		c.Token = "s3cret-token"
		c.AuthRateLimit = AuthRateLimit{MaxFailures: 2, Window: time.Minute, Lockout: time.Minute}
	})
	startFakeServices(t, g.nc)
	for range 3 { // two wrong tokens, then the lockout refuses without comparing
		c := dialRaw(t, "ws://"+g.addr, nil)
		h := hello("cli")
		h["auth"] = map[string]any{"token": "wrong"}
		c.Send(h)
		if f := c.Next(); f["type"] != schemas.TypeHelloError {
			t.Fatalf("wrong token answered %v", f)
		}
	}
	mfs := scrape(t, "http://"+g.addr+"/metrics")
	if got := metricValue(mfs, "clawdis_auth_failures_total", nil); got != 2 {
		t.Errorf("auth failures = %v, want 2", got)
	}
	if got := metricValue(mfs, "clawdis_auth_lockouts_total", nil); got != 1 {
		t.Errorf("auth lockouts = %v, want 1", got)
	}
	in0 := metricValue(mfs, "clawdis_frames_in_total", nil)
	out0 := metricValue(mfs, "clawdis_frames_out_total", nil)
	if in0 != 3 || out0 != 3 { // each refused client sent a hello and got a hello-error
		t.Errorf("frames in %v, out %v after three refused hellos; want 3 and 3", in0, out0)
	}
}
