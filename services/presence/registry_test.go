package presence

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/schemas"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// testRegistry builds a registry with cfg's defaults applied the way New applies them.
func testRegistry(t *testing.T, cfg Config) *registry {
	t.Helper()
	return newRegistry(cfg.withDefaults())
}

func i64(v int64) *int64 { return &v }

func mustEvent(t *testing.T, r *registry, p schemas.SystemEventParams, now time.Time) {
	t.Helper()
	if err := r.systemEvent(p, now); err != nil {
		t.Fatalf("systemEvent(%+v): %v", p, err)
	}
}

func mustClient(t *testing.T, r *registry, cp wire.ClientPresence, now time.Time) {
	t.Helper()
	if err := r.client(cp, now); err != nil {
		t.Fatalf("client(%+v): %v", cp, err)
	}
}

// dump renders the entries (self not included) oldest first, for failure messages.
func dump(r *registry) []string {
	var out []string
	for k, e := range r.entries.All() {
		out = append(out, fmt.Sprintf("%s=%+v", k, *e))
	}
	return out
}

// others returns the listed entries without the gateway's own.
func others(list []schemas.PresenceEntry) []schemas.PresenceEntry {
	var out []schemas.PresenceEntry
	for _, e := range list {
		if e.Reason == reasonSelf && e.Mode == modeGateway {
			continue
		}
		out = append(out, e)
	}
	return out
}

func TestSystemEventKeyAndMerge(t *testing.T) {
	tests := []struct {
		name    string
		events  []schemas.SystemEventParams
		wantKey string
		want    schemas.PresenceEntry
	}{
		{
			name:    "keyed by instanceId param",
			events:  []schemas.SystemEventParams{{Text: "Node: mac (10.0.0.9) · mode ui", InstanceID: "Mac-1"}},
			wantKey: "mac-1",
			want:    schemas.PresenceEntry{Host: "mac", IP: "10.0.0.9", Mode: "ui", Text: "Node: mac (10.0.0.9) · mode ui", InstanceID: "Mac-1"},
		},
		{
			name:    "keyed by parsed host",
			events:  []schemas.SystemEventParams{{Text: "Node: Studio · app 1.0"}},
			wantKey: "studio",
			want:    schemas.PresenceEntry{Host: "Studio", Version: "1.0", Text: "Node: Studio · app 1.0"},
		},
		{
			name:    "keyed by text, trimmed",
			events:  []schemas.SystemEventParams{{Text: "  Backup finished  "}},
			wantKey: "backup finished",
			want:    schemas.PresenceEntry{Text: "Backup finished"},
		},
		{
			name: "explicit params win over parsed values",
			events: []schemas.SystemEventParams{{
				Text:             "Node: h1 (1.1.1.1) · app 1 · last input 9s ago · mode ui · reason periodic",
				Host:             "h2",
				Version:          "2",
				Reason:           "manual",
				LastInputSeconds: i64(3),
				Tags:             []string{"a", "b"},
			}},
			wantKey: "h2",
			want: schemas.PresenceEntry{Host: "h2", IP: "1.1.1.1", Version: "2", Mode: "ui", Reason: "manual",
				LastInputSeconds: i64(3), Tags: []string{"a", "b"},
				Text: "Node: h1 (1.1.1.1) · app 1 · last input 9s ago · mode ui · reason periodic"},
		},
		{
			name: "same text differently cased is one entry; later values win, known ones stay",
			events: []schemas.SystemEventParams{
				{Text: "Node: mac (10.0.0.9) · app 1 · mode ui"},
				{Text: "Node: MAC · app 2"},
			},
			wantKey: "mac",
			want:    schemas.PresenceEntry{Host: "MAC", IP: "10.0.0.9", Version: "2", Mode: "ui", Text: "Node: MAC · app 2"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := testRegistry(t, Config{})
			now := t0
			for _, p := range tt.events {
				now = now.Add(time.Second)
				mustEvent(t, r, p, now)
			}
			if r.entries.Len() != 1 {
				t.Fatalf("entries = %d, want 1: %v", r.entries.Len(), dump(r))
			}
			rec, ok := r.entries.Get(tt.wantKey, now)
			if !ok {
				t.Fatalf("no entry under key %q: %v", tt.wantKey, dump(r))
			}
			want := tt.want
			want.Ts = now.UnixMilli()
			if !reflect.DeepEqual(*rec, want) {
				t.Errorf("entry\n got %+v\nwant %+v", *rec, want)
			}
		})
	}
}

