package jsstore

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/clawdis/clawdis/bus"
	"github.com/clawdis/clawdis/bus/bustest"
	"github.com/clawdis/clawdis/bus/subject"
)

// TestEnsureIsIdempotent: creating the streams and the bucket twice leaves one of each with
// the declared limits.
func TestEnsureIsIdempotent(t *testing.T) {
	nc := bustest.New(t).Conn("store")
	ctx := t.Context()
	for range 2 {
		s, err := Inbound(ctx, nc, Config{})
		if err != nil {
			t.Fatal(err)
		}
		cfg := s.CachedInfo().Config
		if cfg.Retention != jetstream.LimitsPolicy || cfg.Duplicates != InboundDuplicates || cfg.MaxAge < cfg.Duplicates ||
			cfg.Replicas != 1 || cfg.Subjects[0] != subject.ProviderInboundAll {
			t.Fatalf("inbound stream config = %+v", cfg)
		}
		r, err := Runs(ctx, nc, Config{})
		if err != nil {
			t.Fatal(err)
		}
		rc := r.CachedInfo().Config
		if rc.Retention != jetstream.WorkQueuePolicy || rc.Duplicates != RunsDuplicates || rc.MaxAge < 24*time.Hour+time.Minute ||
			rc.Discard != jetstream.DiscardNew || rc.MaxBytes != RunsMaxBytes || rc.Subjects[0] != subject.RunsAcceptedAll {
			t.Fatalf("runs stream config = %+v", rc)
		}
		kv, err := Idem(ctx, nc, Config{})
		if err != nil {
			t.Fatal(err)
		}
		st, err := kv.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.TTL() != IdemTTL || st.History() != 1 {
			t.Fatalf("idem bucket ttl %s history %d", st.TTL(), st.History())
		}
	}
}

// TestEnsureRestoresTheDeclaredConfig: a stream, bucket or consumer found with another
// configuration is updated to the declared one.
func TestEnsureRestoresTheDeclaredConfig(t *testing.T) {
	nc := bustest.New(t).Conn("store")
	ctx := t.Context()
	js, _ := jetstream.New(nc)
	changed := InboundConfig(Config{})
	changed.MaxAge = 48 * time.Hour
	if _, err := js.CreateStream(ctx, changed); err != nil {
		t.Fatal(err)
	}
	s, err := Inbound(ctx, nc, Config{})
	if err != nil || s.CachedInfo().Config.MaxAge != InboundMaxAge {
		t.Fatalf("stream after ensure: %v %v", s.CachedInfo().Config.MaxAge, err)
	}
	kvChanged := IdemConfig(Config{})
	kvChanged.TTL = time.Hour
	if _, err := js.CreateKeyValue(ctx, kvChanged); err != nil {
		t.Fatal(err)
	}
	kv, err := Idem(ctx, nc, Config{})
	if err != nil {
		t.Fatal(err)
	}
	if st, err := kv.Status(ctx); err != nil || st.TTL() != IdemTTL {
		t.Fatalf("bucket after ensure: %v %v", st.TTL(), err)
	}
	cc := jetstream.ConsumerConfig{Durable: "c", AckPolicy: jetstream.AckExplicitPolicy, AckWait: time.Minute}
	if _, err := InboundConsumer(ctx, nc, Config{}, cc); err != nil {
		t.Fatal(err)
	}
	cc.AckWait = 2 * time.Minute
	c, err := InboundConsumer(ctx, nc, Config{}, cc)
	if err != nil || c.CachedInfo().Config.AckWait != 2*time.Minute {
		t.Fatalf("consumer after ensure: %v %v", c.CachedInfo().Config.AckWait, err)
	}
}

