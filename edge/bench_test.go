package edge

import (
	"context"
	"math"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clawdis/clawdis/edge/client"
	"github.com/clawdis/clawdis/schemas"
)

// The edge benchmarks run a real WebSocket, the edge and the real in-process bus, with the
// fake presence and health responders of helpers_test.go behind it (the edge may not import
// the services; cmd/clawdis benchmarks the same paths with the real ones).

// benchEdge starts an edge with the fake services and returns its URL.
func benchEdge(b *testing.B) string {
	b.Helper()
	g := startEdge(b, nil)
	startFakeServices(b, g.nc)
	return g.url
}

// validated dials a client that checks every frame against the schemas, runs one health
// request through it and closes it, so the benchmarked path is known to speak the protocol.
func validated(b *testing.B, url string) {
	b.Helper()
	set := testSchemas(b)
	bad := make(chan error, 1)
	c, err := client.Dial(context.Background(), client.Options{URL: url, FrameHook: func(raw []byte) {
		if err := set.ServerFrame(raw); err != nil {
			select {
			case bad <- err:
			default:
			}
		}
	}})
	if err != nil {
		b.Fatal(err)
	}
	_, err = c.Request(context.Background(), schemas.MethodHealth, nil)
	c.Close()
	if err != nil {
		b.Fatal(err)
	}
	select {
	case err := <-bad:
		b.Fatalf("server frame fails schema: %v", err)
	default:
	}
}

// BenchmarkHealthRoundTrip: one connected client, b.N sequential health requests.
func BenchmarkHealthRoundTrip(b *testing.B) {
	url := benchEdge(b)
	validated(b, url)
	ctx := context.Background()
	c, err := client.Dial(ctx, client.Options{URL: url})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	lat := make([]time.Duration, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		t0 := time.Now()
		if _, err := c.Request(ctx, schemas.MethodHealth, nil); err != nil {
			b.Fatal(err)
		}
		lat[i] = time.Since(t0)
	}
	b.StopTimer()
	reportLatency(b, lat)
}

// BenchmarkHelloHandshake: per op, dial, hello / hello-ok and close. p50/p99 are from the
// dial until the hello-ok has arrived, connect-p50 until Dial returned (the client has
// decoded it); the close is not in them (ns/op and allocs/op count it).
func BenchmarkHelloHandshake(b *testing.B) {
	url := benchEdge(b)
	validated(b, url)
	ctx := context.Background()
	opts := client.Options{URL: url}
	// The frame hook sees the hello-ok as read, before the client decodes it.
	var arrived atomic.Int64
	opts.FrameHook = func([]byte) { arrived.CompareAndSwap(0, time.Now().UnixNano()) }
	connect := make([]time.Duration, b.N)
	lat := make([]time.Duration, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		arrived.Store(0)
		t0 := time.Now()
		c, err := client.Dial(ctx, opts)
		if err != nil {
			b.Fatal(err)
		}
		connect[i] = time.Since(t0)
		lat[i] = time.Duration(arrived.Load() - t0.UnixNano())
		c.Close()
	}
	b.StopTimer()
	reportLatency(b, lat)
	slices.Sort(connect)
	b.ReportMetric(float64(connect[len(connect)/2].Nanoseconds())/1e3, "connect-p50-µs")
}

// reportLatency reports the median and the 99th percentile of lat in microseconds.
func reportLatency(b *testing.B, lat []time.Duration) {
	slices.Sort(lat)
	pct := func(p float64) float64 { // nearest rank
		i := int(math.Ceil(p*float64(len(lat)))) - 1
		return float64(lat[max(i, 0)].Nanoseconds()) / 1e3
	}
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
}