func TestSystemEventInvalid(t *testing.T) {
	tests := []struct {
		name string
		p    schemas.SystemEventParams
		msg  string
	}{
		{"missing text", schemas.SystemEventParams{InstanceID: "x"}, "text required"},
		{"blank text", schemas.SystemEventParams{Text: " \t\n "}, "text required"},
		{"negative last input", schemas.SystemEventParams{Text: "hi", LastInputSeconds: i64(-1)}, "lastInputSeconds must be an integer between 0 and 1000000000"},
		{"last input over 10^9", schemas.SystemEventParams{Text: "hi", LastInputSeconds: i64(1e9 + 1)}, "lastInputSeconds must be an integer between 0 and 1000000000"},
		{"empty tag", schemas.SystemEventParams{Text: "hi", Tags: []string{"a", " "}}, "tags[1] must not be empty"},
		// SPEC §6.4 limits: the message names the field and the limit, never the value.
		{"200 KB text", schemas.SystemEventParams{Text: strings.Repeat("A", 200<<10)}, "text must be at most 4096 characters (after trimming)"},
		{"4097 characters", schemas.SystemEventParams{Text: strings.Repeat("é", 4097)}, "text must be at most 4096 characters (after trimming)"},
		{"long host", schemas.SystemEventParams{Text: "hi", Host: strings.Repeat("h", 257)}, "host must be at most 256 characters"},
		{"long instanceId", schemas.SystemEventParams{Text: "hi", InstanceID: strings.Repeat("i", 257)}, "instanceId must be at most 256 characters"},
		{"long ip", schemas.SystemEventParams{Text: "hi", IP: strings.Repeat("1", 257)}, "ip must be at most 256 characters"},
		{"long mode", schemas.SystemEventParams{Text: "hi", Mode: strings.Repeat("m", 257)}, "mode must be at most 256 characters"},
		{"long version", schemas.SystemEventParams{Text: "hi", Version: strings.Repeat("v", 257)}, "version must be at most 256 characters"},
		{"long reason", schemas.SystemEventParams{Text: "hi", Reason: strings.Repeat("r", 257)}, "reason must be at most 256 characters"},
		{"17 tags", schemas.SystemEventParams{Text: "hi", Tags: strings.Split(strings.Repeat("t,", 16)+"t", ",")}, "tags must have at most 16 items"},
		{"long tag", schemas.SystemEventParams{Text: "hi", Tags: []string{"ok", strings.Repeat("t", 65)}}, "tags[1] must be at most 64 characters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := testRegistry(t, Config{})
			err := r.systemEvent(tt.p, t0)
			var werr *wire.Error
			if !errors.As(err, &werr) || werr.Code != wire.CodeInvalidRequest || werr.Message != tt.msg {
				t.Fatalf("err = %v, want %s %q", err, wire.CodeInvalidRequest, tt.msg)
			}
			if r.entries.Len() != 0 || len(r.queue) != 0 {
				t.Errorf("invalid event changed state: entries %v queue %v", dump(r), r.queue)
			}
		})
	}
}

// TestSystemEventAtTheLimits: values exactly at the SPEC §6.4 limits are accepted; the
// text is measured after trimming.
func TestSystemEventAtTheLimits(t *testing.T) {
	r := testRegistry(t, Config{})
	tags := strings.Split(strings.Repeat(strings.Repeat("t", 64)+",", 15)+strings.Repeat("t", 64), ",")
	p := schemas.SystemEventParams{Text: "  " + strings.Repeat("é", 4096) + "\n", Host: strings.Repeat("h", 256),
		LastInputSeconds: i64(1e9), Tags: tags}
	if err := r.systemEvent(p, t0); err != nil {
		t.Fatalf("at the limits: %v", err)
	}
}

