package procstat

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

func TestParseStatCPU(t *testing.T) {
	// Fields 3… of a real line: state ppid pgrp session tty tpgid flags minflt cminflt
	// majflt cmajflt utime stime cutime cstime …
	tail := " S 1 2 3 0 -1 4194304 99 0 0 0 %s %s 7 8 20 0 12 0 269592 3133440 390"
	build := func(comm, utime, stime string) string {
		s := strings.Replace(tail, "%s", utime, 1)
		s = strings.Replace(s, "%s", stime, 1)
		return "4242 (" + comm + ")" + s + "\n"
	}
	for _, tt := range []struct {
		name string
		in   string
		want time.Duration
		err  bool
	}{
		{"plain", build("clawdis", "150", "25"), 1750 * time.Millisecond, false},
		{"zero", build("clawdis", "0", "0"), 0, false},
		{"name with spaces and parens", build("a (b) c)", "3", "4"), 70 * time.Millisecond, false},
		{"cutime and cstime are not counted", build("x", "1", "1"), 20 * time.Millisecond, false},
		{"no name", "4242 clawdis S 1 2", 0, true},
		{"truncated", "4242 (clawdis) S 1 2 3", 0, true},
		{"bad number", build("clawdis", "x", "1"), 0, true},
		{"negative", build("clawdis", "-1", "1"), 0, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseStatCPU(tt.in)
			if (err != nil) != tt.err || got != tt.want {
				t.Fatalf("ParseStatCPU = %s, %v; want %s, error %v", got, err, tt.want, tt.err)
			}
			if err != nil && !errors.Is(err, ErrFormat) {
				t.Errorf("error %v does not wrap ErrFormat", err)
			}
		})
	}
}

func TestParseSchedstat(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want time.Duration
		err  bool
	}{
		{"4764409 50526 2\n", 4764409 * time.Nanosecond, false},
		{"0 0 0", 0, false},
		{"", 0, true},
		{"x 1 2", 0, true},
		{"-5 1 2", 0, true},
	} {
		got, err := ParseSchedstat(tt.in)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("ParseSchedstat(%q) = %s, %v; want %s, error %v", tt.in, got, err, tt.want, tt.err)
		}
	}
}

func TestParseVmRSS(t *testing.T) {
	for _, tt := range []struct {
		name, in string
		want     int64
		err      bool
	}{
		{"status", "Name:\tclawdis\nVmPeak:\t  900000 kB\nVmRSS:\t   20480 kB\nRssAnon:\t 1 kB\n", 20480 * 1024, false},
		{"no line", "Name:\tclawdis\n", 0, true},
		{"bad unit", "VmRSS:\t 20 MB\n", 0, true},
		{"bad number", "VmRSS:\t x kB\n", 0, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseVmRSS(strings.NewReader(tt.in))
			if (err != nil) != tt.err || got != tt.want {
				t.Errorf("ParseVmRSS = %d, %v; want %d, error %v", got, err, tt.want, tt.err)
			}
		})
	}
}

func TestReadSelf(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc here")
	}
	before, err := ReadCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// Burn CPU until the tick-resolution counter moves (a few ticks at most).
	deadline := time.Now().Add(10 * time.Second)
	var after CPU
	for x := 0; ; x++ {
		if x%1_000_000 == 0 {
			if after, err = ReadCPU(os.Getpid()); err != nil {
				t.Fatal(err)
			}
			if after.Stat > before.Stat || time.Now().After(deadline) {
				break
			}
		}
	}
	used := after.Sub(before)
	if used.Stat < ClockTick {
		t.Errorf("stat CPU moved by %s after busy work, want at least a tick", used.Stat)
	}
	if _, err := os.Stat("/proc/self/schedstat"); err == nil && used.Sched <= 0 {
		t.Errorf("schedstat CPU moved by %s after busy work", used.Sched)
	}
	rss, err := ReadRSS(os.Getpid())
	if err != nil || rss <= 0 {
		t.Errorf("ReadRSS = %d, %v", rss, err)
	}
	if name, err := Comm(os.Getpid()); err != nil || name == "" {
		t.Errorf("Comm = %q, %v", name, err)
	}
	if _, err := ReadCPU(1 << 30); err == nil {
		t.Error("ReadCPU of a pid that cannot exist succeeded")
	}
}

func TestSummary(t *testing.T) {
	for _, tt := range []struct {
		name     string
		used     CPU
		elapsed  time.Duration
		requests int
		want     string
	}{
		{"requests", CPU{Stat: 1500 * time.Millisecond, Sched: 1523400 * time.Microsecond}, 10 * time.Second, 30000,
			"1500.0 ms in 10s (utime+stime; threads' schedstat 1523.4 ms), 9000.0 ms per minute; 50.0 µs per request, 50.0 ms per 1000 requests"},
		{"idle without schedstat", CPU{Stat: 20 * time.Millisecond}, 2 * time.Minute, 0,
			"20.0 ms in 2m0s (utime+stime), 10.0 ms per minute"},
		{"nothing used", CPU{}, time.Minute, 0, "0.0 ms in 1m0s (utime+stime), 0.0 ms per minute"},
		{"no time", CPU{Stat: 10 * time.Millisecond}, 0, 0, "10.0 ms in 0s (utime+stime), 0.0 ms per minute"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := Summary(tt.used, tt.elapsed, tt.requests); got != tt.want {
				t.Errorf("Summary =\n %s\nwant\n %s", got, tt.want)
			}
		})
	}
}
