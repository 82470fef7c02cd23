package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/clawdis/clawdis/bus/bustest"
	"github.com/clawdis/clawdis/bus/subject"
	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/schemas"
)

// waitLimit bounds every wait in these tests; it only decides when a test has failed.
const waitLimit = 10 * time.Second

var loadSchemas = sync.OnceValues(schemas.Load)

// harness is a running agent service on an in-process bus with fake sessions, presence
// and provider responders registered on the real subjects.
type harness struct {
	t        testing.TB
	bus      *bustest.Bus
	nc       *nats.Conn // the test's own connection
	svc      *Service
	sessions *fakeSessions
	events   *collector
	runs     *wire.Runs // follows the runs' final events for h.final
	stop     func()     // stops the service and waits for Run

	mu      sync.Mutex
	pending map[string]pendingRun // by run id: started by h.run, final not yet taken
}

// start runs a service with cfg and waits until it is Ready; every event it publishes is
// collected and checked against the schema.
func start(t testing.TB, cfg Config) *harness {
	t.Helper()
	return startWith(t, cfg, true)
}

// startWith is start, collecting events only when collect is set.
func startWith(t testing.TB, cfg Config, collect bool) *harness {
	t.Helper()
	b := bustest.New(t)
	h := &harness{t: t, bus: b, nc: b.Conn("test"), sessions: newFakeSessions(), pending: map[string]pendingRun{}}
	runs, err := wire.FollowRuns(h.nc, wire.RunsConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = runs.Close() })
	h.runs = runs
	if collect {
		h.events = newCollector(t, h.nc)
	}
	h.sessions.serve(t, b.Conn("fake-sessions"))
	h.startService(cfg)
	return h
}

// startService starts (another) service on the harness's bus.
func (h *harness) startService(cfg Config) {
	t := h.t
	t.Helper()
	svc, err := New(cfg, h.bus.Conn("agent"), testLogger())
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	var once sync.Once
	h.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run returned %v", err)
				}
			case <-time.After(waitLimit):
				t.Error("Run did not return after cancel")
			}
		})
	}
	t.Cleanup(h.stop)
	select {
	case <-svc.setUp.Done(): // Ready, and the records and the stream open
	case err := <-done:
		t.Fatalf("Run returned %v before Ready", err)
	case <-time.After(waitLimit):
		t.Fatal("service not Ready")
	}
	h.svc = svc
}

// request sends v (a value to encode) and returns the raw reply or the error. It is safe
// to call from any goroutine.
func (h *harness) request(subj string, v any) ([]byte, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	return wire.Request(ctx, h.nc, subj, data, nil)
}

// submit sends agent.run the way the edge does: it watches the run first, then asks. It
// returns the waiter after an ack, or the final the service answered at once for a key
// whose run had finished (then the waiter is stopped and nil).
func (h *harness) submit(p schemas.AgentParams) (*wire.RunWaiter, *wire.RunFinal, error) {
	w := h.runs.Watch(p.IdempotencyKey)
	data, err := json.Marshal(p)
	if err != nil {
		w.Stop()
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	reply, err := wire.RequestMsg(ctx, h.nc, &nats.Msg{Subject: subject.AgentRun, Data: data})
	if err != nil {
		w.Stop()
		return nil, nil, err
	}
	if reply.Header.Get(wire.HeaderRunFinal) != "" {
		w.Stop()
		var f wire.RunFinal
		if err := json.Unmarshal(reply.Data, &f); err != nil {
			return nil, nil, err
		}
		return nil, &f, nil
	}
	var ack schemas.AgentResult
	if err := json.Unmarshal(reply.Data, &ack); err != nil {
		w.Stop()
		return nil, nil, err
	}
	if ack.RunID != p.IdempotencyKey || ack.Status != "accepted" {
		w.Stop()
		return nil, nil, fmt.Errorf("ack = %+v, want {runId:%s status:accepted}", ack, p.IdempotencyKey)
	}
	validatePayload(h.t, schemas.MethodAgent, reply.Data)
	return w, nil, nil
}

// run starts an agent run and checks the ack (or takes the final of a finished run of the
// same key); h.final then returns its final.
func (h *harness) run(p schemas.AgentParams) {
	h.t.Helper()
	w, f, err := h.submit(p)
	if err != nil {
		h.t.Fatalf("agent.run %s: %v", p.IdempotencyKey, err)
	}
	h.mu.Lock()
	h.pending[p.IdempotencyKey] = pendingRun{w: w, final: f}
	h.mu.Unlock()
}

// status asks agent.status about runID.
func (h *harness) status(runID string) wire.RunStatus {
	h.t.Helper()
	reply, err := h.request(subject.AgentStatus, wire.RunStatusRequest{RunID: runID})
	if err != nil {
		h.t.Fatalf("agent.status %s: %v", runID, err)
	}
	var st wire.RunStatus
	mustDecode(h.t, reply, &st)
	return st
}

// requestErr sends v and returns the *wire.Error it must fail with.
func (h *harness) requestErr(subj string, v any) *wire.Error {
	h.t.Helper()
	reply, err := h.request(subj, v)
	if err == nil {
		h.t.Fatalf("%s succeeded with %s, want an error", subj, reply)
	}
	var werr *wire.Error
	if !errors.As(err, &werr) {
		h.t.Fatalf("%s: %v is not a *wire.Error", subj, err)
	}
	return werr
}

// pendingRun is a run started by h.run: its waiter, or its final when the service
// answered with it at once.
type pendingRun struct {
	w     *wire.RunWaiter
	final *wire.RunFinal
}

// final waits for the final event of the run last started by h.run with runID.
func (h *harness) final(runID string) wire.RunFinal {
	h.t.Helper()
	h.mu.Lock()
	p, ok := h.pending[runID]
	delete(h.pending, runID)
	h.mu.Unlock()
	if !ok {
		h.t.Fatalf("run %s was not started by h.run", runID)
	}
	f := p.final
	if f == nil {
		defer p.w.Stop()
		ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
		defer cancel()
		got, err := p.w.Wait(ctx)
		if err != nil {
			h.t.Fatalf("run %s: no final within %s: %v", runID, waitLimit, err)
		}
		f = &got
	}
	if f.OK {
		validatePayload(h.t, schemas.MethodAgent, f.Payload)
	}
	return *f
}

// finalOK waits for the final and checks it is ok; it returns its payload.
func (h *harness) finalOK(runID string) schemas.AgentResult {
	h.t.Helper()
	f := h.final(runID)
	if !f.OK || f.Error != nil {
		h.t.Fatalf("final of %s = ok:%v error:%v payload:%s, want ok", runID, f.OK, f.Error, f.Payload)
	}
	var r schemas.AgentResult
	mustDecode(h.t, f.Payload, &r)
	if r.RunID != runID || r.Status != "ok" {
		h.t.Fatalf("final payload = %+v", r)
	}
	return r
}

// finalErr waits for the final and checks it failed with code; it returns the error and
// the payload.
func (h *harness) finalErr(runID, code string) (*wire.Error, schemas.AgentResult) {
	h.t.Helper()
	f := h.final(runID)
	if f.OK || f.Error == nil || f.Error.Code != code {
		h.t.Fatalf("final of %s = ok:%v error:%+v, want error %s", runID, f.OK, f.Error, code)
	}
	var r schemas.AgentResult
	mustDecode(h.t, f.Payload, &r)
	if r.RunID != runID {
		h.t.Fatalf("final payload = %+v", r)
	}
	validatePayload(h.t, schemas.MethodAgent, f.Payload)
	return f.Error, r
}

// chat sends chat.send and checks the immediate answer: started.
func (h *harness) chat(p schemas.ChatSendParams) {
	h.t.Helper()
	h.chatAnswer(p, "started")
}

// chatAnswer sends chat.send and checks the immediate answer's status.
func (h *harness) chatAnswer(p schemas.ChatSendParams, status string) {
	h.t.Helper()
	reply, err := h.request(subject.ChatSend, p)
	if err != nil {
		h.t.Fatalf("chat.send %s: %v", p.IdempotencyKey, err)
	}
	var res schemas.ChatSendResult
	mustDecode(h.t, reply, &res)
	if res.RunID != p.IdempotencyKey || res.Status != status {
		h.t.Fatalf("chat.send answer = %+v, want status %s", res, status)
	}
	validatePayload(h.t, schemas.MethodChatSend, reply)
}

func mustDecode(t testing.TB, data []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("decode %s: %v", data, err)
	}
}

