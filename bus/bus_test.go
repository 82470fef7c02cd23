package bus

import (
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/clawdis/clawdis/bus/subject"
	"github.com/clawdis/clawdis/bus/wire"
)

func startBus(t *testing.T, cfg Config) *Bus {
	t.Helper()
	b := New(cfg, slog.New(slog.DiscardHandler))
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Shutdown)
	return b
}

func TestTCPListenerWithToken(t *testing.T) {
	b := startBus(t, Config{Listen: "127.0.0.1:0", Token: "s3cret"})
	url := b.ClientURL()
	if !strings.HasPrefix(url, "nats://127.0.0.1:") {
		t.Fatalf("ClientURL = %q", url)
	}
	if _, err := nats.Connect(url, nats.Token("wrong")); err == nil {
		t.Fatal("a wrong token was accepted")
	}
	remote, err := NewRemote(url, "s3cret", slog.New(slog.DiscardHandler)).Connect("remote")
	if err != nil {
		t.Fatal(err)
	}
	defer remote.Close()
	local, err := b.Connect("local")
	if err != nil {
		t.Fatal(err)
	}
	defer local.Close()
	sub, err := local.Subscribe("gw.v1.req.test", func(m *nats.Msg) { _ = m.Respond([]byte("pong")) })
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := local.Flush(); err != nil {
		t.Fatal(err)
	}
	msg, err := remote.Request("gw.v1.req.test", nil, 5*time.Second)
	if err != nil || string(msg.Data) != "pong" {
		t.Fatalf("request over TCP: %v %+v", err, msg)
	}
}

func TestOptionErrors(t *testing.T) {
	for _, tt := range []struct {
		cfg  Config
		want string
	}{
		{Config{Listen: "nope"}, "bus listen"},
		{Config{Listen: "127.0.0.1:99999"}, "bad port"},
		{Config{ClusterListen: "127.0.0.1:0"}, "needs a client listener"},
		{Config{Routes: []string{"nats://127.0.0.1:1"}}, "need a cluster listener"},
		{Config{Listen: "127.0.0.1:0", ClusterListen: "127.0.0.1:0", Routes: []string{"::"}}, "not a nats://host:port URL"},
		{Config{Listen: "127.0.0.1:0", ClusterListen: "127.0.0.1:0", StoreDir: t.TempDir()}, "JetStream cluster node needs routes"},
	} {
		err := New(tt.cfg, slog.New(slog.DiscardHandler)).Start()
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: %v, want %q", tt.cfg, err, tt.want)
		}
	}
}

