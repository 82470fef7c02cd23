package agent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clawdis/clawdis/schemas"
)

// blockHarness runs block.sh: each run logs its message to dir/log, prints "start <msg>"
// and waits for the file dir/<msg>.
func blockHarness(t *testing.T, maxConcurrent int) (*harness, string) {
	dir := t.TempDir()
	cfg := commandConfig("sh", script(t, "block.sh"), dir, "{{Body}}")
	cfg.MaxConcurrent = maxConcurrent
	return start(t, cfg), dir
}

func started(runID string) func([]event) bool {
	return func(evs []event) bool { return index(evs, runID, isJob("started")) >= 0 }
}

func runLog(t *testing.T, dir string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "log"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(string(b))
}

// TestSessionTurnsInOrder: a session's second turn starts only after its first ended.
func TestSessionTurnsInOrder(t *testing.T) {
	h, dir := blockHarness(t, 4)
	h.run(schemas.AgentParams{Message: "one", SessionKey: "s", IdempotencyKey: "one"})
	h.run(schemas.AgentParams{Message: "two", SessionKey: "s", IdempotencyKey: "two"})
	h.events.waitFor("one started", started("one"))
	if started("two")(h.events.snapshot()) {
		t.Fatal("the second turn started while the first runs")
	}
	touch(t, filepath.Join(dir, "one"))
	touch(t, filepath.Join(dir, "two"))
	h.finalOK("one")
	h.finalOK("two")
	evs := h.events.waitFor("two ended", ended("two"))
	if done, next := index(evs, "one", isJob("done")), index(evs, "two", isJob("started")); next < done {
		t.Fatalf("two started (event %d) before one was done (event %d)", next, done)
	}
	if got := runLog(t, dir); strings.Join(got, " ") != "one two" {
		t.Fatalf("runs = %v, want one then two", got)
	}
}

// TestConcurrencyAcrossSessions: turns of different sessions run at the same time, at
// most MaxConcurrent of them.
func TestConcurrencyAcrossSessions(t *testing.T) {
	h, dir := blockHarness(t, 2)
	names := []string{"x", "y", "z"}
	for _, n := range names {
		h.run(schemas.AgentParams{Message: n, SessionKey: "session-" + n, IdempotencyKey: n})
	}
	var running []string
	h.events.waitFor("two runs started", func(evs []event) bool {
		running = running[:0]
		for _, n := range names {
			if started(n)(evs) {
				running = append(running, n)
			}
		}
		return len(running) >= 2
	})
	if len(running) != 2 {
		t.Fatalf("runs started at once = %v, want 2 (MaxConcurrent)", running)
	}
	var waiting string
	for _, n := range names {
		if n != running[0] && n != running[1] {
			waiting = n
		}
	}
	// Both run together: neither ended (no gate exists yet). Release one; the third starts.
	touch(t, filepath.Join(dir, running[0]))
	h.finalOK(running[0])
	evs := h.events.waitFor("the third run started", started(waiting))
	if done, next := index(evs, running[0], isJob("done")), index(evs, waiting, isJob("started")); next < done {
		t.Fatalf("%s started (event %d) before %s ended (event %d)", waiting, next, running[0], done)
	}
	touch(t, filepath.Join(dir, running[1]))
	touch(t, filepath.Join(dir, waiting))
	h.finalOK(running[1])
	h.finalOK(waiting)
}