func validatePayload(t testing.TB, method string, data []byte) {
	t.Helper()
	set, err := loadSchemas()
	if err != nil {
		t.Fatal(err)
	}
	v, err := schemas.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	if err := set.Payload(method, v); err != nil {
		t.Errorf("%s payload %s: %v", method, data, err)
	}
}

// script returns the absolute path of a testdata script.
func script(t testing.TB, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// touch creates a gate file a script waits for.
func touch(t testing.TB, path string) {
	t.Helper()
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
}

// serve registers handlers on their subjects as a micro service named name.
func serve(t testing.TB, nc *nats.Conn, name string, handlers map[string]wire.HandlerFunc) {
	t.Helper()
	svc, err := micro.AddService(nc, micro.Config{Name: name, Version: "0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop() })
	i := 0
	for subj, fn := range handlers {
		i++
		if err := svc.AddEndpoint(fmt.Sprintf("e%d", i), wire.Handler(name, fn), micro.WithEndpointSubject(subj)); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
}

// servePresence answers PresenceDrain with events once, then with none.
func servePresence(t testing.TB, nc *nats.Conn, events ...string) {
	var mu sync.Mutex
	serve(t, nc, "fake-presence", map[string]wire.HandlerFunc{
		subject.PresenceDrain: func(context.Context, []byte, nats.Header) (any, error) {
			mu.Lock()
			defer mu.Unlock()
			q := wire.SystemEventQueue{Events: append([]string{}, events...)}
			events = nil
			return q, nil
		},
	})
}

// fakeProvider records SendParams on ProviderSend(id) and answers with fail or success.
type fakeProvider struct {
	sent chan schemas.SendParams
	fail *wire.Error
}

func serveProvider(t testing.TB, nc *nats.Conn, id string, fail *wire.Error) *fakeProvider {
	subj, err := subject.ProviderSend(id)
	if err != nil {
		t.Fatal(err)
	}
	p := &fakeProvider{sent: make(chan schemas.SendParams, 8), fail: fail}
	serve(t, nc, "fake-"+id, map[string]wire.HandlerFunc{
		subj: func(_ context.Context, data []byte, _ nats.Header) (any, error) {
			var sp schemas.SendParams
			if err := json.Unmarshal(data, &sp); err != nil {
				return nil, wire.Invalid("bad send params: %s", err.Error())
			}
			p.sent <- sp
			if p.fail != nil {
				return nil, p.fail
			}
			return schemas.SendResult{RunID: sp.IdempotencyKey, MessageID: "m1", Provider: id, ChatID: sp.To}, nil
		},
	})
	return p
}

func testLogger() *slog.Logger {
	if os.Getenv("AGENT_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}
