// Package procstat reads what the measurement tools need about another process from Linux's
// /proc: the CPU time it used (utime+stime of /proc/<pid>/stat, in clock ticks, and the
// nanosecond on-CPU time of its threads from /proc/<pid>/task/*/schedstat) and its
// resident set size (VmRSS of /proc/<pid>/status).
package procstat

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// ClockTick is the unit of utime and stime in /proc/<pid>/stat: USER_HZ, which Linux fixes
// at 100 for user space on every architecture Go supports.
const ClockTick = 10 * time.Millisecond

// ErrFormat is wrapped by the errors of the parsers for input they do not understand.
var ErrFormat = errors.New("unexpected /proc format")

// ParseStatCPU returns utime+stime of a /proc/<pid>/stat line. The command name (field 2)
// is in parentheses and may itself hold spaces and parentheses, so the fields are counted
// from the last ')'.
func ParseStatCPU(line string) (time.Duration, error) {
	end := strings.LastIndexByte(line, ')')
	if end < 0 {
		return 0, fmt.Errorf("parse stat: %w: no command name", ErrFormat)
	}
	// After the name come field 3 (state) onward; utime and stime are fields 14 and 15.
	f := strings.Fields(line[end+1:])
	const utime, stime = 14 - 3, 15 - 3
	if len(f) <= stime {
		return 0, fmt.Errorf("parse stat: %w: %d fields after the name", ErrFormat, len(f))
	}
	var ticks uint64
	for _, i := range []int{utime, stime} {
		n, err := strconv.ParseUint(f[i], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parse stat: %w: field %d %q", ErrFormat, i+3, f[i])
		}
		ticks += n
	}
	return time.Duration(ticks) * ClockTick, nil
}

// ParseSchedstat returns the first field of a schedstat line: nanoseconds spent on a CPU.
func ParseSchedstat(line string) (time.Duration, error) {
	f := strings.Fields(line)
	if len(f) < 1 {
		return 0, fmt.Errorf("parse schedstat: %w: empty", ErrFormat)
	}
	ns, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil || ns < 0 {
		return 0, fmt.Errorf("parse schedstat: %w: %q", ErrFormat, f[0])
	}
	return time.Duration(ns), nil
}

// ParseVmRSS returns the VmRSS of a /proc/<pid>/status file, in bytes.
func ParseVmRSS(r io.Reader) (int64, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("parse status: %w: VmRSS line %q", ErrFormat, sc.Text())
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || kb < 0 {
			return 0, fmt.Errorf("parse status: %w: VmRSS line %q", ErrFormat, sc.Text())
		}
		return kb * 1024, nil
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("read status: %w", err)
	}
	return 0, fmt.Errorf("parse status: %w: no VmRSS line", ErrFormat)
}

// CPU is a process's CPU time at one moment, by both measures.
type CPU struct {
	// Stat is utime+stime from /proc/<pid>/stat: every thread, also those that exited, in
	// ClockTick steps.
	Stat time.Duration
	// Sched is the sum of the on-CPU nanoseconds of the threads alive now
	// (/proc/<pid>/task/*/schedstat); 0 when the kernel does not provide it.
	Sched time.Duration
}

// Sub is the CPU time used between before and c.
func (c CPU) Sub(before CPU) CPU {
	return CPU{Stat: c.Stat - before.Stat, Sched: c.Sched - before.Sched}
}

// ReadCPU reads the CPU time pid has used so far.
func ReadCPU(pid int) (CPU, error) {
	dir := "/proc/" + strconv.Itoa(pid)
	b, err := os.ReadFile(dir + "/stat")
	if err != nil {
		return CPU{}, fmt.Errorf("read cpu: %w", err)
	}
	var c CPU
	if c.Stat, err = ParseStatCPU(string(b)); err != nil {
		return CPU{}, fmt.Errorf("%s/stat: %w", dir, err)
	}
	tasks, _ := filepath.Glob(dir + "/task/*/schedstat")
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue // the thread exited meanwhile
		}
		d, err := ParseSchedstat(string(b))
		if err != nil {
			return CPU{}, fmt.Errorf("%s: %w", t, err)
		}
		c.Sched += d
	}
	return c, nil
}

// Comm reads the command name of pid (/proc/<pid>/comm), so a tool can show what it measures
// (a shell that started the gateway is not the gateway).
func Comm(pid int) (string, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	if err != nil {
		return "", fmt.Errorf("read comm: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// ReadRSS reads the resident set size of pid, in bytes.
func ReadRSS(pid int) (int64, error) {
	path := "/proc/" + strconv.Itoa(pid) + "/status"
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("read rss: %w", err)
	}
	defer f.Close()
	rss, err := ParseVmRSS(f)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return rss, nil
}

// PerMinute scales d, used over elapsed, to one minute (0 when elapsed is not positive).
func PerMinute(d, elapsed time.Duration) time.Duration {
	if elapsed <= 0 {
		return 0
	}
	return time.Duration(float64(d) * float64(time.Minute) / float64(elapsed))
}

// Summary describes CPU time used during elapsed that served requests requests (0: an
// idle phase): in total, per minute, and per request and per 1000 requests, all by
// utime+stime (the measure every kernel has), the schedstat total beside it when known.
func Summary(used CPU, elapsed time.Duration, requests int) string {
	s := fmt.Sprintf("%s in %s (utime+stime", Ms(used.Stat), elapsed.Round(10*time.Millisecond))
	if used.Sched > 0 {
		s += "; threads' schedstat " + Ms(used.Sched)
	}
	s += "), " + Ms(PerMinute(used.Stat, elapsed)) + " per minute"
	if requests > 0 {
		perReq := float64(used.Stat) / float64(requests) // ns
		s += fmt.Sprintf("; %.1f µs per request, %.1f ms per 1000 requests", perReq/1e3, perReq*1000/1e6)
	}
	return s
}

// Ms renders d in milliseconds with one decimal.
func Ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 1, 64) + " ms"
}

// MiB renders a byte count in MiB with one decimal.
func MiB(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
