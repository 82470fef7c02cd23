//go:build linux

package force

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Listeners returns the processes with a TCP socket listening on port, IPv4 or IPv6, on any
// address, sorted by pid. On Linux it reads /proc/net/tcp and /proc/net/tcp6 for the
// listening sockets' inodes and finds their owners among /proc/<pid>/fd; processes whose fds
// cannot be read (another user's, when not root) are not seen.
func Listeners(port int) ([]Process, error) {
	if err := checkPort(port); err != nil {
		return nil, err
	}
	inodes := map[uint64]bool{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		data, err := os.ReadFile(f)
		if errors.Is(err, fs.ErrNotExist) {
			continue // no IPv6 (or no IPv4) in this kernel
		}
		if err != nil {
			return nil, fmt.Errorf("force: read %s: %w", f, err)
		}
		for _, ino := range listenInodes(data, port) {
			inodes[ino] = true
		}
	}
	if len(inodes) == 0 {
		return nil, nil
	}
	return socketOwners(inodes)
}

// socketOwners scans /proc/<pid>/fd for links to the given socket inodes.
func socketOwners(inodes map[uint64]bool) ([]Process, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("force: read /proc: %w", err)
	}
	var procs []Process
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 0 {
			continue
		}
		if ownsSocket(pid, inodes) {
			procs = append(procs, Process{PID: pid, Command: command(pid)})
		}
	}
	return sortProcs(procs), nil
}

func ownsSocket(pid int, inodes map[uint64]bool) bool {
	dir := filepath.Join("/proc", strconv.Itoa(pid), "fd")
	fds, err := os.ReadDir(dir)
	if err != nil {
		return false // gone, or not ours to look at
	}
	for _, fd := range fds {
		target, err := os.Readlink(filepath.Join(dir, fd.Name()))
		if err != nil {
			continue
		}
		if ino, ok := parseSocketLink(target); ok && inodes[ino] {
			return true
		}
	}
	return false
}

// command is /proc/<pid>/comm, else the base name of the first word of its cmdline.
func command(pid int) string {
	base := filepath.Join("/proc", strconv.Itoa(pid))
	if b, err := os.ReadFile(filepath.Join(base, "comm")); err == nil {
		if s := strings.TrimSpace(string(b)); s != "" {
			return s
		}
	}
	if b, err := os.ReadFile(filepath.Join(base, "cmdline")); err == nil {
		first, _, _ := bytes.Cut(b, []byte{0})
		if len(first) > 0 {
			return filepath.Base(string(first))
		}
	}
	return ""
}
