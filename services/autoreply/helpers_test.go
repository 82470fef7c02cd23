package autoreply

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"

	"github.com/clawdis/clawdis/bus/bustest"
	"github.com/clawdis/clawdis/bus/subject"
	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/schemas"
	"github.com/clawdis/clawdis/services/internal/jsstore"
)

// waitFor bounds every wait of these tests; reaching it fails the test.
const waitFor = 10 * time.Second

// recv returns the next value of ch or fails the test.
func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitFor):
		t.Fatalf("timed out waiting for %s", what)
		var zero T
		return zero
	}
}

// addEndpoint registers a micro service with one endpoint on subj whose handler runs fn in
// its own goroutine (so a held request does not block the next), stopped with t.Cleanup.
func addEndpoint(t *testing.T, nc *nats.Conn, name, subj string, fn wire.HandlerFunc) micro.Service {
	t.Helper()
	svc, err := micro.AddService(nc, micro.Config{Name: name, Version: "0.0.1"})
	if err != nil {
		t.Fatalf("add service %s: %v", name, err)
	}
	t.Cleanup(func() { _ = svc.Stop() })
	h := wire.Handler(name, fn)
	async := micro.HandlerFunc(func(req micro.Request) { go h.Handle(req) })
	if err := svc.AddEndpoint(name, async, micro.WithEndpointSubject(subj)); err != nil {
		t.Fatalf("add endpoint %s: %v", subj, err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return svc
}

// fakeAgent serves AgentRun and AgentStatus like the agent service: runs are remembered by
// idempotency key, a repeated AgentRun is acknowledged without starting a second run (or
// answered with the final of a finished one), and finish publishes a run's final event.
type fakeAgent struct {
	nc                *nats.Conn
	mu                sync.Mutex
	runs              map[string]*fakeRun
	acks              map[string]int           // AgentRun requests per key
	active, maxActive int                      // runs started and not finished
	started           chan schemas.AgentParams // every run started (not repeats)
}

type fakeRun struct {
	params schemas.AgentParams
	final  *wire.RunFinal
}

func newFakeAgent(t *testing.T, b *bustest.Bus) *fakeAgent {
	t.Helper()
	nc := b.Conn("fake-agent")
	a := &fakeAgent{nc: nc, runs: map[string]*fakeRun{}, acks: map[string]int{},
		started: make(chan schemas.AgentParams, 100)}
	addEndpoint(t, nc, "run", subject.AgentRun, func(_ context.Context, data []byte, _ nats.Header) (any, error) {
		var p schemas.AgentParams
		if err := json.Unmarshal(data, &p); err != nil || p.IdempotencyKey == "" || p.Message == "" {
			return nil, wire.Invalid("bad agent params")
		}
		a.mu.Lock()
		a.acks[p.IdempotencyKey]++
		if r := a.runs[p.IdempotencyKey]; r != nil && r.final != nil {
			a.mu.Unlock()
			body, _ := json.Marshal(r.final)
			return wire.Reply{Data: body, Header: nats.Header{wire.HeaderRunFinal: []string{"1"}}}, nil
		}
		if a.runs[p.IdempotencyKey] == nil {
			a.runs[p.IdempotencyKey] = &fakeRun{params: p}
			a.active++
			a.maxActive = max(a.maxActive, a.active)
			a.started <- p
		}
		a.mu.Unlock()
		return schemas.AgentResult{RunID: p.IdempotencyKey, Status: "accepted"}, nil
	})
	addEndpoint(t, nc, "status", subject.AgentStatus, func(_ context.Context, data []byte, _ nats.Header) (any, error) {
		var q wire.RunStatusRequest
		if err := json.Unmarshal(data, &q); err != nil {
			return nil, wire.Invalid("bad status request")
		}
		a.mu.Lock()
		defer a.mu.Unlock()
		switch r := a.runs[q.RunID]; {
		case r == nil:
			return wire.RunStatus{State: wire.RunUnknown}, nil
		case r.final != nil:
			return wire.RunStatus{State: wire.RunDone, Final: r.final}, nil
		default:
			return wire.RunStatus{State: wire.RunRunning}, nil
		}
	})
	return a
}

// finish ends the run of key with fin. A final with a retryable error also forgets the
// run, like the real service does not remember retryable failures.
func (a *fakeAgent) finish(t *testing.T, key string, fin wire.RunFinal) {
	t.Helper()
	a.mu.Lock()
	r := a.runs[key]
	if r == nil {
		a.mu.Unlock()
		t.Fatalf("finish: no run %s", key)
	}
	r.final = &fin
	a.active--
	if fin.Error != nil && fin.Error.Retryable {
		delete(a.runs, key)
	}
	a.mu.Unlock()
	body, _ := json.Marshal(fin)
	msg := &nats.Msg{Subject: subject.AgentRunEvents(key), Data: body,
		Header: nats.Header{wire.HeaderRunEvent: []string{wire.RunEventFinal}}}
	if err := a.nc.PublishMsg(msg); err != nil {
		t.Fatalf("publish final of %s: %v", key, err)
	}
}

// reply ends the run of key successfully with text.
func (a *fakeAgent) reply(t *testing.T, key, text string) {
	t.Helper()
	payload, _ := json.Marshal(schemas.AgentResult{RunID: key, Status: "ok", Text: text})
	a.finish(t, key, wire.RunFinal{OK: true, Payload: payload})
}

func (a *fakeAgent) ackCount(key string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.acks[key]
}

func (a *fakeAgent) runCount() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.runs)
}

