package agent

import (
	"errors"

	"golang.org/x/sys/unix"
)

// awaitExit blocks until process pid has exited, leaving it unreaped (waitid with
// WNOWAIT): until it is reaped its pid, the id of its process group, cannot be reused, so
// the group can still be killed safely. It reports false when it could not wait.
func awaitExit(pid int) bool {
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if !errors.Is(err, unix.EINTR) {
			return err == nil
		}
	}
}