// TestClusterRoutesRequests: a client on node B reaches a responder on node A.
func TestClusterRoutesRequests(t *testing.T) {
	a := startBus(t, Config{ServerName: "a", Listen: "127.0.0.1:0", ClusterListen: "127.0.0.1:0"})
	b := startBus(t, Config{ServerName: "b", Listen: "127.0.0.1:0", ClusterListen: "127.0.0.1:0", Routes: []string{a.ClusterURL()}})
	onA, err := nats.Connect(a.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer onA.Close()
	sub, err := onA.Subscribe("gw.v1.req.far", func(m *nats.Msg) { _ = m.Respond([]byte("from a")) })
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := onA.Flush(); err != nil {
		t.Fatal(err)
	}
	onB, err := nats.Connect(b.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer onB.Close()
	// The route, and the subscription interest it carries, form asynchronously and NATS
	// offers clients no event for it: until then a request finds no responders, which NATS
	// reports at once. Retry on exactly that, paced by a ticker, within a deadline.
	deadline := time.After(10 * time.Second)
	pace := time.NewTicker(20 * time.Millisecond)
	defer pace.Stop()
	for {
		msg, err := onB.Request("gw.v1.req.far", nil, time.Second)
		if err == nil {
			if string(msg.Data) != "from a" {
				t.Fatalf("answer %q", msg.Data)
			}
			break
		}
		if !errors.Is(err, nats.ErrNoResponders) {
			t.Fatalf("request across the cluster: %v", err)
		}
		select {
		case <-pace.C:
		case <-deadline:
			t.Fatalf("no route carried the request within 10s (routes a=%d b=%d)", a.NumRoutes(), b.NumRoutes())
		}
	}
}

// TestAdvisories: a plain client of the bus hears other clients connect and disconnect, by
// name, on subject.BusConnect and subject.BusDisconnect, on the embedded bus and across a
// cluster route.
func TestAdvisories(t *testing.T) {
	a := startBus(t, Config{ServerName: "a", Listen: "127.0.0.1:0", ClusterListen: "127.0.0.1:0"})
	b := startBus(t, Config{ServerName: "b", Listen: "127.0.0.1:0", ClusterListen: "127.0.0.1:0", Routes: []string{a.ClusterURL()}})
	watcher, err := a.Connect("watcher")
	if err != nil {
		t.Fatal(err)
	}
	defer watcher.Close()
	events := make(chan *nats.Msg, 64)
	sub, err := watcher.ChanSubscribe("gw.v1.evt.bus.*", events)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := watcher.Flush(); err != nil {
		t.Fatal(err)
	}

	// want waits for the advisory of the named client on subj, skipping others (the
	// watcher's own connect advisory may arrive after its subscription).
	want := func(subj, name string) {
		t.Helper()
		timeout := time.After(10 * time.Second)
		for {
			select {
			case m := <-events:
				var ev wire.BusClientEvent
				if err := json.Unmarshal(m.Data, &ev); err != nil {
					t.Fatalf("advisory %s: %v", m.Data, err)
				}
				if m.Subject == subj && ev.Client.Name == name {
					return
				}
			case <-timeout:
				t.Fatalf("no %s advisory for %s", subj, name)
			}
		}
	}
	local, err := a.Connect("presence")
	if err != nil {
		t.Fatal(err)
	}
	want(subject.BusConnect, "presence")
	local.Close()
	want(subject.BusDisconnect, "presence")

	// Across the route: interest forms asynchronously, so connect again until one arrives.
	deadline := time.After(10 * time.Second)
	pace := time.NewTicker(50 * time.Millisecond)
	defer pace.Stop()
	for {
		far, err := nats.Connect(b.ClientURL(), nats.Name("far"))
		if err != nil {
			t.Fatal(err)
		}
		far.Close()
		select {
		case m := <-events:
			var ev wire.BusClientEvent
			if json.Unmarshal(m.Data, &ev) == nil && ev.Client.Name == "far" {
				return
			}
		case <-pace.C:
		case <-deadline:
			t.Fatal("no advisory crossed the cluster route")
		}
	}
}

// TestJetStreamStore: with a store directory the bus runs JetStream; a stream and its
// messages are still there after a restart on the same directory; a store that cannot be
// created fails Start instead of running without JetStream.
func TestJetStreamStore(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "bus")
	ctx := t.Context()
	b := New(Config{StoreDir: dir}, slog.New(slog.DiscardHandler))
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	if !b.JetStream() {
		t.Fatal("JetStream not running with a store directory")
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("store dir: %v %v, want mode 0700", fi.Mode(), err)
	}
	nc, err := b.Connect("js")
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"gw.v1.evt.test.>"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "gw.v1.evt.test.a", []byte("kept")); err != nil {
		t.Fatal(err)
	}
	nc.Close()
	b.Shutdown()

	b = startBus(t, Config{StoreDir: dir})
	nc, err = b.Connect("js")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if js, err = jetstream.New(nc); err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(ctx, "T")
	if err != nil {
		t.Fatalf("stream after restart: %v", err)
	}
	m, err := s.GetMsg(ctx, 1)
	if err != nil || string(m.Data) != "kept" {
		t.Fatalf("message after restart: %v %v", m, err)
	}

	plain := startBus(t, Config{})
	if plain.JetStream() {
		t.Error("JetStream running without a store directory")
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	err = New(Config{StoreDir: file}, slog.New(slog.DiscardHandler)).Start()
	if err == nil || !strings.Contains(err.Error(), "JetStream store") {
		t.Fatalf("Start with a file as the store = %v, want an error naming the store", err)
	}
}

// BenchmarkStart measures Start until the bus accepts connections, without JetStream and
// with it (a fresh store each time, and a store reopened with the gateway's streams in it).
func BenchmarkStart(b *testing.B) {
	log := slog.New(slog.DiscardHandler)
	for _, bc := range []struct {
		name  string
		store func() string
	}{
		{"plain", func() string { return "" }},
		{"jetstream-new", func() string { return b.TempDir() }},
		{"jetstream-reopen", func() func() string { dir := b.TempDir(); return func() string { return dir } }()},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				bus := New(Config{StoreDir: bc.store()}, log)
				if err := bus.Start(); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				bus.Shutdown()
				b.StartTimer()
			}
		})
	}
}
