// Package force implements `clawdis gateway --force` (SPEC §2): find the processes listening on
// a TCP port, stop them with SIGTERM, wait for the port to free and SIGKILL what still holds it.
// On Linux the listeners are read natively from /proc; elsewhere `lsof` is the fallback.
package force

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"syscall"
	"time"
)

// Process is a process holding a listening socket.
type Process struct {
	PID     int
	Command string // short command name (Linux: /proc/<pid>/comm), "" when unknown
}

const (
	// pollInterval is how often FreePort looks at the port while waiting.
	pollInterval = 50 * time.Millisecond
	// killWait is how long FreePort waits for the port after SIGKILL.
	killWait = 2 * time.Second
)

// FreePort stops every process other than this one that listens on TCP port: it sends each
// SIGTERM and logs `force: stopped pid N (command) on port P`, polls until the port has no
// listener for up to wait, then SIGKILLs whatever still holds it and waits briefly again. It
// returns an error when the port is still held (or is held by this process itself), when the
// listeners cannot be listed, or when ctx ends. With nothing listening it logs
// `force: nothing listening on port P` and returns nil. A nil log discards the messages.
func FreePort(ctx context.Context, port int, log *slog.Logger, wait time.Duration) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	self := os.Getpid()
	procs, selfHolds, err := others(port, self)
	if err != nil {
		return err
	}
	if len(procs) == 0 {
		if selfHolds {
			return fmt.Errorf("force: port %d is held by this process (pid %d)", port, self)
		}
		log.Info(fmt.Sprintf("force: nothing listening on port %d", port), "port", port)
		return nil
	}
	for _, p := range procs {
		if err := sendSignal(p.PID, syscall.SIGTERM); err != nil {
			log.Warn(fmt.Sprintf("force: cannot stop pid %d (%s) on port %d", p.PID, p.Command, port),
				"pid", p.PID, "command", p.Command, "port", port, "error", err.Error())
			continue
		}
		log.Info(fmt.Sprintf("force: stopped pid %d (%s) on port %d", p.PID, p.Command, port),
			"pid", p.PID, "command", p.Command, "port", port)
	}
	remaining, err := waitFree(ctx, port, self, wait)
	if err != nil || len(remaining) == 0 {
		return err
	}
	for _, p := range remaining {
		if err := sendSignal(p.PID, syscall.SIGKILL); err != nil {
			log.Warn(fmt.Sprintf("force: cannot kill pid %d (%s) on port %d", p.PID, p.Command, port),
				"pid", p.PID, "command", p.Command, "port", port, "error", err.Error())
			continue
		}
		log.Warn(fmt.Sprintf("force: killed pid %d (%s) on port %d", p.PID, p.Command, port),
			"pid", p.PID, "command", p.Command, "port", port, "waited", wait)
	}
	remaining, err = waitFree(ctx, port, self, killWait)
	if err != nil {
		return err
	}
	if len(remaining) > 0 {
		p := remaining[0]
		return fmt.Errorf("force: port %d still in use by pid %d (%s)", port, p.PID, p.Command)
	}
	return nil
}

// others lists the listeners on port except self, and whether self is one of them.
func others(port, self int) ([]Process, bool, error) {
	procs, err := Listeners(port)
	if err != nil {
		return nil, false, err
	}
	selfHolds := slices.ContainsFunc(procs, func(p Process) bool { return p.PID == self })
	procs = slices.DeleteFunc(procs, func(p Process) bool { return p.PID == self })
	return procs, selfHolds, nil
}

// waitFree polls the port until no process other than self listens on it or wait has passed,
// and returns the listeners left.
func waitFree(ctx context.Context, port, self int, wait time.Duration) ([]Process, error) {
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		procs, _, err := others(port, self)
		if err != nil || len(procs) == 0 {
			return procs, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("force: waiting for port %d: %w", port, ctx.Err())
		case <-deadline.C:
			// One last look: the process may have gone between the tick and the deadline.
			procs, _, err := others(port, self)
			return procs, err
		case <-tick.C:
		}
	}
}

// sendSignal sends sig to pid; a process that is already gone is not an error.
func sendSignal(pid int, sig syscall.Signal) error {
	p, err := os.FindProcess(pid)
	if err != nil {
		return fmt.Errorf("find pid %d: %w", pid, err)
	}
	defer p.Release()
	if err := p.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) &&
		!errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signal pid %d: %w", pid, err)
	}
	return nil
}
