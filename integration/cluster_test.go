//go:build integration

package integration

import (
	"context"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/clawdis/clawdis/edge/client"
	"github.com/clawdis/clawdis/schemas"
	"github.com/clawdis/clawdis/services/telegram/telegramtest"
)

// clusterFile is the override of docker-compose.yml that runs three bus nodes.
const clusterFile = "deploy/compose/cluster.yml"

// busNodes are the bus services of the cluster stack; each is also its node's server name.
var busNodes = []string{"bus", "bus2", "bus3"}

// The names of the replicated stream, consumer and bucket (services/internal/jsstore,
// services/autoreply), as an operator sees them.
const (
	inboundStream     = "CLAWDIS_INBOUND"
	autoreplyConsumer = "autoreply"
	idemStream        = "KV_clawdis_idem"
)

// TestBusClusterLosesANode runs the stack on a three-node bus cluster with bus.replicas 3
// (deploy/compose/cluster.yml, as a project of its own next to the shared stack). Twelve
// DMs arrive; once the first is answered, the node that leads the inbound stream is killed
// (SIGKILL) while the others are on their way, and five more arrive with one node of three
// gone: the two nodes left elect a new leader and store them (the telegram service confirms
// them to the Bot API), and every DM is answered exactly once. The node then starts again and
// catches up with the stream, its consumer and the idempotency bucket, and a DM after that is
// answered too.
func TestBusClusterLosesANode(t *testing.T) {
	base := needStack(t) // the images are built, Docker and compose answer
	s, err := newStack(base.compose, base.root, base.project+"-cluster", "docker-compose.yml", clusterFile)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			s.dumpLogs()
		}
		if *keepStack {
			t.Logf("cluster stack left running: %s", strings.Join(s.composeArgs(), " "))
			return
		}
		if err := s.down(); err != nil {
			t.Errorf("tearing the cluster stack down: %v", err)
		}
	})
	began := time.Now()
	if err := s.up(2 * time.Minute); err != nil {
		t.Fatal(err)
	}
	t.Logf("cluster stack up and healthy in %s", time.Since(began).Round(time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	c := s.dial(t, client.Options{Client: schemas.ClientInfo{Name: "it-cluster", Mode: "cli"}})
	js := s.jetStream(t)

	// What the services declared is replicated on all three nodes.
	info := requireReplicated(t, ctx, js, "")
	victim := info.Cluster.Leader
	t.Logf("%s leads %s (replicas %v); killing it", victim, inboundStream, peers(info.Cluster))
	t.Cleanup(func() { _, _ = s.run(time.Minute, "start", victim) })

	// Twelve DMs queue up in the main session; the node goes when the first is answered, with
	// the others on their way through the stream, autoreply and the agent.
	victimID := s.containerID(t, victim)
	dms := dmBatch(17, "Sent across the loss of a bus node")
	for _, d := range dms[:12] {
		s.inject(t, d)
	}
	s.waitSent(t, ctx, dms[0].chat, func(m telegramtest.Sent) bool { return strings.Contains(m.Text, dms[0].text) })
	if out, err := exec.CommandContext(ctx, "docker", "kill", victimID).CombinedOutput(); err != nil {
		t.Fatalf("docker kill %s: %v: %s", victim, err, out)
	}
	if sent, err := s.fakeSent(ctx); err == nil {
		_, answers := repliesTo(sent, dms[:12])
		t.Logf("%s killed with %d of the first 12 DMs answered", victim, count(answers, func(n int) bool { return n > 0 }))
	}
	for _, d := range dms[12:] {
		s.inject(t, d)
	}
	s.waitConfirmed(t, ctx) // stored by the two nodes left
	s.requireAnsweredOnce(t, ctx, dms)
	info = streamInfo(t, ctx, js, inboundStream)
	if info.Cluster == nil || info.Cluster.Leader == "" || info.Cluster.Leader == victim {
		t.Fatalf("%s after the kill of %s: leader %+v", inboundStream, victim, info.Cluster)
	}
	t.Logf("%s now led by %s", inboundStream, info.Cluster.Leader)

	s.composeT(t, "start", victim)
	requireReplicated(t, ctx, js, victim)
	waitHealth(t, ctx, s, c, healthOK)
	after := dmBatch(1, "Sent after the bus node returned")
	s.inject(t, after[0])
	s.requireAnsweredOnce(t, ctx, after)
	requireSameConnection(t, c)
}

// jetStream connects the test to the cluster's bus nodes, at their container addresses (the
// bus is not published; a Linux host reaches its containers' bridge addresses).
func (s *stack) jetStream(t *testing.T) jetstream.JetStream {
	t.Helper()
	var urls []string
	for _, n := range busNodes {
		out, err := exec.Command("docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}",
			s.containerID(t, n)).Output()
		if err != nil {
			t.Fatalf("the address of %s: %v", n, err)
		}
		for _, ip := range strings.Fields(string(out)) {
			urls = append(urls, "nats://"+ip+":4222")
		}
	}
	nc, err := nats.Connect(strings.Join(urls, ","), nats.Token(s.busToken), nats.Name("it-cluster-probe"),
		nats.MaxReconnects(-1), nats.ReconnectWait(250*time.Millisecond))
	if err != nil {
		t.Fatalf("connect to the bus nodes %v: %v", urls, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// requireReplicated waits until the inbound stream, autoreply's consumer of it and the
// idempotency bucket each have three replicas, a leader and both followers current, and
// returns the inbound stream's info. With returned set, that node must be among the current
// followers or the leader (it came back and caught up).
func requireReplicated(t *testing.T, ctx context.Context, js jetstream.JetStream, returned string) *jetstream.StreamInfo {
	t.Helper()
	var last string
	for {
		info, why := replicated(ctx, js, returned)
		if why == "" {
			return info
		}
		last = why
		select {
		case <-ctx.Done():
			t.Fatalf("the streams are not replicated on all three nodes: %s", last)
		case <-time.After(250 * time.Millisecond): // the cluster is other processes: poll it
		}
	}
}

// replicated is the inbound stream's info, or why the replication is not complete yet.
func replicated(ctx context.Context, js jetstream.JetStream, returned string) (*jetstream.StreamInfo, string) {
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var inbound *jetstream.StreamInfo
	for _, name := range []string{inboundStream, idemStream} {
		st, err := js.Stream(rctx, name)
		if err != nil {
			return nil, fmt.Sprintf("stream %s: %v", name, err)
		}
		info := st.CachedInfo()
		if why := fullCluster(info.Config.Replicas, info.Cluster, returned); why != "" {
			return nil, "stream " + name + ": " + why
		}
		if name == inboundStream {
			inbound = info
			cons, err := st.Consumer(rctx, autoreplyConsumer)
			if err != nil {
				return nil, fmt.Sprintf("consumer %s: %v", autoreplyConsumer, err)
			}
			ci := cons.CachedInfo()
			// A consumer's replicas default to its stream's (Config.Replicas 0).
			if why := fullCluster(max(ci.Config.Replicas, info.Config.Replicas), ci.Cluster, returned); why != "" {
				return nil, "consumer " + autoreplyConsumer + ": " + why
			}
		}
	}
	return inbound, ""
}

// fullCluster says what is missing for three replicas, a leader and two current followers
// (one of them returned, when set), or "".
func fullCluster(replicas int, ci *jetstream.ClusterInfo, returned string) string {
	switch {
	case replicas != 3:
		return fmt.Sprintf("%d replicas configured, want 3", replicas)
	case ci == nil || ci.Leader == "":
		return "no leader"
	case len(ci.Replicas) != 2:
		return fmt.Sprintf("leader %s with followers %v, want two", ci.Leader, peers(ci))
	}
	var current []string
	for _, r := range ci.Replicas {
		if r.Current && !r.Offline {
			current = append(current, r.Name)
		}
	}
	if len(current) != 2 {
		return fmt.Sprintf("leader %s, followers %v, current only %v", ci.Leader, peers(ci), current)
	}
	if returned != "" && ci.Leader != returned && !slices.Contains(current, returned) {
		return fmt.Sprintf("%s is neither the leader nor a current follower (leader %s, current %v)", returned, ci.Leader, current)
	}
	return ""
}

// peers renders a cluster's leader and followers for messages.
func peers(ci *jetstream.ClusterInfo) string {
	if ci == nil {
		return "none"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "leader=%s", ci.Leader)
	for _, r := range ci.Replicas {
		fmt.Fprintf(&b, " %s(current=%v offline=%v lag=%d)", r.Name, r.Current, r.Offline, r.Lag)
	}
	return b.String()
}

// streamInfo asks for a stream's current info.
func streamInfo(t *testing.T, ctx context.Context, js jetstream.JetStream, name string) *jetstream.StreamInfo {
	t.Helper()
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	st, err := js.Stream(rctx, name)
	if err != nil {
		t.Fatalf("stream %s: %v", name, err)
	}
	return st.CachedInfo()
}
