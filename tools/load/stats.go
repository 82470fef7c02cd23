package main

import (
	"cmp"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/clawdis/clawdis/tools/internal/procstat"
)

// summary describes a set of durations.
type summary struct {
	N                        int
	Min, P50, P99, Max, Mean time.Duration
}

// summarize computes the summary of ds (nearest-rank percentiles); ds is not modified.
func summarize(ds []time.Duration) summary {
	if len(ds) == 0 {
		return summary{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	var total time.Duration
	for _, d := range s {
		total += d
	}
	return summary{
		N: len(s), Min: s[0], Max: s[len(s)-1], Mean: total / time.Duration(len(s)),
		P50: percentile(s, 0.50), P99: percentile(s, 0.99),
	}
}

// percentile is the nearest-rank p-quantile (0 < p ≤ 1) of sorted, which is not empty.
func percentile(sorted []time.Duration, p float64) time.Duration {
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func (s summary) String() string {
	if s.N == 0 {
		return "no samples"
	}
	return fmt.Sprintf("n %d  min %s  p50 %s  p99 %s  max %s  mean %s", s.N,
		round(s.Min), round(s.P50), round(s.P99), round(s.Max), round(s.Mean))
}

// round keeps three significant digits or so, for reading.
func round(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	default:
		return d.Round(time.Microsecond)
	}
}

// errCounter counts errors by message.
type errCounter struct {
	byMsg map[string]int
	n     int
}

func (e *errCounter) add(err error) {
	if e.byMsg == nil {
		e.byMsg = make(map[string]int)
	}
	e.byMsg[err.Error()]++
	e.n++
}

func (e *errCounter) total() int { return e.n }

// merge adds the counts of o.
func (e *errCounter) merge(o *errCounter) {
	for m, n := range o.byMsg {
		if e.byMsg == nil {
			e.byMsg = make(map[string]int)
		}
		e.byMsg[m] += n
	}
	e.n += o.n
}

// top returns up to n messages, most frequent first (ties by message).
func (e *errCounter) top(n int) []string {
	msgs := make([]string, 0, len(e.byMsg))
	for m := range e.byMsg {
		msgs = append(msgs, m)
	}
	slices.SortFunc(msgs, func(a, b string) int {
		return cmp.Or(cmp.Compare(e.byMsg[b], e.byMsg[a]), cmp.Compare(a, b))
	})
	if len(msgs) > n {
		msgs = msgs[:n]
	}
	return msgs
}

func (e *errCounter) print(w io.Writer, what string) {
	for _, m := range e.top(5) {
		fmt.Fprintf(w, "  %s ×%d: %s\n", what, e.byMsg[m], m)
	}
}

// rssReport collects labelled VmRSS samples of the gateway; with pid 0 it does nothing.
type rssReport struct {
	pid     int
	samples []string
}

func newRSSReport(pid int) *rssReport { return &rssReport{pid: pid} }

func (r *rssReport) sample(label string) {
	if r.pid == 0 {
		return
	}
	rss, err := procstat.ReadRSS(r.pid)
	if err != nil {
		r.samples = append(r.samples, label+" ("+err.Error()+")")
		return
	}
	r.samples = append(r.samples, fmt.Sprintf("%s %s", label, procstat.MiB(rss)))
}

func (r *rssReport) print(w io.Writer) {
	if r.pid == 0 {
		return
	}
	fmt.Fprintf(w, "gateway rss: %s\n", strings.Join(r.samples, ", "))
}

// throughput is n requests over elapsed, per second.
func throughput(n int, elapsed time.Duration) float64 {
	if elapsed <= 0 {
		return 0
	}
	return float64(n) / elapsed.Seconds()
}

// cpuSampler reads the gateway's CPU time when it is made; print reports what the gateway
// used since. With pid 0 it does nothing.
type cpuSampler struct {
	pid    int
	before procstat.CPU
	err    error
}

func newCPUSampler(pid int) *cpuSampler {
	c := &cpuSampler{pid: pid}
	if pid != 0 {
		c.before, c.err = procstat.ReadCPU(pid)
	}
	return c
}

func (c *cpuSampler) print(w io.Writer, elapsed time.Duration, requests int) {
	if c.pid == 0 {
		return
	}
	after, err := procstat.ReadCPU(c.pid)
	if err = cmp.Or(c.err, err); err != nil {
		fmt.Fprintf(w, "gateway cpu: %v\n", err)
		return
	}
	fmt.Fprintf(w, "gateway cpu: %s\n", procstat.Summary(after.Sub(c.before), elapsed, requests))
}
