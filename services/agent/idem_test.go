package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/clawdis/clawdis/bus/subject"
	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/schemas"
	"github.com/clawdis/clawdis/services/internal/idem"
	"github.com/clawdis/clawdis/services/internal/jsstore"
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
// waiters get the same final event.
func TestConcurrentSameKeyRunsOnce(t *testing.T) {
	h, dir := blockHarness(t, 4)
	p := schemas.AgentParams{Message: "k", IdempotencyKey: "k"}
	var wg sync.WaitGroup
	finals := make([]wire.RunFinal, 2)
	errs := make([]error, 2)
	for i := range 2 {
		wg.Go(func() {
			w, f, err := h.submit(p)
			if err != nil || f != nil {
				errs[i] = fmt.Errorf("submit: %v, immediate final %v", err, f)
				return
			}
			defer w.Stop()
			ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
			defer cancel()
			finals[i], errs[i] = w.Wait(ctx)
		})
	}
	h.events.waitFor("k started", started("k"))
	touch(t, filepath.Join(dir, "k"))
	wg.Wait()
	for i, f := range finals {
		if errs[i] != nil {
			t.Fatalf("caller %d: %v", i, errs[i])
		}
		if !f.OK || !bytes.Equal(f.Payload, finals[0].Payload) {
			t.Fatalf("final %d = %+v %s, want ok and the same as the first", i, f, f.Payload)
		}
	}
	sentinel(t, h, dir, "main", "after")
	if got := runLog(t, dir); !slices.Equal(got, []string{"k", "after"}) {
		t.Fatalf("runs = %v, want k once", got)
	}
}

// TestRememberedAcrossRestart: a repeat after completion is answered with the remembered
// final at once (wire.HeaderRunFinal, no ack) and does not run again, also from a new
// service on the same bus (the records are in its bucket); agent.status reports it done,
// and a run no one knows unknown.
func TestRememberedAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	cfg := commandConfig("sh", script(t, "block.sh"), dir, "{{Body}}")
	h := start(t, cfg)
	touch(t, filepath.Join(dir, "k"))
	h.run(schemas.AgentParams{Message: "k", IdempotencyKey: "k"})
	first := h.final("k")
	if !first.OK {
		t.Fatalf("first final = %+v", first)
	}
	repeat := func(when string) {
		t.Helper()
		w, f, err := h.submit(schemas.AgentParams{Message: "k", IdempotencyKey: "k"})
		if err != nil || w != nil || f == nil {
			t.Fatalf("repeat %s: waiter %v final %v err %v, want the final at once", when, w, f, err)
		}
		if !f.OK || !bytes.Equal(f.Payload, first.Payload) {
			t.Fatalf("repeat %s: final = %+v, want the remembered one", when, f)
		}
	}
	repeat("before the restart")
	sentinel(t, h, dir, "main", "s1")

	h.stop()
	h.startService(cfg)
	if st := h.status("k"); st.State != wire.RunDone || st.Final == nil || !bytes.Equal(st.Final.Payload, first.Payload) {
		t.Fatalf("status after restart = %+v, want done with the remembered final", st)
	}
	repeat("after the restart")
	sentinel(t, h, dir, "main", "s2")
	if got := runLog(t, dir); !slices.Equal(got, []string{"k", "s1", "s2"}) {
		t.Fatalf("runs = %v, want k once", got)
	}
	if st := h.status("nope"); st.State != wire.RunUnknown || st.Final != nil {
		t.Fatalf("status of an unknown run = %+v, want unknown", st)
	}
}

