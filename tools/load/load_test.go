package main

import (
	"errors"
	"io"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func ms(n ...int) []time.Duration {
	out := make([]time.Duration, len(n))
	for i, v := range n {
		out[i] = time.Duration(v) * time.Millisecond
	}
	return out
}

func TestSummarize(t *testing.T) {
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(100-i) * time.Millisecond // 100ms … 1ms, unsorted
	}
	for _, tt := range []struct {
		name string
		in   []time.Duration
		want summary
	}{
		{"empty", nil, summary{}},
		{"one", ms(7), summary{N: 1, Min: 7 * time.Millisecond, P50: 7 * time.Millisecond, P99: 7 * time.Millisecond, Max: 7 * time.Millisecond, Mean: 7 * time.Millisecond}},
		{"two", ms(4, 2), summary{N: 2, Min: 2 * time.Millisecond, P50: 2 * time.Millisecond, P99: 4 * time.Millisecond, Max: 4 * time.Millisecond, Mean: 3 * time.Millisecond}},
		{"odd", ms(5, 1, 3), summary{N: 3, Min: time.Millisecond, P50: 3 * time.Millisecond, P99: 5 * time.Millisecond, Max: 5 * time.Millisecond, Mean: 3 * time.Millisecond}},
		{"hundred", hundred, summary{N: 100, Min: time.Millisecond, P50: 50 * time.Millisecond, P99: 99 * time.Millisecond, Max: 100 * time.Millisecond, Mean: 50500 * time.Microsecond}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			orig := slices.Clone(tt.in)
			if got := summarize(tt.in); got != tt.want {
				t.Errorf("summarize = %+v, want %+v", got, tt.want)
			}
			if !slices.Equal(tt.in, orig) {
				t.Error("summarize modified its input")
			}
		})
	}
	if s := summarize(nil).String(); s != "no samples" {
		t.Errorf("empty summary prints %q", s)
	}
	if s := summarize(ms(1, 2, 3)).String(); s != "n 3  min 1ms  p50 2ms  p99 3ms  max 3ms  mean 2ms" {
		t.Errorf("summary prints %q", s)
	}
}

func TestErrCounter(t *testing.T) {
	var e errCounter
	for _, m := range []string{"b", "a", "c", "a", "b", "a"} {
		e.add(errors.New(m))
	}
	if e.total() != 6 {
		t.Errorf("total %d, want 6", e.total())
	}
	if got := e.top(2); !reflect.DeepEqual(got, []string{"a", "b"}) {
		t.Errorf("top(2) = %q", got)
	}
	var b strings.Builder
	e.print(&b, "dial error")
	if want := "  dial error ×3: a\n  dial error ×2: b\n  dial error ×1: c\n"; b.String() != want {
		t.Errorf("print:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestErrCounterMerge(t *testing.T) {
	var a, b, empty errCounter
	a.add(errors.New("x"))
	b.add(errors.New("x"))
	b.add(errors.New("y"))
	a.merge(&b)
	a.merge(&empty)
	if a.total() != 3 || a.byMsg["x"] != 2 || a.byMsg["y"] != 1 {
		t.Errorf("merged: total %d, %v", a.total(), a.byMsg)
	}
	empty.merge(&b)
	if empty.total() != 2 || empty.byMsg["y"] != 1 {
		t.Errorf("merged into empty: total %d, %v", empty.total(), empty.byMsg)
	}
}

func TestThroughput(t *testing.T) {
	for _, tt := range []struct {
		n       int
		elapsed time.Duration
		want    float64
	}{
		{30000, 10 * time.Second, 3000},
		{1, 500 * time.Millisecond, 2},
		{0, time.Second, 0},
		{5, 0, 0},
	} {
		if got := throughput(tt.n, tt.elapsed); got != tt.want {
			t.Errorf("throughput(%d, %s) = %g, want %g", tt.n, tt.elapsed, got, tt.want)
		}
	}
}

func TestParseFlags(t *testing.T) {
	env := func(k string) string {
		if k == "CLAWDIS_GATEWAY_TOKEN" {
			return "from-env"
		}
		return ""
	}
	def, err := parseFlags(nil, env, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if def.url != "ws://127.0.0.1:18789" || def.mode != "cli" || def.conns != 100 || def.token != "from-env" || def.rate != 0 {
		t.Errorf("defaults: %+v", def)
	}
	o, err := parseFlags([]string{"-url", "ws://127.0.0.1:18999", "-conns", "1000", "-token", "T", "-mode", "node",
		"-rate", "50", "-hold", "3s", "-pid", "42"}, env, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.url != "ws://127.0.0.1:18999" || o.conns != 1000 || o.token != "T" || o.mode != "node" || o.rate != 50 || o.hold != 3*time.Second || o.pid != 42 {
		t.Errorf("parsed: %+v", o)
	}
	if def.max || def.requests != 0 || def.inflight != 1 || def.load() != "idle" || o.load() != "50 health req/s" {
		t.Errorf("defaults of the max mode: %+v, %q, %q", def, def.load(), o.load())
	}
	for _, tt := range []struct {
		args               []string
		requests, inflight int
		hold               time.Duration
		load               string
	}{
		{[]string{"-conns", "8", "-max"}, 0, 1, 10 * time.Second, "health requests back to back, 1 in flight per connection"},
		{[]string{"-max", "-requests", "100000", "-inflight", "4", "-hold", "0s"}, 100000, 4, 0,
			"100000 health requests back to back, 4 in flight per connection"},
	} {
		m, err := parseFlags(tt.args, env, io.Discard)
		if err != nil {
			t.Fatalf("%q: %v", tt.args, err)
		}
		if !m.max || m.requests != tt.requests || m.inflight != tt.inflight || m.hold != tt.hold || m.load() != tt.load {
			t.Errorf("%q: parsed %+v, load %q", tt.args, m, m.load())
		}
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"-conns", "0"}, "-conns 0"},
		{[]string{"-parallel", "0"}, "-parallel 0"},
		{[]string{"-mode", "gateway"}, `-mode "gateway"`},
		{[]string{"-url", "http://127.0.0.1:18789"}, "-url"},
		{[]string{"-url", "ws://"}, "-url"},
		{[]string{"-rate", "-1"}, "-rate -1"},
		{[]string{"-rate", "10", "-hold", "0s"}, "-rate needs a -hold"},
		{[]string{"-hold", "-1s"}, "-hold -1s"},
		{[]string{"-pid", "-3"}, "-pid -3"},
		{[]string{"-max", "-rate", "10"}, "exclude each other"},
		{[]string{"-requests", "10"}, "-requests needs -max"},
		{[]string{"-max", "-requests", "-1"}, "-requests -1"},
		{[]string{"-max", "-inflight", "0"}, "-inflight 0"},
		{[]string{"-max", "-hold", "0s"}, "-max needs a -hold or -requests"},
		{[]string{"-req-timeout", "0s"}, "must be positive"},
		{[]string{"-nope"}, "flag provided but not defined"},
		{[]string{"extra"}, `unexpected argument "extra"`},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			_, err := parseFlags(tt.args, env, io.Discard)
			if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want a usage error containing %q", err, tt.want)
			}
		})
	}
}
