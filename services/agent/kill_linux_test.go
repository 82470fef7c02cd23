package agent

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/schemas"
)

// TestCommandTimeoutKillsGroup: a command that outlives its deadline ends the run with
// AGENT_TIMEOUT, and its whole process group (including a child it started) is gone.
func TestCommandTimeoutKillsGroup(t *testing.T) {
	pidfile := filepath.Join(t.TempDir(), "pids")
	h := start(t, commandConfig("sh", script(t, "hang.sh"), pidfile))
	one := int64(1)
	h.run(schemas.AgentParams{Message: "hi", IdempotencyKey: "h1", Timeout: &one})
	h.events.waitFor("started", func(evs []event) bool {
		a := agentOf(evs, "h1")
		return len(a) >= 2 && assistantText(a[1]) == "started\n"
	})
	b, err := os.ReadFile(pidfile)
	if err != nil {
		t.Fatal(err)
	}
	pids := strings.Fields(string(b))
	if len(pids) != 2 {
		t.Fatalf("pid file = %q", b)
	}
	leader, _ := strconv.Atoi(pids[0])
	child, _ := strconv.Atoi(pids[1])
	if pgid, err := syscall.Getpgid(child); err != nil || pgid != leader {
		t.Fatalf("child's process group = %d (%v), want %d", pgid, err, leader)
	}

	_, payload := h.finalErr("h1", wire.CodeAgentTimeout)
	if payload.Status != "timeout" {
		t.Fatalf("payload = %+v, want status timeout", payload)
	}
	waitExited(t, child)
	if err := syscall.Kill(leader, 0); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("kill(%d, 0) = %v, want ESRCH: the command was not reaped", leader, err)
	}
	// kill(-pgid, 0) finds zombies too, and where PID 1 does not reap orphans (a container
	// without an init) the killed child stays one: then every member must be a zombie.
	if err := syscall.Kill(-leader, 0); !errors.Is(err, syscall.ESRCH) {
		if running := groupRunning(t, leader); len(running) > 0 {
			t.Fatalf("kill(-%d, 0) = %v and processes %v of the group still run", leader, err, running)
		}
	}
	a := agentOf(h.events.waitFor("job error", ended("h1")), "h1")
	if last := a[len(a)-1]; jobState(last) != "error" || !strings.Contains(string(last.Data), "timed out") {
		t.Fatalf("last event = %s %s, want a job error saying it timed out", last.Stream, last.Data)
	}
}

// groupRunning returns the processes of group pgid that are not zombies, from /proc.
func groupRunning(t *testing.T, pgid int) []string {
	t.Helper()
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		t.Fatal(err)
	}
	var running []string
	for _, path := range stats {
		b, err := os.ReadFile(path)
		if err != nil {
			continue // gone meanwhile
		}
		// pid (comm) state ppid pgrp ...; comm may contain spaces and parentheses.
		i := strings.LastIndexByte(string(b), ')')
		f := strings.Fields(string(b[i+1:]))
		if len(f) >= 3 && f[2] == strconv.Itoa(pgid) && f[0] != "Z" && f[0] != "X" {
			running = append(running, string(b[:i+1]))
		}
	}
	return running
}

// waitExited waits until process pid has exited (it may stay a zombie of another parent):
// a pidfd becomes readable then.
func waitExited(t *testing.T, pid int) {
	t.Helper()
	const sysPidfdOpen = 434 // the same number on every Linux architecture
	fd, _, errno := syscall.Syscall(sysPidfdOpen, uintptr(pid), 0, 0)
	if errno == syscall.ESRCH {
		return // already reaped
	}
	if errno != 0 {
		t.Fatalf("pidfd_open(%d): %v", pid, errno)
	}
	defer syscall.Close(int(fd))
	var set syscall.FdSet
	set.Bits[fd/64] |= 1 << (fd % 64)
	tv := syscall.NsecToTimeval(int64(waitLimit / time.Nanosecond))
	n, err := syscall.Select(int(fd)+1, &set, nil, nil, &tv)
	if err != nil || n != 1 {
		t.Fatalf("process %d still running after %s (select: %d, %v)", pid, waitLimit, n, err)
	}
}