func TestClientConnectAndEventDedupeCaseInsensitive(t *testing.T) {
	r := testRegistry(t, Config{})
	mustClient(t, r, wire.ClientPresence{Key: "Mac-ABC", Event: "connect", InstanceID: "Mac-ABC",
		Host: "Peter's Mac", IP: "10.0.0.7", Version: "1.4.0", Mode: "ui"}, t0)
	mustEvent(t, r, schemas.SystemEventParams{Text: "Node: peters-mac · last input 12s ago", InstanceID: "mac-abc"},
		t0.Add(time.Second))

	got := others(r.list(t0.Add(2 * time.Second)))
	want := []schemas.PresenceEntry{{
		Host: "peters-mac", IP: "10.0.0.7", Version: "1.4.0", Mode: "ui", Reason: "connect",
		LastInputSeconds: i64(12), Text: "Node: peters-mac · last input 12s ago",
		Ts: t0.Add(time.Second).UnixMilli(), InstanceID: "mac-abc",
	}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("list\n got %+v\nwant %+v", got, want)
	}
}

func TestClientPresence(t *testing.T) {
	connect := wire.ClientPresence{Key: "conn-1", Event: "connect", Host: "webchat", IP: "10.0.0.5", Version: "2.0", Mode: "webchat"}
	tests := []struct {
		name    string
		reports []wire.ClientPresence
		want    schemas.PresenceEntry
	}{
		{
			name:    "connect",
			reports: []wire.ClientPresence{connect},
			want:    schemas.PresenceEntry{Host: "webchat", IP: "10.0.0.5", Version: "2.0", Mode: "webchat", Reason: "connect"},
		},
		{
			name:    "disconnect keeps the entry",
			reports: []wire.ClientPresence{connect, {Key: "CONN-1", Event: "disconnect"}},
			want:    schemas.PresenceEntry{Host: "webchat", IP: "10.0.0.5", Version: "2.0", Mode: "webchat", Reason: "disconnect"},
		},
		{
			name: "reconnect without ip keeps the known ip",
			reports: []wire.ClientPresence{connect,
				{Key: "conn-1", Event: "connect", Host: "webchat", Version: "2.1", Mode: "webchat"}},
			want: schemas.PresenceEntry{Host: "webchat", IP: "10.0.0.5", Version: "2.1", Mode: "webchat", Reason: "connect"},
		},
		{
			name:    "disconnect of an unknown client records it",
			reports: []wire.ClientPresence{{Key: "gone", Event: "disconnect", Host: "cli-box", Mode: "ui"}},
			want:    schemas.PresenceEntry{Host: "cli-box", Mode: "ui", Reason: "disconnect"},
		},
		{
			name:    "instanceId stands in for a missing key",
			reports: []wire.ClientPresence{{Event: "connect", InstanceID: "Inst-9", Host: "mac"}},
			want:    schemas.PresenceEntry{Host: "mac", Reason: "connect", InstanceID: "Inst-9"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := testRegistry(t, Config{})
			now := t0
			for _, cp := range tt.reports {
				now = now.Add(time.Second)
				mustClient(t, r, cp, now)
			}
			got := others(r.list(now))
			want := tt.want
			want.Ts = now.UnixMilli()
			if !reflect.DeepEqual(got, []schemas.PresenceEntry{want}) {
				t.Errorf("list\n got %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestClientPresenceInvalid(t *testing.T) {
	tests := []struct {
		name string
		cp   wire.ClientPresence
	}{
		{"unknown event", wire.ClientPresence{Key: "k", Event: "hello"}},
		{"missing event", wire.ClientPresence{Key: "k"}},
		{"missing key", wire.ClientPresence{Event: "connect", Host: "h"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := testRegistry(t, Config{})
			err := r.client(tt.cp, t0)
			var werr *wire.Error
			if !errors.As(err, &werr) || werr.Code != wire.CodeInvalidRequest {
				t.Fatalf("err = %v, want %s", err, wire.CodeInvalidRequest)
			}
			if r.entries.Len() != 0 {
				t.Errorf("invalid report changed entries: %v", dump(r))
			}
		})
	}
}

func TestIPNeverErasedByEmptyValue(t *testing.T) {
	r := testRegistry(t, Config{})
	mustClient(t, r, wire.ClientPresence{Key: "i1", Event: "connect", IP: "10.1.1.1"}, t0)
	mustClient(t, r, wire.ClientPresence{Key: "i1", Event: "connect", IP: ""}, t0.Add(time.Second))
	mustEvent(t, r, schemas.SystemEventParams{Text: "Node: box · mode ui", InstanceID: "I1"}, t0.Add(2*time.Second))
	mustClient(t, r, wire.ClientPresence{Key: "i1", Event: "disconnect"}, t0.Add(3*time.Second))
	got := others(r.list(t0.Add(3 * time.Second)))
	if len(got) != 1 || got[0].IP != "10.1.1.1" {
		t.Fatalf("list = %+v, want one entry with ip 10.1.1.1", got)
	}
}

func TestExpiry(t *testing.T) {
	ttl := 5 * time.Minute
	tests := []struct {
		name        string
		at          time.Duration // after the last update
		wantExpired bool
	}{
		{"just updated", 0, false},
		{"one ms before the TTL", ttl - time.Millisecond, false},
		{"at the TTL", ttl, false},
		{"one ms after the TTL", ttl + time.Millisecond, true},
		{"an hour later", time.Hour, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := testRegistry(t, Config{TTL: ttl})
			mustClient(t, r, wire.ClientPresence{Key: "a", Event: "connect"}, t0.Add(-time.Minute))
			mustClient(t, r, wire.ClientPresence{Key: "a", Event: "connect"}, t0) // refreshes
			now := t0.Add(tt.at)
			if got := r.expire(now); got != tt.wantExpired {
				t.Errorf("expire = %v, want %v", got, tt.wantExpired)
			}
			if n := len(others(r.list(now))); n != boolInt(!tt.wantExpired) {
				t.Errorf("entries after expire = %d", n)
			}
			if r.expire(now) {
				t.Error("second expire reported a change")
			}
		})
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestSelfEntry(t *testing.T) {
	r := testRegistry(t, Config{Host: "gw-host", IP: "192.168.1.2", Version: "0.9.0", SelfKey: "GW"})
	self := func(now time.Time) schemas.PresenceEntry {
		t.Helper()
		for _, e := range r.list(now) {
			if e.Mode == modeGateway && e.Reason == reasonSelf {
				return e
			}
		}
		t.Fatal("self entry missing")
		return schemas.PresenceEntry{}
	}
	want := schemas.PresenceEntry{Host: "gw-host", IP: "192.168.1.2", Version: "0.9.0", Mode: "gateway",
		Reason: "self", Text: "Gateway: gw-host (192.168.1.2) · app 0.9.0 · mode gateway · reason self"}

	later := t0.Add(365 * 24 * time.Hour)
	if r.expire(later) {
		t.Error("expire removed something from an empty registry")
	}
	want.Ts = later.UnixMilli()
	if got := self(later); !reflect.DeepEqual(got, want) {
		t.Errorf("self\n got %+v\nwant %+v", got, want)
	}

	// An update under the self key (any case) cannot turn it into something else.
	mustEvent(t, r, schemas.SystemEventParams{Text: "Node: other (1.2.3.4) · mode ui · reason x", InstanceID: "gw"}, later)
	mustClient(t, r, wire.ClientPresence{Key: "Gw", Event: "disconnect", Host: "h"}, later)
	if r.entries.Len() != 0 {
		t.Fatalf("self-key updates created entries: %v", dump(r))
	}
	got := self(later)
	if got.Host != "gw-host" || got.IP != "192.168.1.2" || got.Mode != "gateway" || got.Reason != "self" {
		t.Errorf("self entry changed identity: %+v", got)
	}
	if len(r.list(later)) != 1 {
		t.Errorf("list = %+v, want only the self entry", r.list(later))
	}
}

func TestMaxEntries(t *testing.T) {
	tests := []struct {
		name      string
		max       int
		insert    int
		sameTs    bool
		wantFirst int // index of the oldest surviving insert
	}{
		{"default cap of 200", 0, 201, false, 1},
		{"small cap", 3, 7, false, 4},
		{"equal ts drops the least recently updated", 3, 5, true, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := testRegistry(t, Config{MaxEntries: tt.max})
			limit := tt.max
			if limit == 0 {
				limit = DefaultMaxEntries
			}
			now := t0
			for i := range tt.insert {
				if !tt.sameTs {
					now = now.Add(time.Millisecond)
				}
				mustClient(t, r, wire.ClientPresence{Key: fmt.Sprintf("k%d", i), Event: "connect", Host: fmt.Sprintf("h%d", i)}, now)
			}
			list := r.list(now)
			if len(list) != limit+1 {
				t.Fatalf("list has %d entries, want %d plus self", len(list), limit)
			}
			if list[0].Reason != reasonSelf {
				t.Errorf("first entry = %+v, want the self entry", list[0])
			}
			got := others(list)
			for i, e := range got {
				wantHost := fmt.Sprintf("h%d", tt.insert-1-i)
				if e.Host != wantHost {
					t.Fatalf("entry %d host = %q, want %q (list %+v)", i, e.Host, wantHost, got)
				}
			}
			if last := got[len(got)-1].Host; last != fmt.Sprintf("h%d", tt.wantFirst) {
				t.Errorf("oldest kept = %q, want h%d", last, tt.wantFirst)
			}
		})
	}
}

func TestListNewestFirst(t *testing.T) {
	r := testRegistry(t, Config{})
	mustClient(t, r, wire.ClientPresence{Key: "b", Event: "connect", Host: "b"}, t0.Add(2*time.Second))
	mustClient(t, r, wire.ClientPresence{Key: "a", Event: "connect", Host: "a"}, t0.Add(1*time.Second))
	mustClient(t, r, wire.ClientPresence{Key: "c", Event: "connect", Host: "c"}, t0.Add(3*time.Second))
	// refreshing a moves it to the front
	mustEvent(t, r, schemas.SystemEventParams{Text: "Node: a"}, t0.Add(4*time.Second))

	list := r.list(t0.Add(5 * time.Second))
	var hosts []string
	for _, e := range list {
		hosts = append(hosts, e.Host)
	}
	want := []string{"", "a", "c", "b"} // self (no host configured) stamped now
	if !reflect.DeepEqual(hosts, want) {
		t.Fatalf("hosts = %q, want %q", hosts, want)
	}
	for i := 1; i < len(list); i++ {
		if list[i-1].Ts < list[i].Ts {
			t.Errorf("list not newest first at %d: %d < %d", i, list[i-1].Ts, list[i].Ts)
		}
	}
	// list returns copies
	list[1].Tags = append(list[1].Tags, "mutated")
	list[1].Host = "mutated"
	if got := r.list(t0.Add(5 * time.Second)); got[1].Host != "a" || len(got[1].Tags) != 0 {
		t.Errorf("list shares memory with the registry: %+v", got[1])
	}
}

func TestQueue(t *testing.T) {
	tests := []struct {
		name  string
		max   int
		texts []string
		want  []string
	}{
		{"keeps order", 0, []string{"a", "b", "c"}, []string{"a", "b", "c"}},
		{"consecutive duplicate skipped", 0, []string{"a", "a", "b", " a ", "a"}, []string{"a", "b", "a"}},
		{"cap drops oldest", 3, []string{"1", "2", "3", "4", "5"}, []string{"3", "4", "5"}},
		{"default cap of 20", 0, numbered(25), numbered(25)[5:]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := testRegistry(t, Config{MaxQueue: tt.max})
			for i, text := range tt.texts {
				mustEvent(t, r, schemas.SystemEventParams{Text: text}, t0.Add(time.Duration(i)*time.Second))
			}
			if got := r.peekQueue(); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("peek = %q, want %q", got, tt.want)
			}
			if got := r.drainQueue(); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("drain = %q, want %q", got, tt.want)
			}
			if got := r.peekQueue(); got == nil || len(got) != 0 {
				t.Fatalf("peek after drain = %#v, want empty non-nil", got)
			}
			// after a drain the last text may be queued again
			mustEvent(t, r, schemas.SystemEventParams{Text: tt.want[len(tt.want)-1]}, t0.Add(time.Hour))
			if got := r.peekQueue(); len(got) != 1 {
				t.Errorf("queue after drain and re-add = %q", got)
			}
		})
	}
}

func numbered(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("event %d", i)
	}
	return out
}
