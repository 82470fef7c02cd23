package main

import (
	"bufio"
	"cmp"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
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

// parseVmRSS returns the VmRSS line of a /proc/<pid>/status file, in bytes.
func parseVmRSS(r io.Reader) (int64, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("unexpected VmRSS line %q", sc.Text())
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || kb < 0 {
			return 0, fmt.Errorf("unexpected VmRSS line %q", sc.Text())
		}
		return kb * 1024, nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("no VmRSS line")
}

// readRSS reads the resident set size of pid from /proc (Linux).
func readRSS(pid int) (int64, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	rss, err := parseVmRSS(f)
	if err != nil {
		return 0, fmt.Errorf("/proc/%d/status: %w", pid, err)
	}
	return rss, nil
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
	rss, err := readRSS(r.pid)
	if err != nil {
		r.samples = append(r.samples, label+" ("+err.Error()+")")
		return
	}
	r.samples = append(r.samples, fmt.Sprintf("%s %s", label, mib(rss)))
}

func (r *rssReport) print(w io.Writer) {
	if r.pid == 0 {
		return
	}
	fmt.Fprintf(w, "gateway rss: %s\n", strings.Join(r.samples, ", "))
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
