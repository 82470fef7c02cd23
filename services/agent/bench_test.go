package agent

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/clawdis/clawdis/schemas"
)

// benchDeltas is the number of deltas one benchmark run streams.
const benchDeltas = 500

// streamingServer streams n small content deltas per request, pre-encoded, flushing each.
func streamingServer(b *testing.B, n int) *httptest.Server {
	chunk := []byte(`data: {"choices":[{"index":0,"delta":{"content":"tok "}}]}` + "\n\n")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		fl := w.(http.Flusher)
		for range n {
			_, _ = w.Write(chunk)
			fl.Flush()
		}
		_, _ = io.WriteString(w, "data: [DONE]\n\n")
	}))
	b.Cleanup(srv.Close)
	return srv
}

// BenchmarkOpenAIBackendDelta: the backend alone (HTTP, SSE parsing, JSON decoding) per
// streamed delta.
func BenchmarkOpenAIBackendDelta(b *testing.B) {
	srv := streamingServer(b, benchDeltas)
	cfg, err := Config{Backend: BackendOpenAI, OpenAI: OpenAIConfig{BaseURL: srv.URL, Model: "m"}, HistoryLimit: -1}.withDefaults()
	if err != nil {
		b.Fatal(err)
	}
	be := newOpenAIBackend(cfg)
	out := make(chan output, 64)
	go func() {
		for range out {
		}
	}()
	defer close(out)
	b.ReportAllocs()
	start := time.Now()
	for b.Loop() {
		if _, err := be.run(context.Background(), &turn{Prompt: "hi"}, out); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(time.Since(start).Nanoseconds())/float64(b.N*benchDeltas), "ns/delta")
}

// BenchmarkAgentRunDelta: a whole agent run through the service (accept, sessions,
// backend, an agent event per delta on the bus, final) per streamed delta; the run's fixed
// cost is spread over benchDeltas deltas. Nobody subscribes to the events.
func BenchmarkAgentRunDelta(b *testing.B) {
	srv := streamingServer(b, benchDeltas)
	h := startWith(b, Config{Backend: BackendOpenAI, OpenAI: OpenAIConfig{BaseURL: srv.URL + "/", Model: "m"}, HistoryLimit: -1}, false)
	b.ReportAllocs()
	start := time.Now()
	i := 0
	for b.Loop() {
		i++
		key := fmt.Sprintf("bench-%d", i)
		h.run(schemas.AgentParams{Message: "hi", SessionKey: "bench", IdempotencyKey: key})
		if r := h.finalOK(key); !strings.HasPrefix(r.Text, "tok tok") {
			b.Fatalf("text = %.20q", r.Text)
		}
	}
	b.ReportMetric(float64(time.Since(start).Nanoseconds())/float64(b.N*benchDeltas), "ns/delta")
}
