package agent

import (
	"bytes"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/clawdis/clawdis/bus/subject"
	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/schemas"
)

// sentinel runs one more turn on session key (its gate already open) and waits for it:
// a duplicate run of the same session would have been queued before it, so afterwards
// the run log is complete.
func sentinel(t *testing.T, h *harness, dir, key, name string) {
	t.Helper()
	touch(t, filepath.Join(dir, name))
	h.run(schemas.AgentParams{Message: name, SessionKey: key, IdempotencyKey: name})
	h.finalOK(name)
}

// TestConcurrentSameKeyRunsOnce: two agent.run with one key at once run once, and both
// waits get the same final.
func TestConcurrentSameKeyRunsOnce(t *testing.T) {
	h, dir := blockHarness(t, 4)
	p := schemas.AgentParams{Message: "k", IdempotencyKey: "k"}
	var wg sync.WaitGroup
	finals := make([]wire.AgentFinal, 2)
	errs := make([]error, 2)
	for i := range 2 {
		wg.Go(func() {
			if _, errs[i] = h.request(subject.AgentRun, p); errs[i] == nil {
				finals[i], errs[i] = h.waitRaw("k", waitLimit.Milliseconds())
			}
		})
	}
	h.events.waitFor("k started", started("k"))
	touch(t, filepath.Join(dir, "k"))
	wg.Wait()
	for i, f := range finals {
		if errs[i] != nil {
			t.Fatalf("caller %d: %v", i, errs[i])
		}
		if !f.Done || !f.OK || !bytes.Equal(f.Payload, finals[0].Payload) {
			t.Fatalf("final %d = %+v %s, want ok and the same as the first", i, f, f.Payload)
		}
	}
	sentinel(t, h, dir, "main", "after")
	if got := runLog(t, dir); !slices.Equal(got, []string{"k", "after"}) {
		t.Fatalf("runs = %v, want k once", got)
	}
}

// TestRememberedAcrossRestart: a repeat after completion is acked with the remembered
// final and does not run again, also from a new service on the same DedupePath; a run no
// one knows is reported as such.
func TestRememberedAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	cfg := commandConfig("sh", script(t, "block.sh"), dir, "{{Body}}")
	cfg.DedupePath = filepath.Join(t.TempDir(), "dedupe", "agent.json")
	h := start(t, cfg)
	touch(t, filepath.Join(dir, "k"))
	h.run(schemas.AgentParams{Message: "k", IdempotencyKey: "k"})
	first := h.final("k")
	if !first.OK {
		t.Fatalf("first final = %+v", first)
	}
	h.run(schemas.AgentParams{Message: "k", IdempotencyKey: "k"})
	if again := h.final("k"); !again.OK || !bytes.Equal(again.Payload, first.Payload) {
		t.Fatalf("repeat final = %+v, want the remembered one", again)
	}
	sentinel(t, h, dir, "main", "s1")

	h.stop()
	h.startService(cfg)
	if f := h.wait("k", 0); !f.Done || !f.OK || !bytes.Equal(f.Payload, first.Payload) {
		t.Fatalf("final after restart = %+v %s, want the remembered one", f, f.Payload)
	}
	h.run(schemas.AgentParams{Message: "k", IdempotencyKey: "k"})
	sentinel(t, h, dir, "main", "s2")
	if got := runLog(t, dir); !slices.Equal(got, []string{"k", "s1", "s2"}) {
		t.Fatalf("runs = %v, want k once", got)
	}

	f := h.wait("nope", 0)
	want := "unknown run nope (the agent service may have restarted)"
	if !f.Done || f.OK || f.Error == nil || f.Error.Code != wire.CodeUnavailable || f.Error.Message != want {
		t.Fatalf("final of an unknown run = %+v, want UNAVAILABLE %q", f, want)
	}
}

// TestWaitLongPoll: a wait on a running run answers not done after waitMs, and done once
// the run ended; other waits are not held up by a pending one.
func TestWaitLongPoll(t *testing.T) {
	h, dir := blockHarness(t, 4)
	h.run(schemas.AgentParams{Message: "slow", IdempotencyKey: "slow"})
	pending := make(chan wire.AgentFinal, 1)
	go func() {
		f, err := h.waitRaw("slow", waitLimit.Milliseconds())
		if err != nil {
			f.Error = wire.Unavailable(false, "%s", err.Error())
		}
		pending <- f
	}()
	if f := h.wait("slow", 20); f.Done {
		t.Fatalf("wait while running = %+v, want not done", f)
	}
	touch(t, filepath.Join(dir, "slow"))
	f := <-pending
	if !f.Done || !f.OK {
		t.Fatalf("pending wait = %+v, want the final", f)
	}
}

// TestNoBackend: without a backend agent.run is acked and fails; chat.send fails at once.
func TestNoBackend(t *testing.T) {
	h := start(t, Config{})
	h.run(schemas.AgentParams{Message: "hi", IdempotencyKey: "n1"})
	werr, payload := h.finalErr("n1", wire.CodeUnavailable)
	if werr.Message != noBackendMessage || payload.Status != "error" {
		t.Fatalf("final = %+v %+v", werr, payload)
	}
	werr = h.requestErr(subject.ChatSend, schemas.ChatSendParams{SessionKey: "main", Message: "hi", IdempotencyKey: "c1"})
	if werr.Code != wire.CodeUnavailable || werr.Message != noBackendMessage {
		t.Fatalf("chat.send error = %+v", werr)
	}
}
