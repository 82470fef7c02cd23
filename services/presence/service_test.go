package presence

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"reflect"
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
const waitLimit = 5 * time.Second

// fakeClock is a clock the test moves by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// harness is a running presence service on an in-process bus.
type harness struct {
	t       *testing.T
	svc     *Service
	clock   *fakeClock
	nc      *nats.Conn     // the test's own connection
	changes chan *nats.Msg // subject.PresenceChanged
	ticks   chan time.Time // drives the sweep
	cancel  context.CancelFunc
	done    chan error // Run's result
}

var testSelf = Config{Host: "gw-host", IP: "192.168.1.2", Version: "1.0.0-test"}

// start runs a service with cfg (its clock replaced by a fake one) and waits until it
// serves: Run publishes the list once after registering its endpoints.
func start(t *testing.T, cfg Config) *harness {
	t.Helper()
	return startClock(t, cfg, false)
}

// startClock is start; with realTime the service keeps the real clock and its own expiry
// timer (no ticks from the test).
func startClock(t *testing.T, cfg Config, realTime bool) *harness {
	t.Helper()
	b := bustest.New(t)
	h := &harness{
		t:       t,
		clock:   &fakeClock{now: t0},
		nc:      b.Conn("test"),
		changes: make(chan *nats.Msg, 64),
		ticks:   make(chan time.Time),
		done:    make(chan error, 1),
	}
	sub, err := h.nc.ChanSubscribe(subject.PresenceChanged, h.changes)
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := h.nc.Flush(); err != nil {
		t.Fatalf("flush: %v", err)
	}

	if !realTime {
		cfg.Now = h.clock.Now
	}
	h.svc, err = New(cfg, b.Conn("presence"), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if !realTime {
		h.svc.ticks = h.ticks
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { h.done <- h.svc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-h.done:
		case <-time.After(waitLimit):
			t.Error("Run did not return after cancel")
		}
	})
	first := h.nextChange()
	if len(first) != 1 || first[0].Reason != reasonSelf {
		t.Fatalf("first published list = %+v, want only the self entry", first)
	}
	return h
}

// nextChange waits for the next published list.
func (h *harness) nextChange() []schemas.PresenceEntry {
	h.t.Helper()
	select {
	case msg := <-h.changes:
		var p schemas.PresencePayload
		if err := json.Unmarshal(msg.Data, &p); err != nil {
			h.t.Fatalf("decode presence change: %v", err)
		}
		return p.Presence
	case <-time.After(waitLimit):
		h.t.Fatal("no presence change published")
		return nil
	}
}

