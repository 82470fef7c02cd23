package agent

import (
	"context"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/clawdis/clawdis/bus/subject"
	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/schemas"
	"github.com/clawdis/clawdis/services/internal/jsstore"
)

// jobCount counts the job events of runID in state.
func jobCount(evs []event, runID, state string) int {
	n := 0
	for _, e := range agentOf(evs, runID) {
		if jobState(e) == state {
			n++
		}
	}
	return n
}

// statusAsked counts the agent.status requests on the bus without answering them: while
// no agent service runs, a waiter's question goes unanswered.
func statusAsked(t *testing.T, nc *nats.Conn) *atomic.Int64 {
	var n atomic.Int64
	sub, err := nc.Subscribe(subject.AgentStatus, func(*nats.Msg) { n.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return &n
}

// TestRunSurvivesAStop: a run accepted and started, then its agent service stopped (its
// context cancelled) mid-run, is not answered; a waiter keeps waiting while no agent
// service answers for longer than the quiet limit; a new instance on the same bus runs it
// again from the start, and the waiter gets its final. The transcript has the user message
// once and the reply once.
func TestRunSurvivesAStop(t *testing.T) {
	const hb = 20 * time.Millisecond
	dir := t.TempDir()
	cfg := commandConfig("sh", script(t, "block.sh"), dir, "{{Body}}")
	cfg.Heartbeat = hb
	h := start(t, cfg)
	runs, err := wire.FollowRuns(h.bus.Conn("waiter"), wire.RunsConfig{Heartbeat: hb})
	if err != nil {
		t.Fatal(err)
	}
	defer runs.Close()
	w := runs.Watch("again")
	defer w.Stop()
	h.run(schemas.AgentParams{Message: "again", IdempotencyKey: "again"})
	got := make(chan wire.RunFinal, 1)
	go func() {
		f, err := w.Wait(t.Context())
		if err != nil {
			f = wire.RunFinal{Error: wire.Unavailable(false, "wait: %s", err.Error())}
		}
		got <- f
	}()
	h.events.waitFor("the backend's first output", func(evs []event) bool {
		a := agentOf(evs, "again")
		return slices.ContainsFunc(a, func(e schemas.AgentEventPayload) bool { return assistantText(e) != "" })
	})

	h.stop()
	asked := statusAsked(t, h.nc)
	for asked.Load() < 2*wire.RunQuietBeats+2 { // unanswered well past the quiet limit
		select {
		case f := <-got:
			t.Fatalf("the waiter gave up while the run is stored: %+v", f)
		case <-time.After(hb):
		}
	}
	if evs := h.events.snapshot(); jobCount(evs, "again", "error") != 0 || jobCount(evs, "again", "done") != 0 {
		t.Fatalf("the stopped run ended: %s", describe(evs))
	}

	h.startService(cfg)
	h.events.waitFor("started again", func(evs []event) bool { return jobCount(evs, "again", "started") == 2 })
	touch(t, filepath.Join(dir, "again"))
	f := <-got
	var res schemas.AgentResult
	if err := json.Unmarshal(f.Payload, &res); err != nil || !f.OK || res.Text != "start again\nend again" {
		t.Fatalf("final = %+v %+v, want the rerun's reply", f, res)
	}
	if log := runLog(t, dir); !slices.Equal(log, []string{"again", "again"}) {
		t.Fatalf("backend runs = %q, want the run twice (from the start after the stop)", log)
	}
	_, transcript := h.sessions.get("main")
	var roles []string
	for _, m := range transcript {
		roles = append(roles, m.Role+":"+m.Content[0].Text)
	}
	if want := []string{"user:again", "assistant:start again\nend again"}; !slices.Equal(roles, want) {
		t.Fatalf("transcript = %q, want %q", roles, want)
	}
	if st := h.status("again"); st.State != wire.RunDone {
		t.Fatalf("status after the final = %+v", st)
	}
}

// TestRestartTakesOverACrashedServicesRuns: the runs an agent service held when its bus
// connection died (as in a crash) run again at once on the service started next, not after
// the consumer's ack wait (an hour here). The new service answers pings from its start, so
// it must ask whether another one runs before that.
func TestRestartTakesOverACrashedServicesRuns(t *testing.T) {
	dir := t.TempDir()
	cfg := commandConfig("sh", script(t, "block.sh"), dir, "{{Body}}")
	cfg.RunAckWait = time.Hour
	h := start(t, cfg)
	h.run(schemas.AgentParams{Message: "held", IdempotencyKey: "held"})
	h.events.waitFor("held started", started("held"))
	crashed, stopCrashed := h.svc, h.stop
	crashed.nc.Close() // its subscriptions and its pull requests are gone; its delivery stays pending
	h.startService(cfg)
	h.events.waitFor("held started again", func(evs []event) bool { return jobCount(evs, "held", "started") == 2 })
	touch(t, filepath.Join(dir, "held"))
	if r := h.finalOK("held"); r.Text != "start held\nend held" {
		t.Fatalf("final = %+v", r)
	}
	stopCrashed()
}

// TestStoredRunPastDeadline: a run stored while no agent service ran, whose deadline has
// passed when one starts, ends at once with the timeout final and never runs.
func TestStoredRunPastDeadline(t *testing.T) {
	dir := t.TempDir()
	cfg := commandConfig("sh", script(t, "block.sh"), dir, "{{Body}}")
	h := start(t, cfg)
	h.stop()
	js, err := jetstream.New(h.nc)
	if err != nil {
		t.Fatal(err)
	}
	params, _ := json.Marshal(schemas.AgentParams{Message: "late", IdempotencyKey: "late"})
	now := time.Now()
	body, _ := json.Marshal(acceptedRun{Method: methodAgent, Params: params,
		AcceptedAt: now.Add(-2 * time.Second).UnixMilli(), Deadline: now.Add(-time.Second).UnixMilli()})
	ctx, cancel := context.WithTimeout(t.Context(), waitLimit)
	defer cancel()
	if _, err := js.Publish(ctx, subject.RunsAccepted(agentKeyPrefix+"late"), body, jetstream.WithMsgID("agent:late")); err != nil {
		t.Fatal(err)
	}
	w := h.runs.Watch("late")
	defer w.Stop()
	h.startService(cfg)
	f, err := w.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if f.OK || f.Error == nil || f.Error.Code != wire.CodeAgentTimeout {
		t.Fatalf("final = %+v, want AGENT_TIMEOUT", f)
	}
	if log, _ := filepath.Glob(filepath.Join(dir, "log")); len(log) != 0 {
		t.Fatalf("the late run ran: %q", runLog(t, dir))
	}
	// A repeat gets the remembered final (once the stored run is acknowledged) and runs
	// nothing.
	if _, rf, err := h.submit(schemas.AgentParams{Message: "late", IdempotencyKey: "late"}); err != nil || rf == nil || rf.Error.Code != wire.CodeAgentTimeout {
		t.Fatalf("repeat = %+v, %v; want the remembered timeout final", rf, err)
	}
	info, err := js.Stream(ctx, jsstore.RunsStream)
	if err != nil {
		t.Fatal(err)
	}
	if n := info.CachedInfo().State.Msgs; n != 0 {
		t.Fatalf("%d runs still stored after the timeout final", n)
	}
}

// startWithJetStream starts a service running block.sh in the returned dir, and returns a
// JetStream client of its bus.
func startWithJetStream(t *testing.T) (*harness, string, jetstream.JetStream) {
	t.Helper()
	dir := t.TempDir()
	h := start(t, commandConfig("sh", script(t, "block.sh"), dir, "{{Body}}"))
	js, err := jetstream.New(h.nc)
	if err != nil {
		t.Fatal(err)
	}
	return h, dir, js
}

// TestAckOnlyAfterStore: while the stream of accepted runs refuses to store (it is full),
// agent and chat.send fail UNAVAILABLE retryable and nothing runs; once it has room a retry
// runs.
func TestAckOnlyAfterStore(t *testing.T) {
	h, dir, js := startWithJetStream(t)
	ctx, cancel := context.WithTimeout(t.Context(), waitLimit)
	defer cancel()
	full := jsstore.RunsConfig(jsstore.Config{})
	full.MaxBytes = 1
	if _, err := js.UpdateStream(ctx, full); err != nil {
		t.Fatal(err)
	}
	for _, req := range []struct {
		subj string
		v    any
	}{
		{subject.AgentRun, schemas.AgentParams{Message: "lost", IdempotencyKey: "lost"}},
		{subject.ChatSend, schemas.ChatSendParams{SessionKey: "main", Message: "lost", IdempotencyKey: "lost"}},
	} {
		werr := h.requestErr(req.subj, req.v)
		if werr.Code != wire.CodeUnavailable || !werr.Retryable || !strings.Contains(werr.Message, "could not be stored") {
			t.Fatalf("%s = %+v, want UNAVAILABLE retryable: not stored", req.subj, werr)
		}
	}
	if evs := h.events.snapshot(); len(evs) != 0 {
		t.Fatalf("a run that was not stored published events: %s", describe(evs))
	}
	if log, _ := filepath.Glob(filepath.Join(dir, "log")); len(log) != 0 {
		t.Fatalf("a run that was not stored ran: %q", runLog(t, dir))
	}
	if _, err := js.UpdateStream(ctx, jsstore.RunsConfig(jsstore.Config{})); err != nil {
		t.Fatal(err)
	}
	touch(t, filepath.Join(dir, "lost"))
	h.run(schemas.AgentParams{Message: "lost", IdempotencyKey: "lost"})
	if r := h.finalOK("lost"); r.Text != "start lost\nend lost" {
		t.Fatalf("retry = %+v", r)
	}
}

// TestRerunGoesOnWithItsStoredReply: a run that stored its reply before it was interrupted
// (its final not stored yet) runs again without asking the backend: its final is that reply,
// the transcript keeps one user message and one reply, and the delivery sends that reply.
func TestRerunGoesOnWithItsStoredReply(t *testing.T) {
	dir := t.TempDir()
	h := start(t, commandConfig("sh", script(t, "block.sh"), dir, "{{Body}}"))
	wa := serveProvider(t, h.bus.Conn("whatsapp"), "whatsapp", nil)
	h.sessions.setRun(wire.Session{SessionKey: "main"}, agentKeyPrefix+"twice",
		schemas.ChatMessage{Role: "user", Content: []schemas.ChatContent{{Type: "text", Text: "twice"}}, Timestamp: 1},
		schemas.ChatMessage{Role: "assistant", Content: []schemas.ChatContent{{Type: "text", Text: "the first reply"}}, Timestamp: 2})
	h.run(schemas.AgentParams{Message: "twice", IdempotencyKey: "twice", Deliver: true, Channel: "whatsapp", To: "+4366555"})
	if r := h.finalOK("twice"); r.Text != "the first reply" {
		t.Fatalf("final = %+v, want the stored reply", r)
	}
	if sp := <-wa.sent; sp.Message != "the first reply" || sp.IdempotencyKey != "twice:deliver" {
		t.Fatalf("delivered %+v, want the stored reply under the run's key", sp)
	}
	if log, _ := filepath.Glob(filepath.Join(dir, "log")); len(log) != 0 {
		t.Fatalf("the backend ran again: %q", runLog(t, dir))
	}
	if _, tr := h.sessions.get("main"); len(tr) != 2 {
		t.Fatalf("transcript = %+v, want the user message and the reply once", tr)
	}
}

// TestSecondInstanceKnowsStoredRuns: a second agent service started while the first runs a
// run does not take it over (the first answers the ping) and answers agent.status "running"
// for it, with its deadline, from the stream.
func TestSecondInstanceKnowsStoredRuns(t *testing.T) {
	dir := t.TempDir()
	cfg := commandConfig("sh", script(t, "block.sh"), dir, "{{Body}}")
	h := start(t, cfg)
	h.run(schemas.AgentParams{Message: "held", IdempotencyKey: "held"})
	h.events.waitFor("held started", started("held"))
	second, err := New(cfg, h.bus.Conn("agent-2"), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- second.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v", err)
		}
	}()
	select {
	case <-second.setUp.Done(): // Ready, and the records and the stream open
	case err := <-done:
		t.Fatalf("Run = %v before Ready", err)
	case <-time.After(waitLimit):
		t.Fatal("the second instance is not ready")
	}
	out, err := second.handleStatus(ctx, []byte(`{"runId":"held"}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	st := out.(wire.RunStatus)
	if st.State != wire.RunRunning || time.Until(time.UnixMilli(st.Deadline)) < time.Minute {
		t.Fatalf("status from the second instance = %+v, want running with the run's deadline", st)
	}
	touch(t, filepath.Join(dir, "held"))
	if r := h.finalOK("held"); r.Text != "start held\nend held" {
		t.Fatalf("final = %+v", r)
	}
	if log := runLog(t, dir); !slices.Equal(log, []string{"held"}) {
		t.Fatalf("runs = %q, want one", log)
	}
}

// TestConsumerDeletedIsCreatedAgain: when the service's consumer is deleted under it, the
// service creates it again and runs what is stored.
func TestConsumerDeletedIsCreatedAgain(t *testing.T) {
	h, dir, js := startWithJetStream(t)
	ctx, cancel := context.WithTimeout(t.Context(), waitLimit)
	defer cancel()
	if err := js.DeleteConsumer(ctx, jsstore.RunsStream, ConsumerName); err != nil {
		t.Fatal(err)
	}
	touch(t, filepath.Join(dir, "again"))
	h.run(schemas.AgentParams{Message: "again", IdempotencyKey: "again"})
	if r := h.finalOK("again"); r.Text != "start again\nend again" {
		t.Fatalf("final = %+v", r)
	}
}

// TestLongRunIsNotDeliveredAgain: a run that takes many ack waits is kept by its progress
// reports (keepAlive): the stream never delivers it a second time, and it runs once.
// (Were it delivered again, the service would still not run it twice: holds.)
func TestLongRunIsNotDeliveredAgain(t *testing.T) {
	const ackWait = time.Second // the keep-alive reports every third of it; a loaded CI machine can stall a goroutine for 100s of ms
	dir := t.TempDir()
	cfg := commandConfig("sh", script(t, "block.sh"), dir, "{{Body}}")
	cfg.RunAckWait = ackWait
	h := start(t, cfg)
	h.run(schemas.AgentParams{Message: "long", IdempotencyKey: "long"})
	h.events.waitFor("the run's first output", func(evs []event) bool {
		return slices.ContainsFunc(agentOf(evs, "long"), func(e schemas.AgentEventPayload) bool { return assistantText(e) != "" })
	})
	// Time must pass here: five ack waits in which an unreported run would be delivered again.
	<-time.After(5 * ackWait)
	js, err := jetstream.New(h.nc)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := js.Consumer(t.Context(), jsstore.RunsStream, ConsumerName)
	if err != nil {
		t.Fatal(err)
	}
	info, err := cons.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if info.NumRedelivered != 0 || info.NumAckPending != 1 {
		t.Fatalf("after five ack waits: %d redelivered, %d pending; want the run held once", info.NumRedelivered, info.NumAckPending)
	}
	touch(t, filepath.Join(dir, "long"))
	if res := h.finalOK("long"); res.Text != "start long\nend long" {
		t.Fatalf("final = %+v", res)
	}
	if log := runLog(t, dir); !slices.Equal(log, []string{"long"}) {
		t.Fatalf("backend runs = %q, want one", log)
	}
	if n := jobCount(h.events.snapshot(), "long", "started"); n != 1 {
		t.Fatalf("the run started %d times, want once", n)
	}
}

// TestSystemEventsRequeuedWhenStoppedMidRun: a run the stopping service interrupts goes
// back to the stream and runs again from the start, so the system events its attempt
// drained are queued again for that next attempt rather than lost.
func TestSystemEventsRequeuedWhenStoppedMidRun(t *testing.T) {
	dir := t.TempDir()
	h := start(t, commandConfig("sh", script(t, "block.sh"), dir, "{{Body}}"))
	q := serveQueue(t, h.bus.Conn("presence"), "Node: mac · reason periodic")
	h.run(schemas.AgentParams{Message: "stopped", IdempotencyKey: "stopped"})
	h.events.waitFor("the run's first output", func(evs []event) bool {
		return slices.ContainsFunc(agentOf(evs, "stopped"), func(e schemas.AgentEventPayload) bool { return assistantText(e) != "" })
	})
	if got := q.queued(); len(got) != 0 {
		t.Fatalf("queue while the run runs = %q, want it drained", got)
	}
	h.stop()
	if got := q.queued(); !slices.Equal(got, []string{"Node: mac · reason periodic"}) {
		t.Fatalf("queue after the stop = %q, want the drained event back for the rerun", got)
	}
}