// TestStatusAndHeartbeat: a queued or running run is "running" to agent.status and
// publishes heartbeats on its subject until its final, which is its last event.
func TestStatusAndHeartbeat(t *testing.T) {
	dir := t.TempDir()
	cfg := commandConfig("sh", script(t, "block.sh"), dir, "{{Body}}")
	cfg.Heartbeat = 5 * time.Millisecond
	h := start(t, cfg)
	beats := make(chan string, 64)
	sub, err := h.nc.Subscribe(subject.AgentRunEvents("slow"), func(m *nats.Msg) {
		select {
		case beats <- m.Header.Get(wire.HeaderRunEvent):
		default:
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := h.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	h.run(schemas.AgentParams{Message: "slow", IdempotencyKey: "slow"})
	for n := 0; n < 2; {
		select {
		case k := <-beats:
			if k == wire.RunEventHeartbeat {
				n++
			}
		case <-time.After(waitLimit):
			t.Fatal("no heartbeats from a running run")
		}
	}
	if st := h.status("slow"); st.State != wire.RunRunning {
		t.Fatalf("status while running = %+v", st)
	}
	touch(t, filepath.Join(dir, "slow"))
	if f := h.final("slow"); !f.OK {
		t.Fatalf("final = %+v", f)
	}
	for {
		select {
		case k := <-beats:
			if k == wire.RunEventFinal {
				if st := h.status("slow"); st.State != wire.RunDone || st.Final == nil || !st.Final.OK {
					t.Fatalf("status after the final = %+v", st)
				}
				return
			}
		case <-time.After(waitLimit):
			t.Fatal("the final event did not arrive on the run's subject")
		}
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

// TestLegacyRecordsMigrated: the records file of the earlier version is read into the
// bucket when the service starts and renamed *.migrated: a repeat of a run it remembers is
// answered with that final and runs nothing.
func TestLegacyRecordsMigrated(t *testing.T) {
	dir := t.TempDir()
	cfg := commandConfig("sh", script(t, "block.sh"), dir, "{{Body}}")
	cfg.LegacyDedupePath = filepath.Join(t.TempDir(), "dedupe", "agent.json")
	remembered := okResult("old", "from before")
	remembered.At = time.Now().UnixMilli()
	b, _ := json.Marshal(map[string]idem.Result{agentKeyPrefix + "old": remembered})
	if err := os.MkdirAll(filepath.Dir(cfg.LegacyDedupePath), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg.LegacyDedupePath, b, 0o600); err != nil {
		t.Fatal(err)
	}
	h := start(t, cfg)
	w, f, err := h.submit(schemas.AgentParams{Message: "old", IdempotencyKey: "old"})
	if err != nil || w != nil || f == nil || !bytes.Equal(f.Payload, remembered.Payload) {
		t.Fatalf("repeat of a migrated run: waiter %v final %v err %v", w, f, err)
	}
	if _, err := os.Stat(cfg.LegacyDedupePath + ".migrated"); err != nil {
		t.Fatalf("records file not renamed: %v", err)
	}
	sentinel(t, h, dir, "main", "after")
	if got := runLog(t, dir); !slices.Equal(got, []string{"after"}) {
		t.Fatalf("runs = %v, want the migrated run not run again", got)
	}
}

// TestRecordsUnavailable: while the idempotency records cannot be read, agent.run and
// chat.send fail UNAVAILABLE retryable and nothing runs; once they are back a retry runs.
func TestRecordsUnavailable(t *testing.T) {
	dir := t.TempDir()
	cfg := commandConfig("sh", script(t, "block.sh"), dir, "{{Body}}")
	h := start(t, cfg)
	js, err := jetstream.New(h.nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := js.DeleteKeyValue(t.Context(), jsstore.IdemBucket); err != nil {
		t.Fatal(err)
	}
	p := schemas.AgentParams{Message: "k", IdempotencyKey: "k"}
	for subj, params := range map[string]any{
		subject.AgentRun: p,
		subject.ChatSend: schemas.ChatSendParams{SessionKey: "main", Message: "k", IdempotencyKey: "k"},
	} {
		if werr := h.requestErr(subj, params); werr.Code != wire.CodeUnavailable || !werr.Retryable {
			t.Fatalf("%s without records = %+v, want UNAVAILABLE retryable", subj, werr)
		}
	}
	if _, err := jsstore.Idem(t.Context(), h.nc, jsstore.Config{}); err != nil {
		t.Fatal(err)
	}
	touch(t, filepath.Join(dir, "k"))
	h.run(p)
	h.finalOK("k")
	if got := runLog(t, dir); !slices.Equal(got, []string{"k"}) {
		t.Fatalf("runs = %v, want k once, after the records came back", got)
	}
}
