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
	stop     func() // stops the service and waits for Run
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
	h := &harness{t: t, bus: b, nc: b.Conn("test"), sessions: newFakeSessions()}
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
	svc, err := New(cfg, h.bus.Conn("agent"), slog.New(slog.DiscardHandler))
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
	case <-svc.Ready():
	case err := <-done:
		t.Fatalf("Run returned %v before Ready", err)
	case <-time.After(waitLimit):
		t.Fatal("service not Ready")
	}
	h.svc = svc
}

// waitRaw sends one agent.wait; it is safe to call from any goroutine.
func (h *harness) waitRaw(runID string, waitMs int64) (wire.AgentFinal, error) {
	var f wire.AgentFinal
	reply, err := h.request(subject.AgentWait, wire.AgentWait{RunID: runID, WaitMs: waitMs})
	if err == nil {
		err = json.Unmarshal(reply, &f)
	}
	return f, err
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

// run starts an agent run and checks the ack.
func (h *harness) run(p schemas.AgentParams) {
	h.t.Helper()
	reply, err := h.request(subject.AgentRun, p)
	if err != nil {
		h.t.Fatalf("agent.run %s: %v", p.IdempotencyKey, err)
	}
	var ack schemas.AgentResult
	mustDecode(h.t, reply, &ack)
	if ack.RunID != p.IdempotencyKey || ack.Status != "accepted" {
		h.t.Fatalf("ack = %+v, want {runId:%s status:accepted}", ack, p.IdempotencyKey)
	}
	validatePayload(h.t, schemas.MethodAgent, reply)
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

// wait sends one agent.wait.
func (h *harness) wait(runID string, waitMs int64) wire.AgentFinal {
	h.t.Helper()
	reply, err := h.request(subject.AgentWait, wire.AgentWait{RunID: runID, WaitMs: waitMs})
	if err != nil {
		h.t.Fatalf("agent.wait %s: %v", runID, err)
	}
	var f wire.AgentFinal
	mustDecode(h.t, reply, &f)
	return f
}

// final long-polls agent.wait until the run is done.
func (h *harness) final(runID string) wire.AgentFinal {
	h.t.Helper()
	deadline := time.Now().Add(waitLimit)
	for time.Now().Before(deadline) {
		if f := h.wait(runID, 1000); f.Done {
			if f.OK {
				validatePayload(h.t, schemas.MethodAgent, f.Payload)
			}
			return f
		}
	}
	h.t.Fatalf("run %s not done within %s", runID, waitLimit)
	return wire.AgentFinal{}
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

// chat sends chat.send and checks the immediate answer.
func (h *harness) chat(p schemas.ChatSendParams) {
	h.t.Helper()
	reply, err := h.request(subject.ChatSend, p)
	if err != nil {
		h.t.Fatalf("chat.send %s: %v", p.IdempotencyKey, err)
	}
	var res schemas.ChatSendResult
	mustDecode(h.t, reply, &res)
	if res.RunID != p.IdempotencyKey || res.Status != "started" {
		h.t.Fatalf("chat.send answer = %+v", res)
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
