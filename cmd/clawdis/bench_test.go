package main

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

// benchGateway runs the whole daemon in-process (bus, real services, edge) on a free port
// with token "tok" and returns its URL; it stops with the benchmark.
func benchGateway(b *testing.B) string {
	b.Helper()
	b.Setenv("HOME", b.TempDir())
	b.Setenv("CLAWDIS_GATEWAY_TOKEN", "")
	b.Setenv("CLAWDIS_CONFIG_PATH", "")
	return startDaemon(b, b.TempDir(), "", func(df *daemonFlags) { df.token = "tok" }).url
}

func benchOptions(url string) client.Options {
	return client.Options{URL: url, Token: "tok", Client: schemas.ClientInfo{Name: "bench", Mode: "cli"}}
}

// BenchmarkHealthRoundTrip: one connected client, b.N sequential health requests through
// the WebSocket, the edge, the bus and the real health service.
func BenchmarkHealthRoundTrip(b *testing.B) {
	url := benchGateway(b)
	ctx := context.Background()
	opts := benchOptions(url)
	opts.FrameHook = validatingHook(b)
	warm, err := client.Dial(ctx, opts) // warm up with a validating client
	if err != nil {
		b.Fatal(err)
	}
	_, err = warm.Request(ctx, schemas.MethodHealth, nil)
	warm.Close()
	if err != nil {
		b.Fatal(err)
	}
	c, err := client.Dial(ctx, benchOptions(url)) // the timed client does not validate
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
// decoded it); the close is not in them (ns/op and allocs/op count it). Real services behind.
func BenchmarkHelloHandshake(b *testing.B) {
	url := benchGateway(b)
	ctx := context.Background()
	opts := benchOptions(url)
	opts.FrameHook = validatingHook(b)
	c, err := client.Dial(ctx, opts) // warm up, validated
	if err != nil {
		b.Fatal(err)
	}
	c.Close()
	opts = benchOptions(url)
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
