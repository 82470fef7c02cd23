package edge

import (
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/clawdis/clawdis/bus/subject"
	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/schemas"
)

func TestMethodsAndInvalidRequests(t *testing.T) {
	g := startEdge(t, nil)
	startFakeServices(t, g.nc)
	c, _ := g.connect("cli")

	for _, m := range []string{"health", "status", "system-presence"} {
		c.Send(map[string]any{"type": "req", "id": "r-" + m, "method": m})
		res := c.NextRes("r-" + m)
		if res["ok"] != true || res["payload"] == nil {
			t.Errorf("%s: %v", m, res)
		}
		if err := testSchemas(t).Payload(m, res["payload"]); err != nil {
			t.Errorf("%s payload fails its schema: %v (%v)", m, err, res["payload"])
		}
	}
	c.Send(map[string]any{"type": "req", "id": "se", "method": "system-event", "params": map[string]any{"text": "hi"}})
	if res := c.NextRes("se"); res["ok"] != true {
		t.Errorf("system-event: %v", res)
	}

	tests := []struct {
		name, frame, id, code, msg string
	}{
		{"unknown method", `{"type":"req","id":"u1","method":"nope"}`, "u1", "INVALID_REQUEST", "unknown method: nope"},
		{"invalid params", `{"type":"req","id":"p1","method":"system-event","params":{"text":5}}`, "p1", "INVALID_REQUEST", "invalid system-event params: text must be a string"},
		{"params for a method without params", `{"type":"req","id":"p2","method":"health","params":{"x":1}}`, "p2", "INVALID_REQUEST", `invalid health params: unexpected property "x"`},
		{"service-level validation", `{"type":"req","id":"p3","method":"system-event","params":{"text":"  "}}`, "p3", "INVALID_REQUEST", "text required"},
		{"missing id", `{"type":"req","method":"health"}`, "invalid", "INVALID_REQUEST", `invalid request frame: missing property "id"`},
		{"numeric id", `{"type":"req","id":7,"method":"health"}`, "invalid", "INVALID_REQUEST", "invalid request frame: id must be a string"},
		{"second hello", `{"type":"hello","minProtocol":1,"maxProtocol":1,"client":{"name":"a","version":"1","platform":"p","mode":"cli"}}`, "invalid", "INVALID_REQUEST", `invalid request frame: type must be "req"`},
		{"id kept when valid", `{"type":"req","id":"k1","method":"health","extra":true}`, "k1", "INVALID_REQUEST", `invalid request frame: unexpected property "extra"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.Send(tt.frame)
			res := c.NextRes(tt.id)
			code, msg, _ := errCode(res)
			if res["ok"] != false || code != tt.code || msg != tt.msg {
				t.Errorf("got %v, want %s %q", res, tt.code, tt.msg)
			}
		})
	}
	// The connection is still usable after all of that.
	c.Send(`{"type":"req","id":"after","method":"health"}`)
	if res := c.NextRes("after"); res["ok"] != true {
		t.Errorf("after errors: %v", res)
	}
}

func TestMalformedJSONAfterHandshakeCloses(t *testing.T) {
	g := startEdge(t, nil)
	c, _ := g.connect("cli")
	c.Send(`{"type":"req",`)
	if code, reason := c.Closed(); code != 1008 || reason != "malformed JSON" {
		t.Errorf("closed %d %q", code, reason)
	}
}
func TestStoppedServiceAnswersUnavailable(t *testing.T) {
	g := startEdge(t, nil)
	fs := startFakeServices(t, g.nc)
	c, _ := g.connect("cli")
	if err := fs.presence.Stop(); err != nil {
		t.Fatal(err)
	}
	c.Send(`{"type":"req","id":"p","method":"system-presence"}`)
	res := c.NextRes("p")
	if code, _, retryable := errCode(res); code != "UNAVAILABLE" || !retryable {
		t.Errorf("stopped service: %v", res)
	}
}

func TestHungServiceAnswersWithinDeadline(t *testing.T) {
	g := startEdge(t, func(c *Config) {
		c.Routes = []Route{{Method: schemas.MethodHealth, Subject: subject.HealthGet, Service: subject.ServiceHealth, Deadline: 100 * time.Millisecond}}
	})
	sub, err := g.nc.Subscribe(subject.HealthGet, func(*nats.Msg) {}) // never answers
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	c, _ := g.connect("cli")
	c.Send(`{"type":"req","id":"h","method":"health"}`)
	res := c.NextRes("h")
	if code, msg, retryable := errCode(res); code != "UNAVAILABLE" || !retryable {
		t.Errorf("hung service: %v %s", res, msg)
	}
}

func TestPanickingServiceAnswersUnavailable(t *testing.T) {
	g := startEdge(t, nil)
	fs := startFakeServices(t, g.nc)
	_ = fs.health.Stop()
	svc := newPanicService(t, g.nc)
	_ = svc
	c, _ := g.connect("cli")
	c.Send(`{"type":"req","id":"x","method":"health"}`)
	res := c.NextRes("x")
	if code, msg, _ := errCode(res); code != "UNAVAILABLE" || msg != "internal error in health.get: panic: boom" {
		t.Errorf("panicking handler: %v", res)
	}
}

// TestHistoryRequestWording: params that pass the schema but not Go's decoding (an integer
// beyond int64) get a message naming the field, not Go's "json: cannot unmarshal …".
func TestHistoryRequestWording(t *testing.T) {
	_, err := historyRequest([]byte(`{"sessionKey":"main","limit":1e300}`), 1<<20)
	var we *wire.Error
	if !errors.As(err, &we) || we.Code != wire.CodeInvalidRequest {
		t.Fatalf("err = %v, want INVALID_REQUEST", err)
	}
	if we.Message != "invalid chat.history params: limit: expected an integer within range" {
		t.Errorf("message %q", we.Message)
	}
}