// fakeProvider serves a provider's send and typing requests; sends are idempotent by key
// like the provider core's.
type fakeProvider struct {
	mu     sync.Mutex
	sent   map[string]schemas.SendResult // by idempotency key
	sends  chan schemas.SendParams       // every delivery (not repeats)
	typing chan wire.TypingRequest
}

func newFakeProvider(t *testing.T, b *bustest.Bus, id string) *fakeProvider {
	t.Helper()
	p := &fakeProvider{sent: map[string]schemas.SendResult{},
		sends: make(chan schemas.SendParams, 100), typing: make(chan wire.TypingRequest, 1000)}
	nc := b.Conn("fake-" + id)
	sendSubj, _ := subject.ProviderSend(id)
	typingSubj, _ := subject.ProviderTyping(id)
	addEndpoint(t, nc, id+"-send", sendSubj, func(_ context.Context, data []byte, _ nats.Header) (any, error) {
		var sp schemas.SendParams
		if err := json.Unmarshal(data, &sp); err != nil || sp.To == "" || sp.Message == "" || sp.IdempotencyKey == "" {
			return nil, wire.Invalid("bad send params")
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		if r, ok := p.sent[sp.IdempotencyKey]; ok {
			return r, nil
		}
		r := schemas.SendResult{RunID: sp.IdempotencyKey, MessageID: fmt.Sprintf("sent-%d", len(p.sent)+1), Provider: id}
		p.sent[sp.IdempotencyKey] = r
		p.sends <- sp
		return r, nil
	})
	addEndpoint(t, nc, id+"-typing", typingSubj, func(_ context.Context, data []byte, _ nats.Header) (any, error) {
		var tr wire.TypingRequest
		if err := json.Unmarshal(data, &tr); err != nil {
			return nil, wire.Invalid("bad typing request")
		}
		p.typing <- tr
		return map[string]bool{"ok": true}, nil
	})
	return p
}

func (p *fakeProvider) sendCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.sent)
}

func (p *fakeProvider) result(key string) schemas.SendResult {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sent[key]
}

// waitTyping waits for a typing request with the given state.
func (p *fakeProvider) waitTyping(t *testing.T, chat string, on bool) {
	t.Helper()
	for {
		tr := recv(t, p.typing, fmt.Sprintf("typing on=%v", on))
		if tr.ChatID == chat && tr.On == on {
			return
		}
	}
}

// newFakeSessions records SessionsUpdate requests.
func newFakeSessions(t *testing.T, b *bustest.Bus) <-chan wire.SessionUpdate {
	t.Helper()
	ch := make(chan wire.SessionUpdate, 100)
	addEndpoint(t, b.Conn("fake-sessions"), "update", subject.SessionsUpdate, func(_ context.Context, data []byte, _ nats.Header) (any, error) {
		var u wire.SessionUpdate
		if err := json.Unmarshal(data, &u); err != nil {
			return nil, wire.Invalid("bad update")
		}
		ch <- u
		return wire.Session{SessionKey: u.SessionKey, SessionID: "s-1"}, nil
	})
	return ch
}

// logWatch is a slog handler that keeps every record so tests can wait for one.
type logWatch struct {
	st    *logState
	attrs []slog.Attr
}

type logState struct {
	mu      sync.Mutex
	records []slog.Record
	changed chan struct{} // closed and replaced on every record
}

func newLogWatch() *logWatch {
	return &logWatch{st: &logState{changed: make(chan struct{})}}
}

func (w *logWatch) Enabled(context.Context, slog.Level) bool { return true }

func (w *logWatch) Handle(_ context.Context, r slog.Record) error {
	r = r.Clone()
	r.AddAttrs(w.attrs...)
	w.st.mu.Lock()
	defer w.st.mu.Unlock()
	w.st.records = append(w.st.records, r)
	close(w.st.changed)
	w.st.changed = make(chan struct{})
	return nil
}

func (w *logWatch) WithAttrs(as []slog.Attr) slog.Handler {
	return &logWatch{st: w.st, attrs: append(append([]slog.Attr(nil), w.attrs...), as...)}
}

