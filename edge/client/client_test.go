package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/schemas"
)

// jsonEqual reports whether two JSON texts hold the same value.
func jsonEqual(t *testing.T, got, want []byte) bool {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("decode %s: %v", got, err)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatalf("decode %s: %v", want, err)
	}
	return reflect.DeepEqual(g, w)
}

func TestDialHandshake(t *testing.T) {
	cfg := fakeConfig{presence: []schemas.PresenceEntry{{Host: "mac", Mode: "app", Ts: 42, Tags: []string{"a"}}}}
	s := newFakeServer(t, cfg)
	rec := newRecorder()
	c := dial(t, s, rec.options(Options{}))
	fc := recv(t, s.connected, "connection")
	want := s.helloOK(fc.id, cfg)

	if got := c.Hello(); !reflect.DeepEqual(got, want) {
		t.Errorf("Hello() = %+v, want %+v", got, want)
	}
	if got := recv(t, rec.connects, "OnConnect"); !reflect.DeepEqual(got, want) {
		t.Errorf("OnConnect got %+v, want %+v", got, want)
	}
	first := recv(t, rec.frames, "FrameHook")
	if !jsonEqual(t, first, mustJSON(want)) {
		t.Errorf("FrameHook's first frame = %s, want the hello-ok", first)
	}
}

