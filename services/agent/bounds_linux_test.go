package agent

import (
	"bufio"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/clawdis/clawdis/schemas"
)

// TestCommandExitKillsGroup: when the command exits, what it left running in its process
// group is killed: a backgrounded sleep is gone after the run, whether it kept the
// command's stdout open or not, and the run ends ok with the command's output.
func TestCommandExitKillsGroup(t *testing.T) {
	for _, tc := range []struct{ name, redirect string }{
		{"holding stdout", ""},
		{"detached from stdout", " >/dev/null 2>&1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pidfile := filepath.Join(t.TempDir(), "pid")
			script := "sleep 600" + tc.redirect + " & echo $! > " + pidfile + "; echo done"
			h := start(t, commandConfig("sh", "-c", script))
			h.run(schemas.AgentParams{Message: "hi", IdempotencyKey: "bg"})
			if got := h.finalOK("bg").Text; got != "done" {
				t.Fatalf("text = %q, want done", got)
			}
			b, err := os.ReadFile(pidfile)
			if err != nil {
				t.Fatal(err)
			}
			child, err := strconv.Atoi(strings.TrimSpace(string(b)))
			if err != nil {
				t.Fatalf("pid file = %q", b)
			}
			waitExited(t, child)
			if err := syscall.Kill(child, 0); err == nil {
				// Where PID 1 does not reap orphans the killed child stays a zombie.
				if state := procState(child); state != "Z" && state != "X" && state != "" {
					t.Fatalf("the backgrounded sleep %d is still running (state %s)", child, state)
				}
			} else if !errors.Is(err, syscall.ESRCH) {
				t.Fatalf("kill(%d, 0) = %v", child, err)
			}
		})
	}
}

// procState is the state letter of process pid from /proc, "" when it is gone.
func procState(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	i := strings.LastIndexByte(string(b), ')')
	if f := strings.Fields(string(b[i+1:])); len(f) > 0 {
		return f[0]
	}
	return ""
}

// TestFloodMemoryBounded: a command printing 200 MB ends with a final, and the test
// process's peak RSS stays under 300 MB while it runs: past the cap the output is read and
// dropped, and chat deltas do not re-encode an ever-growing text.
func TestFloodMemoryBounded(t *testing.T) {
	// Writing 5 to clear_refs resets the peak RSS (VmHWM) to the current RSS.
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		t.Skipf("cannot reset the peak RSS: %v", err)
	}
	h := start(t, floodCommand(200<<20))
	sizes := watchSizes(t, h.nc)
	h.chat(schemas.ChatSendParams{SessionKey: "main", Message: "flood", IdempotencyKey: "f200"})
	evs := h.events.waitFor("chat final", chatEnded("f200"))
	c := chatOf(evs, "f200")
	if last := c[len(c)-1]; last.State != chatFinal || !strings.HasSuffix(chatText(&last), "[reply truncated at 262144 bytes]") {
		t.Fatalf("last chat event %s ends %q", last.State, tail(chatText(&last)))
	}
	sizes.check(t, DefaultMaxPayload)
	peak := peakRSS(t)
	if peak > 300<<20 {
		t.Fatalf("peak RSS %d MB, want under 300 MB", peak>>20)
	}
	t.Logf("peak RSS %d MB", peak>>20)
}

// peakRSS reads VmHWM from /proc/self/status, in bytes.
func peakRSS(t *testing.T) int {
	t.Helper()
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			if err != nil {
				t.Fatalf("VmHWM line %q", sc.Text())
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc/self/status")
	return 0
}
