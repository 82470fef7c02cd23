package edge

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/clawdis/clawdis/edge/internal/outq"
	"github.com/clawdis/clawdis/schemas"
)

// admitAll is a backend that admits every hello the connection machinery lets through.
type admitAll struct{}

func (admitAll) Admit(*Conn, *schemas.Hello) *Refusal { return nil }
func (admitAll) HelloOK(*Conn) []byte                 { return []byte(`{"type":"hello-ok"}`) }
func (admitAll) Joined(*Conn)                         {}
func (admitAll) Left(*Conn)                           {}
func (admitAll) Serve(*Call)                          {}

const fuzzToken = "s3cret-token-0123"

// handshakeOutcome runs the pre-auth path of one connection on a first frame, as the reader
// does after the frame limit: what it queued for the client and how it closes.
func handshakeOutcome(set *schemas.Set, data []byte) (ok bool, frames [][]byte, cr *outq.CloseReq) {
	cfg := &ConnConfig{
		Schemas: set, Token: fuzzToken, MaxPayload: 1 << 20, MaxBufferedBytes: 1 << 20, MaxInFlight: 32,
		HandshakeTimeout: time.Second, WriteTimeout: time.Second,
		Throttle: NewAuthThrottle(AuthRateLimit{MaxFailures: 3, Window: time.Minute, Lockout: time.Minute}, time.Now),
	}
	c := &Conn{
		hub: NewHub("fuzz"), b: admitAll{}, cfg: cfg, id: "c1", addr: "192.0.2.1", remoteIP: "192.0.2.1",
		baseLog: slog.New(slog.NewTextHandler(io.Discard, nil)), closeDone: make(chan struct{}),
		limit: PreAuthMaxPayload,
	}
	c.queue = outq.New(cfg.MaxBufferedBytes, func() {})
	ok = c.handshake(data)
	frames, cr, _, _ = c.queue.Take(nil)
	return ok, frames, cr
}

// FuzzHandshake: the whole pre-auth path, from a raw first frame to the handshake's outcome
// (SPEC §5.2). Whatever the frame, the connection either gets exactly one hello-ok (and only
// for a schema-valid hello of protocol 1 with the right token) or at most one hello-error
// and a close with a policy or protocol code; no hello-error repeats more than 200
// characters of input or names Go internals; nothing panics.
func FuzzHandshake(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("..", "schemas", "testdata", "*", "*hello*.json"))
	for _, name := range files {
		if data, err := os.ReadFile(name); err == nil {
			f.Add(data)
		}
	}
	good := `{"type":"hello","minProtocol":1,"maxProtocol":1,"client":{"name":"cli","version":"1","platform":"linux","mode":"cli"},"auth":{"token":"` + fuzzToken + `"}}`
	f.Add([]byte(good))
	f.Add([]byte(strings.Replace(good, fuzzToken, "wrong", 1)))
	f.Add([]byte(strings.Replace(good, `"maxProtocol":1`, `"maxProtocol":1`+strings.Repeat("0", 70), 1)))
	f.Add([]byte(strings.Replace(good, `"minProtocol":1`, `"minProtocol":2`, 1)))
	f.Add([]byte(`{"type":"hello","minProtocol":1e300}`))
	f.Add([]byte(`{"type":"req","id":"1","method":"health"}`))
	f.Add([]byte(`[`))
	set, err := schemas.Load()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > PreAuthMaxPayload {
			return // the reader closes 1009 before the handshake sees it
		}
		ok, frames, cr := handshakeOutcome(set, data)
		if ok {
			if len(frames) != 1 || string(frames[0]) != `{"type":"hello-ok"}` || cr != nil {
				t.Fatalf("admitted with frames %q, close %v", frames, cr)
			}
			var h schemas.Hello
			v, err := schemas.Decode(data)
			if err != nil || set.Hello(v) != nil || json.Unmarshal(data, &h) != nil {
				t.Fatalf("admitted a frame that is not a valid hello: %q", data)
			}
			if h.Auth == nil || h.Auth.Token != fuzzToken || h.MinProtocol > 1 || h.MaxProtocol < 1 {
				t.Fatalf("admitted a hello with the wrong token or protocol: %q", data)
			}
			return
		}
		if cr == nil {
			t.Fatalf("refused without a close: %q", data)
		}
		switch websocket.StatusCode(cr.Code) {
		case websocket.StatusPolicyViolation, websocket.StatusProtocolError, websocket.StatusServiceRestart:
		default:
			t.Fatalf("refused with close code %d: %q", cr.Code, data)
		}
		if len(frames) > 1 {
			t.Fatalf("refused with %d frames", len(frames))
		}
		for _, fr := range frames {
			var he schemas.HelloError
			if err := json.Unmarshal(fr, &he); err != nil || he.Type != schemas.TypeHelloError {
				t.Fatalf("refusal frame %q is not a hello-error", fr)
			}
			if set.ServerFrame(fr) != nil {
				t.Fatalf("hello-error %q fails the frame schema", fr)
			}
			if len(he.Reason) > 300 {
				t.Fatalf("hello-error reason of %d bytes: %q", len(he.Reason), he.Reason)
			}
			for _, internal := range []string{"json:", "Go struct", "unmarshal", "runtime", "reflect"} {
				if strings.Contains(he.Reason, internal) {
					t.Fatalf("hello-error names Go internals: %q", he.Reason)
				}
			}
		}
	})
}