func TestHelloFrame(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{
			name: "defaults",
			want: fmt.Sprintf(`{"type":"hello","minProtocol":1,"maxProtocol":1,
				"client":{"name":"clawdis-go","version":%q,"platform":%q,"mode":"cli"}}`, moduleVersion(), runtime.GOOS),
		},
		{
			name: "token, client info and caps",
			opts: Options{
				Token:  "s3cret-token",
				Client: schemas.ClientInfo{Name: "webchat", Version: "1.2.3", Platform: "plan9", Mode: "webchat", InstanceID: "inst-7"},
				Caps:   []string{"agent-stream", "chat"},
			},
			want: `{"type":"hello","minProtocol":1,"maxProtocol":1,
				"client":{"name":"webchat","version":"1.2.3","platform":"plan9","mode":"webchat","instanceId":"inst-7"},
				"caps":["agent-stream","chat"],"auth":{"token":"s3cret-token"}}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newFakeServer(t, fakeConfig{})
			var logs bytes.Buffer
			tt.opts.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			c := dial(t, s, tt.opts)
			got := recv(t, s.hellos, "hello")
			if !jsonEqual(t, got, []byte(tt.want)) {
				t.Errorf("hello = %s\nwant %s", got, tt.want)
			}
			if _, err := c.Request(context.Background(), schemas.MethodHealth, nil); err != nil {
				t.Fatalf("Request: %v", err)
			}
			_ = c.Close()
			if tt.opts.Token != "" && strings.Contains(logs.String(), tt.opts.Token) {
				t.Errorf("the token appears in the logs:\n%s", logs.String())
			}
			if !strings.Contains(logs.String(), "component=gateway_client") {
				t.Errorf("logs lack the component attribute:\n%s", logs.String())
			}
		})
	}
}

func TestDialRefused(t *testing.T) {
	tests := []struct {
		name string
		cfg  fakeConfig
		want error
	}{
		{
			name: "protocol mismatch",
			cfg:  fakeConfig{refuse: &schemas.HelloError{Type: schemas.TypeHelloError, Reason: "protocol mismatch", ExpectedProtocol: 1}},
			want: &HelloError{Reason: "protocol mismatch", ExpectedProtocol: 1},
		},
		{
			name: "unauthorized",
			cfg:  fakeConfig{refuse: &schemas.HelloError{Type: schemas.TypeHelloError, Reason: "unauthorized"}},
			want: &HelloError{Reason: "unauthorized"},
		},
		{
			name: "closed without an answer",
			cfg:  fakeConfig{closeCode: websocket.StatusPolicyViolation, closeReason: "handshake timeout"},
			want: &CloseError{Code: 1008, Reason: "handshake timeout"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newFakeServer(t, tt.cfg)
			c, err := Dial(context.Background(), Options{URL: s.url})
			if err == nil {
				_ = c.Close()
				t.Fatal("Dial succeeded, want an error")
			}
			switch want := tt.want.(type) {
			case *HelloError:
				var he *HelloError
				if !errors.As(err, &he) || *he != *want {
					t.Errorf("Dial error = %#v (%v), want %#v", err, err, want)
				}
			case *CloseError:
				var ce *CloseError
				if !errors.As(err, &ce) || *ce != *want {
					t.Errorf("Dial error = %#v (%v), want %#v", err, err, want)
				}
			}
		})
	}
}

func TestDialUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "ws://" + ln.Addr().String()
	_ = ln.Close()

	c, err := Dial(context.Background(), Options{URL: url})
	if err == nil {
		_ = c.Close()
		t.Fatal("Dial succeeded on a closed port")
	}
	if !errors.Is(err, ErrUnreachable) {
		t.Errorf("errors.Is(%v, ErrUnreachable) = false", err)
	}
	if prefix := "gateway not reachable at " + url + ": "; !strings.HasPrefix(err.Error(), prefix) {
		t.Errorf("error %q does not start with %q", err, prefix)
	}
}

func TestRequest(t *testing.T) {
	retry := true
	after := int64(250)
	tests := []struct {
		name    string
		params  any
		onReq   func(fc *fakeConn, req schemas.Request)
		want    string // payload, when no error
		wantErr *ResponseError
	}{
		{name: "no params", params: nil, want: `{"method":"m","id":"1"}`},
		{name: "raw params sent as is", params: json.RawMessage(`{"a":[1,2]}`), want: `{"method":"m","id":"1","params":{"a":[1,2]}}`},
		{name: "value marshalled", params: schemas.SystemEventParams{Text: "hi"}, want: `{"method":"m","id":"1","params":{"text":"hi"}}`},
		{
			name: "error response",
			onReq: func(fc *fakeConn, req schemas.Request) {
				_ = fc.fail(req.ID, schemas.ErrorShape{Code: wire.CodeUnavailable, Message: "whatsapp down", Retryable: &retry, RetryAfterMs: &after}, nil)
			},
			wantErr: &ResponseError{Shape: schemas.ErrorShape{Code: wire.CodeUnavailable, Message: "whatsapp down", Retryable: &retry, RetryAfterMs: &after}},
		},
		{
			name: "error response with payload",
			onReq: func(fc *fakeConn, req schemas.Request) {
				_ = fc.fail(req.ID, schemas.ErrorShape{Code: wire.CodeNotLinked, Message: "not linked"}, map[string]string{"runId": "k"})
			},
			wantErr: &ResponseError{Shape: schemas.ErrorShape{Code: wire.CodeNotLinked, Message: "not linked"}, Payload: json.RawMessage(`{"runId":"k"}`)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newFakeServer(t, fakeConfig{onReq: tt.onReq})
			c := dial(t, s, Options{})
			got, err := c.Request(context.Background(), "m", tt.params)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Request: %v", err)
				}
				if !jsonEqual(t, got, []byte(tt.want)) {
					t.Errorf("payload = %s, want %s", got, tt.want)
				}
				return
			}
			var re *ResponseError
			if !errors.As(err, &re) {
				t.Fatalf("error = %v, want a *ResponseError", err)
			}
			if !reflect.DeepEqual(re, tt.wantErr) {
				t.Errorf("error = %#v, want %#v", re, tt.wantErr)
			}
			if want := tt.wantErr.Shape.Code + ": " + tt.wantErr.Shape.Message; re.Error() != want {
				t.Errorf("Error() = %q, want %q", re.Error(), want)
			}
			if re.Retryable() != (tt.wantErr.Shape.Retryable != nil && *tt.wantErr.Shape.Retryable) {
				t.Errorf("Retryable() = %v", re.Retryable())
			}
		})
	}
}

func TestRequestIDs(t *testing.T) {
	s := newFakeServer(t, fakeConfig{})
	c := dial(t, s, Options{})
	fc := recv(t, s.connected, "connection")
	for i := 1; i <= 3; i++ {
		if _, err := c.Request(context.Background(), schemas.MethodHealth, nil); err != nil {
			t.Fatal(err)
		}
		if req := recv(t, fc.reqs, "request"); req.ID != fmt.Sprint(i) {
			t.Errorf("request %d has id %q, want %q", i, req.ID, fmt.Sprint(i))
		}
	}
}

func TestRequestTimeoutKeepsConnection(t *testing.T) {
	slowIDs := make(chan string, 4)
	s := newFakeServer(t, fakeConfig{onReq: func(fc *fakeConn, req schemas.Request) {
		if req.Method == "slow" {
			slowIDs <- req.ID // never answered in time
			return
		}
		echo(fc, req)
	}})
	c := dial(t, s, Options{})
	fc := recv(t, s.connected, "connection")

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	_, err := c.Request(ctx, "slow", nil)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("slow request error = %v, want DeadlineExceeded", err)
	}
	// A late answer to the timed-out id is ignored; other requests still work.
	_ = fc.respond(recv(t, slowIDs, "slow id"), map[string]bool{"late": true})
	for range 2 {
		got, err := c.Request(context.Background(), "fast", nil)
		if err != nil {
			t.Fatalf("fast request after a timeout: %v", err)
		}
		var p struct{ Method string }
		if err := json.Unmarshal(got, &p); err != nil || p.Method != "fast" {
			t.Fatalf("fast payload = %s", got)
		}
	}
	c.mu.Lock()
	n := len(c.cur.pending)
	c.mu.Unlock()
	if n != 0 {
		t.Errorf("%d pending entries left, want 0", n)
	}
}

func TestConcurrentRequests(t *testing.T) {
	s := newFakeServer(t, fakeConfig{onReq: func(fc *fakeConn, req schemas.Request) {
		go echo(fc, req) // answers in whatever order the goroutines run
	}})
	c := dial(t, s, Options{})
	const workers, each = 16, 25
	errs := make(chan error, workers*each)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				want := fmt.Sprintf("%d/%d", w, i)
				got, err := c.Request(context.Background(), "echo", map[string]string{"k": want})
				if err != nil {
					errs <- err
					continue
				}
				var p struct{ Params struct{ K string } }
				if err := json.Unmarshal(got, &p); err != nil || p.Params.K != want {
					errs <- fmt.Errorf("request %s got payload %s", want, got)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestRequestFinal(t *testing.T) {
	ack := schemas.AgentResult{RunID: "run-1", Status: "accepted"}
	tests := []struct {
		name      string
		final     func(fc *fakeConn, id string)
		sendAck   bool
		want      string // final payload when no error
		wantErr   *ResponseError
		wantAcked bool
	}{
		{
			name:    "ack then final",
			sendAck: true,
			final: func(fc *fakeConn, id string) {
				_ = fc.respond(id, schemas.AgentResult{RunID: "run-1", Status: "ok", Text: "done"})
			},
			want:      `{"runId":"run-1","status":"ok","text":"done"}`,
			wantAcked: true,
		},
		{
			name:    "ack then timeout",
			sendAck: true,
			final: func(fc *fakeConn, id string) {
				_ = fc.fail(id, schemas.ErrorShape{Code: wire.CodeAgentTimeout, Message: "agent timed out"}, schemas.AgentResult{RunID: "run-1", Status: "timeout"})
			},
			wantErr:   &ResponseError{Shape: schemas.ErrorShape{Code: wire.CodeAgentTimeout, Message: "agent timed out"}, Payload: json.RawMessage(`{"runId":"run-1","status":"timeout"}`)},
			wantAcked: true,
		},
		{
			name: "refused before the ack",
			final: func(fc *fakeConn, id string) {
				_ = fc.fail(id, schemas.ErrorShape{Code: wire.CodeInvalidRequest, Message: "invalid agent params: message required"}, nil)
			},
			wantErr: &ResponseError{Shape: schemas.ErrorShape{Code: wire.CodeInvalidRequest, Message: "invalid agent params: message required"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ackSeen := make(chan json.RawMessage, 1)
			s := newFakeServer(t, fakeConfig{onReq: func(fc *fakeConn, req schemas.Request) {
				go func() {
					if tt.sendAck {
						_ = fc.respond(req.ID, ack)
						// The final goes out only once the client has reported the ack.
						select {
						case <-ackSeen:
						case <-time.After(waitLimit):
							t.Error("onAck was not called before the final")
						}
					}
					tt.final(fc, req.ID)
				}()
			}})
			c := dial(t, s, Options{})
			acked := 0
			got, err := c.RequestFinal(context.Background(), schemas.MethodAgent,
				schemas.AgentParams{Message: "hi", IdempotencyKey: "run-1"},
				func(p json.RawMessage) {
					acked++
					if !jsonEqual(t, p, mustJSON(ack)) {
						t.Errorf("ack payload = %s", p)
					}
					ackSeen <- p
				})
			if (acked == 1) != tt.wantAcked || acked > 1 {
				t.Errorf("onAck called %d times, want acked=%v", acked, tt.wantAcked)
			}
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("RequestFinal: %v", err)
				}
				if !jsonEqual(t, got, []byte(tt.want)) {
					t.Errorf("final = %s, want %s", got, tt.want)
				}
				return
			}
			var re *ResponseError
			if !errors.As(err, &re) || !reflect.DeepEqual(re, tt.wantErr) {
				t.Errorf("error = %#v (%v), want %#v", re, err, tt.wantErr)
			}
		})
	}
}

func TestPendingFailOnDrop(t *testing.T) {
	tests := []struct {
		name      string
		code      websocket.StatusCode // 0: the server drops the TCP connection
		wantClose *CloseError
	}{
		{name: "connection dropped"},
		{name: "service restart", code: websocket.StatusServiceRestart, wantClose: &CloseError{Code: 1012, Reason: "service restart"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newFakeServer(t, fakeConfig{onReq: func(*fakeConn, schemas.Request) {}})
			rec := newRecorder()
			c := dial(t, s, rec.options(Options{}))
			fc := recv(t, s.connected, "connection")

			const n = 3
			errs := make(chan error, n)
			for range n {
				go func() {
					_, err := c.Request(context.Background(), "never-answered", nil)
					errs <- err
				}()
			}
			for range n {
				recv(t, fc.reqs, "request")
			}
			go fc.end(tt.code, "service restart")
			for range n {
				err := recv(t, errs, "request error")
				if !errors.Is(err, ErrDisconnected) {
					t.Errorf("pending request error = %v, want ErrDisconnected", err)
				}
				var ce *CloseError
				if tt.wantClose != nil && (!errors.As(err, &ce) || *ce != *tt.wantClose) {
					t.Errorf("pending request error = %v, want it to carry %v", err, tt.wantClose)
				}
			}
			closed(t, c.Done(), "Done (no reconnect)")
			if cause := recv(t, rec.drops, "OnDisconnect"); cause == nil || c.Err() == nil {
				t.Errorf("OnDisconnect cause %v, Err() %v: want both set", cause, c.Err())
			}
			if _, err := c.Request(context.Background(), schemas.MethodHealth, nil); !errors.Is(err, ErrDisconnected) {
				t.Errorf("request after the drop: %v, want ErrDisconnected", err)
			}
		})
	}
}