func (w *logWatch) WithGroup(string) slog.Handler { return w }

// wait returns the first record (from the start) whose message contains msg and whose
// level is at least level, or fails the test.
func (w *logWatch) wait(t *testing.T, level slog.Level, msg string) slog.Record {
	t.Helper()
	deadline := time.After(waitFor)
	for {
		w.st.mu.Lock()
		for _, r := range w.st.records {
			if r.Level >= level && strings.Contains(r.Message, msg) {
				w.st.mu.Unlock()
				return r
			}
		}
		changed := w.st.changed
		w.st.mu.Unlock()
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("timed out waiting for log %q", msg)
		}
	}
}

// waitCount waits until n records contain msg.
func (w *logWatch) waitCount(t *testing.T, msg string, n int) {
	t.Helper()
	deadline := time.After(waitFor)
	for {
		w.st.mu.Lock()
		got := 0
		for _, r := range w.st.records {
			if strings.Contains(r.Message, msg) {
				got++
			}
		}
		changed := w.st.changed
		w.st.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("timed out waiting for %d logs %q (have %d)", n, msg, got)
		}
	}
}

// count returns how many records contain msg.
func (w *logWatch) count(msg string) int {
	w.st.mu.Lock()
	defer w.st.mu.Unlock()
	n := 0
	for _, r := range w.st.records {
		if strings.Contains(r.Message, msg) {
			n++
		}
	}
	return n
}

// countAttr returns how many records contain msg and have attribute key with value val.
func (w *logWatch) countAttr(msg, key, val string) int {
	w.st.mu.Lock()
	defer w.st.mu.Unlock()
	n := 0
	for _, r := range w.st.records {
		if !strings.Contains(r.Message, msg) {
			continue
		}
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == key && a.Value.String() == val {
				n++
				return false
			}
			return true
		})
	}
	return n
}

// running is a started service and the way to stop it.
type running struct {
	svc  *Service
	stop func() // cancels Run and waits for it to return nil
}

// startService runs a service on its own connection until stop (or the test's end).
func startService(t *testing.T, b *bustest.Bus, cfg Config, log *logWatch) running {
	t.Helper()
	svc, err := New(cfg, b.Conn("autoreply"), slog.New(log))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	select {
	case <-svc.consuming: // Ready, and the consumer created
	case err := <-done:
		t.Fatalf("Run returned before ready: %v", err)
	case <-time.After(waitFor):
		t.Fatal("service not ready")
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := recv(t, done, "Run to return"); err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return running{svc: svc, stop: stop}
}

// publish stores msg in the inbound stream as its provider does (creating the stream when
// no service did yet) and reports whether the stream took it as a duplicate.
func publish(t *testing.T, nc *nats.Conn, msg wire.InboundMessage) (duplicate bool) {
	t.Helper()
	subj, err := subject.ProviderInbound(msg.Provider)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jsstore.Inbound(t.Context(), nc, jsstore.Config{}); err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := json.Marshal(msg)
	ack, err := js.Publish(t.Context(), subj, data, jetstream.WithMsgID(wire.InboundMsgID(msg.Provider, msg.ChatID, msg.MessageID)))
	if err != nil {
		t.Fatal(err)
	}
	return ack.Duplicate
}

// consumerState is the autoreply consumer's count of messages not yet delivered and of
// delivered ones not acknowledged.
func consumerState(t *testing.T, nc *nats.Conn) (pending, unacked int) {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	c, err := js.Consumer(t.Context(), jsstore.InboundStream, ConsumerName)
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return int(info.NumPending), info.NumAckPending
}

// unfinished is the number of messages whose outcome is not final yet: not delivered, or
// delivered and not acknowledged.
func unfinished(t *testing.T, nc *nats.Conn) int {
	t.Helper()
	pending, unacked := consumerState(t, nc)
	return pending + unacked
}

// Fixed clock and messages of the tests.
var (
	testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	msgTs   = time.Date(2026, 3, 1, 11, 59, 30, 0, time.UTC)
)

func baseConfig(t *testing.T) Config {
	return Config{
		Location:     time.UTC,
		Now:          func() time.Time { return testNow },
		RetryInitial: 5 * time.Millisecond,
		RetryMax:     20 * time.Millisecond,
	}
}

func waDirect(id, from, text string) wire.InboundMessage {
	return wire.InboundMessage{Provider: ProviderWhatsApp, MessageID: id, ChatID: strings.TrimPrefix(from, "+") + "@s.whatsapp.net",
		ChatType: chatDirect, From: from, Self: "+15550001111", Text: text, Ts: msgTs.UnixMilli()}
}

func ptr[T any](v T) *T { return &v }