// holdWriter makes the test the queue's writer: with a writer counted as running, a
// request's res is queued for the test to Take rather than handed to a writer (the
// connection has no socket).
func holdWriter(q *outq.Queue) {
	q.Push(nil, false)
	q.Take(nil)
}

// echoBackend answers every request it is given with ok and the method's name.
type echoBackend struct{ admitAll }

func (echoBackend) Serve(r *Call) { r.SendOK([]byte(`{"served":true}`)) }

// frameOutcome runs the post-auth path of one admitted connection on a frame: what it
// queued for the client and how it closes.
func frameOutcome(set *schemas.Set, data []byte) (ok bool, frames [][]byte, cr *outq.CloseReq) {
	cfg := &ConnConfig{Schemas: set, MaxPayload: 1 << 20, MaxBufferedBytes: 1 << 22, MaxInFlight: 32,
		HandshakeTimeout: time.Second, WriteTimeout: time.Second}
	c := &Conn{
		hub: NewHub("fuzz"), b: echoBackend{}, cfg: cfg, id: "c1", addr: "192.0.2.1",
		baseLog: slog.New(slog.NewTextHandler(io.Discard, nil)), closeDone: make(chan struct{}),
		inflight: make(chan struct{}, cfg.MaxInFlight), limit: cfg.MaxPayload,
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	defer c.cancel()
	c.queue = outq.New(cfg.MaxBufferedBytes, func() {})
	holdWriter(c.queue)
	c.registered.Store(true)
	ok = c.handleFrame(data)
	c.reqWG.Wait()
	frames, cr, _, _ = c.queue.Take(nil)
	return ok, frames, cr
}

// FuzzFrame: the post-auth frame path. Whatever the frame, invalid JSON closes the
// connection 1008 with nothing sent; anything else gets exactly one res, schema-valid,
// served only for a valid req, with the frame's id when it has a string one; no error
// repeats more than 200 characters of input or names Go internals; nothing panics.
func FuzzFrame(f *testing.F) {
	for _, dir := range []string{"valid", "invalid"} {
		files, _ := filepath.Glob(filepath.Join("..", "schemas", "testdata", dir, "*.json"))
		for _, name := range files {
			if data, err := os.ReadFile(name); err == nil {
				f.Add(data)
			}
		}
	}
	f.Add([]byte(`{"type":"req","id":"1","method":"health"}`))
	f.Add([]byte(`{"type":"req","id":"2","method":"send","params":{"to":1e999}}`))
	f.Add([]byte(`{"type":"req","id":"3","method":"x","extra":"` + strings.Repeat("y", 300) + `"}`))
	f.Add([]byte(`{"type":"req","id":7,"method":"health"}`))
	set, err := schemas.Load()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ok, frames, cr := frameOutcome(set, data)
		if !json.Valid(data) {
			if ok || len(frames) != 0 || cr == nil || websocket.StatusCode(cr.Code) != websocket.StatusPolicyViolation {
				t.Fatalf("invalid JSON: ok %v, frames %q, close %v", ok, frames, cr)
			}
			return
		}
		if !ok || cr != nil || len(frames) != 1 {
			t.Fatalf("valid JSON %q: ok %v, frames %q, close %v; want one res", data, ok, frames, cr)
		}
		if err := set.ServerFrame(frames[0]); err != nil {
			t.Fatalf("res %q fails the frame schema: %v", frames[0], err)
		}
		var res struct {
			ID      string          `json:"id"`
			OK      bool            `json:"ok"`
			Payload json.RawMessage `json:"payload"`
			Error   *struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		if err := json.Unmarshal(frames[0], &res); err != nil {
			t.Fatalf("res %q: %v", frames[0], err)
		}
		var env struct {
			ID any `json:"id"`
		}
		_ = json.Unmarshal(data, &env)
		if id, isString := env.ID.(string); isString && id != "" && !hasLongNumber(data) && res.ID != id {
			t.Fatalf("res id %q for a frame with id %q", res.ID, id)
		}
		if res.OK {
			v, err := schemas.Decode(data)
			if err != nil || set.Request(v) != nil {
				t.Fatalf("served a frame that is not a valid req: %q", data)
			}
			return
		}
		if res.Error == nil {
			t.Fatalf("res without ok or error: %q", frames[0])
		}
		if len(res.Error.Message) > 300 {
			t.Fatalf("error message of %d bytes: %q", len(res.Error.Message), res.Error.Message)
		}
		for _, internal := range []string{"json:", "Go struct", "unmarshal", "runtime", "reflect"} {
			if strings.Contains(res.Error.Message, internal) {
				t.Fatalf("error message names Go internals: %q", res.Error.Message)
			}
		}
	})
}
