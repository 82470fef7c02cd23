package force

import (
	"bufio"
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"
)

// tcpStateListen is TCP_LISTEN in the st column of /proc/net/tcp.
const tcpStateListen = 0x0A

// tcpEntry is the part of a /proc/net/tcp{,6} line that matters here.
type tcpEntry struct {
	LocalPort int
	State     int
	Inode     uint64
}

// parseProcNetTCPLine parses one line of /proc/net/tcp or /proc/net/tcp6, e.g.
//
//	0: 0100007F:4A3D 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000  0 12345 1 ...
//
// (local address hex:port, remote address, state, queues, timer, retransmits, uid, timeout,
// inode). The header line and malformed lines give ok=false.
func parseProcNetTCPLine(line string) (e tcpEntry, ok bool) {
	f := strings.Fields(line)
	if len(f) < 10 || !strings.HasSuffix(f[0], ":") {
		return e, false
	}
	_, portHex, found := strings.Cut(f[1], ":")
	if !found {
		return e, false
	}
	port, err := strconv.ParseUint(portHex, 16, 16)
	if err != nil {
		return e, false
	}
	state, err := strconv.ParseUint(f[3], 16, 8)
	if err != nil {
		return e, false
	}
	inode, err := strconv.ParseUint(f[9], 10, 64)
	if err != nil {
		return e, false
	}
	return tcpEntry{LocalPort: int(port), State: int(state), Inode: inode}, true
}

// listenInodes returns the socket inodes listening on port in a /proc/net/tcp{,6} file.
func listenInodes(data []byte, port int) []uint64 {
	var out []uint64
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		e, ok := parseProcNetTCPLine(sc.Text())
		if ok && e.State == tcpStateListen && e.LocalPort == port && e.Inode != 0 {
			out = append(out, e.Inode)
		}
	}
	return out
}

// parseSocketLink returns the inode of an fd link target "socket:[12345]".
func parseSocketLink(target string) (uint64, bool) {
	s, ok := strings.CutPrefix(target, "socket:[")
	if !ok {
		return 0, false
	}
	s, ok = strings.CutSuffix(s, "]")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 64)
	return n, err == nil
}

// parseLsof parses `lsof -F pc` output: "p<pid>" starts a process, "c<command>" names it;
// other field lines are ignored. The result is sorted by pid without duplicates.
func parseLsof(out []byte) []Process {
	var procs []Process
	for line := range strings.SplitSeq(string(out), "\n") {
		line = strings.TrimRight(line, "\r")
		if line == "" {
			continue
		}
		switch line[0] {
		case 'p':
			if pid, err := strconv.Atoi(line[1:]); err == nil && pid > 0 {
				procs = append(procs, Process{PID: pid})
			}
		case 'c':
			if n := len(procs); n > 0 && procs[n-1].Command == "" {
				procs[n-1].Command = line[1:]
			}
		}
	}
	return sortProcs(procs)
}

func sortProcs(procs []Process) []Process {
	slices.SortFunc(procs, func(a, b Process) int { return cmp.Compare(a.PID, b.PID) })
	return slices.CompactFunc(procs, func(a, b Process) bool { return a.PID == b.PID })
}

// lsofListeners asks lsof for the processes listening on port (the fallback off Linux).
func lsofListeners(port int) ([]Process, error) {
	if err := checkPort(port); err != nil {
		return nil, err
	}
	cmd := exec.Command("lsof", "-nP", "-iTCP:"+strconv.Itoa(port), "-sTCP:LISTEN", "-Fpc")
	out, err := cmd.Output()
	if err != nil {
		// lsof exits 1 when it finds nothing.
		if ee, ok := errors.AsType[*exec.ExitError](err); ok && ee.ExitCode() == 1 && len(bytes.TrimSpace(out)) == 0 {
			return nil, nil
		}
		return nil, fmt.Errorf("force: lsof on port %d: %w", port, err)
	}
	return parseLsof(out), nil
}

func checkPort(port int) error {
	if port < 1 || port > 65535 {
		return fmt.Errorf("force: invalid port %d", port)
	}
	return nil
}