// request sends body (raw bytes, or a value to encode) and returns the reply or error.
func (h *harness) request(subj string, body any) ([]byte, error) {
	h.t.Helper()
	data, ok := body.([]byte)
	if !ok {
		var err error
		if data, err = json.Marshal(body); err != nil {
			h.t.Fatalf("encode: %v", err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	return wire.Request(ctx, h.nc, subj, data, nil)
}

// ok sends body and expects {"ok":true}.
func (h *harness) ok(subj string, body any) {
	h.t.Helper()
	reply, err := h.request(subj, body)
	if err != nil {
		h.t.Fatalf("request %s: %v", subj, err)
	}
	var p schemas.OKPayload
	if err := json.Unmarshal(reply, &p); err != nil || !p.OK {
		h.t.Fatalf("reply %s = %s, want {\"ok\":true}", subj, reply)
	}
}

func (h *harness) list() []schemas.PresenceEntry {
	h.t.Helper()
	reply, err := h.request(subject.PresenceList, []byte("{}"))
	if err != nil {
		h.t.Fatalf("list: %v", err)
	}
	var list []schemas.PresenceEntry
	if err := json.Unmarshal(reply, &list); err != nil {
		h.t.Fatalf("decode list %s: %v", reply, err)
	}
	return list
}

func (h *harness) queue(subj string) []string {
	h.t.Helper()
	reply, err := h.request(subj, nil)
	if err != nil {
		h.t.Fatalf("%s: %v", subj, err)
	}
	var q wire.SystemEventQueue
	if err := json.Unmarshal(reply, &q); err != nil {
		h.t.Fatalf("decode queue %s: %v", reply, err)
	}
	if q.Events == nil {
		h.t.Fatalf("%s reply %s: events is null", subj, reply)
	}
	return q.Events
}

func wantSelf(now time.Time) schemas.PresenceEntry {
	return schemas.PresenceEntry{Host: "gw-host", IP: "192.168.1.2", Version: "1.0.0-test", Mode: "gateway",
		Reason: "self", Text: "Gateway: gw-host (192.168.1.2) · app 1.0.0-test · mode gateway · reason self",
		Ts: now.UnixMilli()}
}

func TestServiceList(t *testing.T) {
	h := start(t, testSelf)
	if got, want := h.list(), []schemas.PresenceEntry{wantSelf(t0)}; !reflect.DeepEqual(got, want) {
		t.Fatalf("list\n got %+v\nwant %+v", got, want)
	}
}

func TestServicePing(t *testing.T) {
	h := start(t, testSelf)
	subj, err := micro.ControlSubject(micro.PingVerb, subject.ServicePresence, "")
	if err != nil {
		t.Fatal(err)
	}
	reply, err := h.request(subj, nil)
	if err != nil {
		t.Fatalf("ping: %v", err)
	}
	var ping micro.Ping
	if err := json.Unmarshal(reply, &ping); err != nil {
		t.Fatal(err)
	}
	if ping.Name != subject.ServicePresence || ping.Version != Version {
		t.Errorf("ping = %+v, want name %q version %q", ping, subject.ServicePresence, Version)
	}
}

func TestServiceSystemEvent(t *testing.T) {
	const beacon = "Node: studio (10.0.0.3) · app 2.1 · last input 7s ago · mode ui · reason periodic"
	tests := []struct {
		name    string
		body    any
		wantErr string // INVALID_REQUEST message; empty for success
		want    schemas.PresenceEntry
	}{
		{
			name: "beacon text",
			body: map[string]any{"text": beacon, "unknownKey": true},
			want: schemas.PresenceEntry{Host: "studio", IP: "10.0.0.3", Version: "2.1", Mode: "ui",
				Reason: "periodic", LastInputSeconds: i64(7), Text: beacon},
		},
		{
			name: "params with instanceId",
			body: schemas.SystemEventParams{Text: "hello", InstanceID: "Inst-1", Mode: "node", Tags: []string{"t"}},
			want: schemas.PresenceEntry{Mode: "node", Tags: []string{"t"}, Text: "hello", InstanceID: "Inst-1"},
		},
		{name: "blank text", body: schemas.SystemEventParams{Text: "   "}, wantErr: "text required"},
		{name: "no text", body: map[string]any{"host": "h"}, wantErr: "text required"},
		{name: "empty body", body: []byte{}, wantErr: "text required"},
		{name: "text not a string", body: map[string]any{"text": 5}},
		{name: "malformed json", body: []byte(`{"text":`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := start(t, testSelf)
			h.clock.Advance(time.Second)
			reply, err := h.request(subject.PresenceEvent, tt.body)
			isErrCase := tt.wantErr != "" || tt.want.Text == ""
			if isErrCase {
				var werr *wire.Error
				if !errors.As(err, &werr) || werr.Code != wire.CodeInvalidRequest {
					t.Fatalf("reply %s err %v, want %s", reply, err, wire.CodeInvalidRequest)
				}
				if tt.wantErr != "" && werr.Message != tt.wantErr {
					t.Errorf("message = %q, want %q", werr.Message, tt.wantErr)
				}
				// Nothing was published: the next change is the one made now.
				h.ok(subject.PresenceEvent, schemas.SystemEventParams{Text: "marker"})
				got := h.nextChange()
				if len(got) != 2 || got[1].Text != "marker" {
					t.Fatalf("next change = %+v, want self and the marker", got)
				}
				if q := h.queue(subject.PresenceQueue); !reflect.DeepEqual(q, []string{"marker"}) {
					t.Errorf("queue = %q, want only the marker", q)
				}
				return
			}
			if err != nil {
				t.Fatalf("request: %v", err)
			}
			if string(reply) != `{"ok":true}` {
				t.Errorf("reply = %s", reply)
			}
			want := tt.want
			want.Ts = h.clock.Now().UnixMilli()
			wantList := []schemas.PresenceEntry{wantSelf(h.clock.Now()), want}
			if got := h.nextChange(); !reflect.DeepEqual(got, wantList) {
				t.Errorf("published\n got %+v\nwant %+v", got, wantList)
			}
			if got := h.list(); !reflect.DeepEqual(got, wantList) {
				t.Errorf("list\n got %+v\nwant %+v", got, wantList)
			}
		})
	}
}

func TestServiceClientConnectDisconnect(t *testing.T) {
	h := start(t, testSelf)
	connect := wire.ClientPresence{Key: "Conn-7", Event: "connect", InstanceID: "Conn-7", Host: "mac-app",
		IP: "10.0.0.8", Version: "3.0", Mode: "ui"}

	h.clock.Advance(time.Second)
	h.ok(subject.PresenceClient, connect)
	want := schemas.PresenceEntry{Host: "mac-app", IP: "10.0.0.8", Version: "3.0", Mode: "ui", Reason: "connect",
		InstanceID: "Conn-7", Ts: h.clock.Now().UnixMilli()}
	if got := h.nextChange(); !reflect.DeepEqual(got, []schemas.PresenceEntry{wantSelf(h.clock.Now()), want}) {
		t.Fatalf("after connect\n got %+v\nwant self, %+v", got, want)
	}

	h.clock.Advance(time.Second)
	h.ok(subject.PresenceClient, wire.ClientPresence{Key: "conn-7", Event: "disconnect"})
	want.Reason = "disconnect"
	want.Ts = h.clock.Now().UnixMilli()
	if got := h.nextChange(); !reflect.DeepEqual(got, []schemas.PresenceEntry{wantSelf(h.clock.Now()), want}) {
		t.Fatalf("after disconnect\n got %+v\nwant self, %+v", got, want)
	}

	for _, body := range []any{
		wire.ClientPresence{Key: "x", Event: "bye"},
		wire.ClientPresence{Event: "connect"},
		[]byte(`[1,2]`),
	} {
		_, err := h.request(subject.PresenceClient, body)
		var werr *wire.Error
		if !errors.As(err, &werr) || werr.Code != wire.CodeInvalidRequest {
			t.Errorf("client %v: err %v, want %s", body, err, wire.CodeInvalidRequest)
		}
	}
	if got := h.list(); len(got) != 2 {
		t.Errorf("invalid reports changed the list: %+v", got)
	}
}

func TestServiceQueueDrain(t *testing.T) {
	h := start(t, testSelf)
	if q := h.queue(subject.PresenceQueue); len(q) != 0 {
		t.Fatalf("initial queue = %q", q)
	}
	for _, text := range []string{"first", "second", "second", "third"} {
		h.ok(subject.PresenceEvent, schemas.SystemEventParams{Text: text})
	}
	want := []string{"first", "second", "third"}
	if q := h.queue(subject.PresenceQueue); !reflect.DeepEqual(q, want) {
		t.Fatalf("peek = %q, want %q", q, want)
	}
	if q := h.queue(subject.PresenceQueue); !reflect.DeepEqual(q, want) {
		t.Fatalf("second peek = %q, want %q (peek must not consume)", q, want)
	}
	if q := h.queue(subject.PresenceDrain); !reflect.DeepEqual(q, want) {
		t.Fatalf("drain = %q, want %q", q, want)
	}
	if q := h.queue(subject.PresenceQueue); len(q) != 0 {
		t.Fatalf("queue after drain = %q", q)
	}
}

func TestServiceExpiryPublishesChange(t *testing.T) {
	h := start(t, Config{Host: "gw-host", IP: "192.168.1.2", Version: "1.0.0-test", TTL: time.Minute})
	h.ok(subject.PresenceClient, wire.ClientPresence{Key: "old", Event: "connect", Host: "old"})
	h.nextChange()
	h.clock.Advance(30 * time.Second)
	h.ok(subject.PresenceClient, wire.ClientPresence{Key: "new", Event: "connect", Host: "new"})
	if got := h.nextChange(); len(got) != 3 {
		t.Fatalf("before expiry = %+v", got)
	}

	h.clock.Advance(31 * time.Second) // "old" is 61s old, "new" 31s
	h.ticks <- h.clock.Now()
	got := h.nextChange()
	if len(got) != 2 || got[0].Reason != reasonSelf || got[1].Host != "new" {
		t.Fatalf("after first expiry = %+v, want self and new", got)
	}

	h.clock.Advance(time.Hour)
	h.ticks <- h.clock.Now()
	if got := h.nextChange(); !reflect.DeepEqual(got, []schemas.PresenceEntry{wantSelf(h.clock.Now())}) {
		t.Fatalf("after second expiry = %+v, want only self", got)
	}
	if got := h.list(); len(got) != 1 {
		t.Fatalf("list after expiry = %+v", got)
	}
}

func TestServiceListExpiresStaleEntries(t *testing.T) {
	h := start(t, Config{TTL: time.Minute})
	h.ok(subject.PresenceClient, wire.ClientPresence{Key: "a", Event: "connect"})
	h.nextChange()
	h.clock.Advance(2 * time.Minute) // no sweep tick: list itself must not show it
	if got := h.list(); len(got) != 1 {
		t.Fatalf("list = %+v, want only self", got)
	}
	if got := h.nextChange(); len(got) != 1 {
		t.Fatalf("published = %+v, want only self", got)
	}
}

func TestServiceRunStopsOnCancel(t *testing.T) {
	h := start(t, testSelf)
	h.cancel()
	select {
	case err := <-h.done:
		if err != nil {
			t.Fatalf("Run = %v, want nil", err)
		}
	case <-time.After(waitLimit):
		t.Fatal("Run did not return after cancel")
	}
	h.done <- nil // for the cleanup's wait
	_, err := h.request(subject.PresenceList, nil)
	var werr *wire.Error
	if !errors.As(err, &werr) || werr.Code != wire.CodeUnavailable || !werr.Retryable {
		t.Fatalf("list after stop: err %v, want retryable %s", err, wire.CodeUnavailable)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	b := bustest.New(t)
	nc := b.Conn("presence")
	tests := []struct {
		name string
		cfg  Config
		nc   *nats.Conn
	}{
		{"nil connection", Config{}, nil},
		{"negative TTL", Config{TTL: -time.Second}, nc},
		{"negative MaxEntries", Config{MaxEntries: -1}, nc},
		{"negative MaxQueue", Config{MaxQueue: -1}, nc},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.cfg, tt.nc, nil); err == nil {
				t.Fatal("New accepted the config")
			}
		})
	}
	s, err := New(Config{}, nc, nil)
	if err != nil {
		t.Fatalf("zero config: %v", err)
	}
	if s.cfg.TTL != DefaultTTL || s.cfg.MaxEntries != DefaultMaxEntries || s.cfg.MaxQueue != DefaultMaxQueue ||
		s.cfg.SelfKey != DefaultSelfKey || s.cfg.Now == nil {
		t.Errorf("defaults not applied: %+v", s.cfg)
	}
}

// TestEntriesExpireOnTheirOwnTimer: with no sweep period, an entry is removed (and the
// change published) when its TTL has passed, by the one timer set to the oldest expiry.
func TestEntriesExpireOnTheirOwnTimer(t *testing.T) {
	h := startClock(t, Config{TTL: 50 * time.Millisecond}, true)
	h.ok(subject.PresenceClient, wire.ClientPresence{Key: "k1", Event: "connect", Host: "app", Mode: "app"})
	if got := h.nextChange(); len(got) != 2 {
		t.Fatalf("after connect: %+v", got)
	}
	if got := h.nextChange(); len(got) != 1 || got[0].Reason != reasonSelf {
		t.Fatalf("after the TTL: %+v, want only the self entry", got)
	}
}