// TestInboundDedupeOutlivesTheAck: a message id published again after the message was
// consumed and acknowledged is still a duplicate.
func TestInboundDedupeOutlivesTheAck(t *testing.T) {
	nc := bustest.New(t).Conn("store")
	ctx := t.Context()
	s, err := Inbound(ctx, nc, Config{})
	if err != nil {
		t.Fatal(err)
	}
	js, _ := jetstream.New(nc)
	subj, _ := subject.ProviderInbound("telegram")
	ack, err := js.Publish(ctx, subj, []byte("1"), jetstream.WithMsgID("telegram:1:1"))
	if err != nil || ack.Duplicate {
		t.Fatalf("first publish: %+v %v", ack, err)
	}
	c, err := s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "t", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	m, err := c.Next(jetstream.FetchMaxWait(5 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.DoubleAck(ctx); err != nil {
		t.Fatal(err)
	}
	ack, err = js.Publish(ctx, subj, []byte("1"), jetstream.WithMsgID("telegram:1:1"))
	if err != nil || !ack.Duplicate {
		t.Fatalf("publish after the ack: %+v %v, want a duplicate", ack, err)
	}
	info, err := s.Info(ctx)
	if err != nil || info.State.Msgs != 1 {
		t.Fatalf("stream after the duplicate: %+v %v, want the one message", info.State, err)
	}
}

// TestReplicatedSurvivesNodeLoss: on a three-node bus cluster with Replicas 3, the inbound
// stream and the idempotency bucket lose nothing when one node stops while messages flow.
func TestReplicatedSurvivesNodeLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("a three-node JetStream cluster takes seconds to form")
	}
	log := slog.New(slog.DiscardHandler)
	// A JetStream cluster node needs its routes up front: every node lists all three.
	var clusterAddrs, routes []string
	for range 3 {
		a := freeAddr(t)
		clusterAddrs, routes = append(clusterAddrs, a), append(routes, "nats://"+a)
	}
	var nodes []*bus.Bus
	for i := range 3 {
		cfg := bus.Config{ServerName: fmt.Sprintf("n%d", i), Listen: "127.0.0.1:0", ClusterListen: clusterAddrs[i],
			Routes: routes, StoreDir: filepath.Join(t.TempDir(), "bus")}
		b := bus.New(cfg, log)
		if err := b.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(b.Shutdown)
		nodes = append(nodes, b)
	}
	urls := nodes[0].ClientURL() + "," + nodes[1].ClientURL() + "," + nodes[2].ClientURL()
	nc, err := nats.Connect(urls, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cfg := Config{Replicas: 3}
	s, err := Inbound(ctx, nc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if r := s.CachedInfo().Config.Replicas; r != 3 {
		t.Fatalf("replicas = %d", r)
	}
	kv, err := Idem(ctx, nc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	js, _ := jetstream.New(nc)
	subj, _ := subject.ProviderInbound("telegram")
	publish := func(i int) {
		t.Helper()
		id := fmt.Sprintf("telegram:1:%d", i)
		// A publish during the failover may go unanswered; the same id again is harmless.
		for {
			pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
			_, err := js.Publish(pctx, subj, []byte(id), jetstream.WithMsgID(id))
			pcancel()
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("publish %s: %v", id, err)
			}
		}
		for {
			pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
			_, err := kv.Put(pctx, fmt.Sprintf("k%d", i), []byte(id))
			pcancel()
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("put k%d: %v", i, err)
			}
		}
	}
	for i := range 20 {
		publish(i)
	}
	// Stop the stream leader: the hardest node to lose.
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	for _, n := range nodes {
		if info.Cluster != nil && n.Name() == info.Cluster.Leader {
			n.Shutdown()
			stopped = true
		}
	}
	if !stopped {
		t.Fatalf("no node leads the stream: %+v", info.Cluster)
	}
	for i := 20; i < 40; i++ {
		publish(i)
	}
	c, err := s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "check", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for len(got) < 40 {
		b, err := c.Fetch(40, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for m := range b.Messages() {
			got[string(m.Data())] = true
			n++
		}
		if n == 0 {
			t.Fatalf("only %d of 40 messages after losing a node", len(got))
		}
	}
	for i := range 40 {
		e, err := kv.Get(ctx, fmt.Sprintf("k%d", i))
		if err != nil || string(e.Value()) != fmt.Sprintf("telegram:1:%d", i) {
			t.Fatalf("k%d after losing a node: %v", i, err)
		}
	}
}

// freeAddr is a loopback address with a port free right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestInboundDedupeAcrossBusRestart: after a restart of the bus on the same store, a message
// id published before is still a duplicate, whether its message is still waiting or was
// consumed and acknowledged.
func TestInboundDedupeAcrossBusRestart(t *testing.T) {
	dir := t.TempDir()
	b := bustest.NewAt(t, dir)
	nc := b.Conn("store")
	ctx := t.Context()
	s, err := Inbound(ctx, nc, Config{})
	if err != nil {
		t.Fatal(err)
	}
	js, _ := jetstream.New(nc)
	subj, _ := subject.ProviderInbound("telegram")
	for _, id := range []string{"telegram:1:acked", "telegram:1:waiting"} {
		if _, err := js.Publish(ctx, subj, []byte(id), jetstream.WithMsgID(id)); err != nil {
			t.Fatal(err)
		}
	}
	c, err := s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "t", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	m, err := c.Next(jetstream.FetchMaxWait(5 * time.Second))
	if err != nil || string(m.Data()) != "telegram:1:acked" {
		t.Fatalf("first message: %v", err)
	}
	if err := m.DoubleAck(ctx); err != nil {
		t.Fatal(err)
	}
	b.Shutdown()

	nc = bustest.NewAt(t, dir).Conn("store")
	js, _ = jetstream.New(nc)
	for _, id := range []string{"telegram:1:acked", "telegram:1:waiting"} {
		ack, err := js.Publish(ctx, subj, []byte(id), jetstream.WithMsgID(id))
		if err != nil || !ack.Duplicate {
			t.Errorf("%s after the restart: %+v %v, want a duplicate", id, ack, err)
		}
	}
}

// BenchmarkStore measures the store operations on the request path, in process: storing an
// inbound message (with its message id, acknowledged), writing and reading an idempotency
// record, and the start-up check of a declared stream that exists.
func BenchmarkStore(b *testing.B) {
	nc := bustest.New(b).Conn("store")
	ctx := b.Context()
	if _, err := Inbound(ctx, nc, Config{}); err != nil {
		b.Fatal(err)
	}
	kv, err := Idem(ctx, nc, Config{})
	if err != nil {
		b.Fatal(err)
	}
	js, _ := jetstream.New(nc)
	subj, _ := subject.ProviderInbound("telegram")
	data := []byte(`{"provider":"telegram","messageId":"1","chatId":"4242","chatType":"direct","from":"4242","text":"hello there","ts":1}`)
	value := []byte(`{"ok":true,"payload":{"runId":"k","status":"ok","summary":"completed","text":"hello back"},"at":1}`)
	b.Run("inbound-publish", func(b *testing.B) {
		i := 0
		for b.Loop() {
			i++
			if _, err := js.Publish(ctx, subj, data, jetstream.WithMsgID(fmt.Sprintf("telegram:4242:%d", i))); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("idem-put", func(b *testing.B) {
		i := 0
		for b.Loop() {
			i++
			if _, err := kv.Put(ctx, fmt.Sprintf("agent.k%d", i%1000), value); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("idem-get", func(b *testing.B) {
		for b.Loop() {
			if _, err := kv.Get(ctx, "agent.k1"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ensure-existing", func(b *testing.B) {
		for b.Loop() {
			if _, err := Inbound(ctx, nc, Config{}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
