package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/clawdis/clawdis/edge/client"
	"github.com/clawdis/clawdis/schemas"
)

func TestPlanBus(t *testing.T) {
	expected := []string{"presence", "health", "sessions", "agent"}
	env := func(string) string { return "" }
	for _, tt := range []struct {
		name    string
		bf      busFlags
		inProc  []string
		wantErr string
		usage   bool
	}{
		{"default", busFlags{}, expected, "", false},
		{"without", busFlags{without: []string{"presence"}}, []string{"health", "sessions", "agent"}, "", false},
		{"only", busFlags{only: []string{"agent", "sessions"}}, []string{"sessions", "agent"}, "", false},
		{"only and without", busFlags{only: []string{"agent"}, without: []string{"presence"}}, nil, "exclude each other", true},
		{"unknown", busFlags{without: []string{"fax"}}, nil, `unknown service "fax"`, true},
		{"listen and nats-url", busFlags{listen: "127.0.0.1:4222", natsURL: "nats://x:4222"}, nil, "exclude each other", true},
		{"loopback listen", busFlags{listen: "127.0.0.1:4222"}, expected, "", false},
		{"public listen without token", busFlags{listen: "0.0.0.0:4222"}, nil, "without a bus token", false},
		{"public listen with token", busFlags{listen: "0.0.0.0:4222", token: "t"}, expected, "", false},
		{"bad listen", busFlags{listen: "4222"}, nil, "want host:port", true},
		{"only none: the edge alone", busFlags{only: []string{"none"}, natsURL: "nats://bus:4222"}, nil, "", false},
		{"only none with a service", busFlags{only: []string{"none", "agent"}, natsURL: "nats://bus:4222"}, nil, "cannot be combined", true},
		{"only none on a private bus", busFlags{only: []string{"none"}}, nil, "needs --nats-url or --bus-listen", true},
		{"without none", busFlags{without: []string{"none"}}, nil, `unknown service "none"`, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, err := planBus(tt.bf, expected, env)
			if tt.wantErr != "" {
				var ue usageError
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || isUsage(err, &ue) != tt.usage {
					t.Fatalf("err = %v, want %q (usage error %v)", err, tt.wantErr, tt.usage)
				}
				return
			}
			if err != nil || !slices.Equal(p.inProcess, tt.inProc) || !slices.Equal(p.expected, expected) {
				t.Fatalf("plan = %+v, %v; want in-process %v", p, err, tt.inProc)
			}
		})
	}
	if p, _ := planBus(busFlags{listen: "0.0.0.0:1"}, nil, func(k string) string {
		if k == "CLAWDIS_BUS_TOKEN" {
			return "from-env"
		}
		return ""
	}); p.token != "from-env" {
		t.Errorf("bus token from the environment: %q", p.token)
	}
}

func isUsage(err error, ue *usageError) bool {
	u, ok := err.(usageError)
	if ok {
		*ue = u
	}
	return ok
}

// presenceView is what system-presence shows, without the timestamps.
func presenceView(t *testing.T, url string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c := dialClient(t, client.Options{URL: url, Client: schemas.ClientInfo{Name: "split-test", Version: "1", Platform: "linux", Mode: "cli"}})
	if _, err := c.Request(ctx, schemas.MethodSystemEvent, map[string]any{"text": "Node: desk (10.0.0.9) · app 1.2.3 · last input 4s ago · mode node · reason beacon"}); err != nil {
		t.Fatalf("system-event: %v", err)
	}
	raw, err := c.Request(ctx, schemas.MethodSystemPresence, nil)
	if err != nil {
		t.Fatalf("system-presence: %v", err)
	}
	var list []schemas.PresenceEntry
	if err := json.Unmarshal(raw, &list); err != nil {
		t.Fatalf("system-presence payload %s: %v", raw, err)
	}
	var out []string
	for _, e := range list {
		e.Ts = 0
		b, _ := json.Marshal(e)
		out = append(out, string(b))
	}
	slices.Sort(out)
	return out
}

// TestServiceInItsOwnProcess: presence run as `clawdis service presence` over TCP answers
// the edge exactly as the in-process one does; the gateway reports it in health; it stops
// cleanly on SIGTERM.
func TestServiceInItsOwnProcess(t *testing.T) {
	requireLinux(t)
	exe, _ := os.Executable()
	home := t.TempDir()

	whole := startGateway(t, home, t.TempDir(), freePort(t))
	whole.waitListening()
	want := presenceView(t, whole.url())
	stopGateway(t, whole)

	split := startGateway(t, home, t.TempDir(), freePort(t), "--bus-listen", "127.0.0.1:0", "--without", "presence")
	natsURL, _ := split.waitLog("bus listening")["nats_url"].(string)
	split.waitListening()
	svc := startProc(t, home, 0, exe, "service", "presence", "--nats-url", natsURL, "--state-dir", t.TempDir(), "--log-format", "json")
	svc.waitLog("service running")
	if got := presenceView(t, split.url()); !slices.Equal(got, want) {
		t.Errorf("split presence answers\n%v\nwant (in-process)\n%v", got, want)
	}
	if err := svc.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := svc.waitExit(); code != 0 {
		t.Errorf("service exited %d after SIGTERM\n%s", code, svc.stderr.String())
	}
	stopGateway(t, split)
}

// TestClusterOfBusNodes: two `clawdis bus` nodes form a cluster; the gateway uses node A,
// the presence service node B, and a client of the gateway is answered across the route.
func TestClusterOfBusNodes(t *testing.T) {
	requireLinux(t)
	exe, _ := os.Executable()
	home := t.TempDir()
	// JetStream cluster nodes know their routes up front: each lists both.
	clusterA, clusterB := "127.0.0.1:"+strconv.Itoa(freePort(t)), "127.0.0.1:"+strconv.Itoa(freePort(t))
	routes := "nats://" + clusterA + ",nats://" + clusterB
	node := func(name, cluster string) *gatewayProc {
		return startProc(t, home, 0, exe, "bus", "--listen", "127.0.0.1:0", "--cluster-listen", cluster, "--name", name,
			"--routes", routes, "--store-dir", filepath.Join(t.TempDir(), "bus"), "--log-format", "json")
	}
	a, b := node("a", clusterA), node("b", clusterB)
	recA, recB := a.waitLog("bus listening"), b.waitLog("bus listening")

	gw := startGateway(t, home, t.TempDir(), freePort(t), "--nats-url", recA["nats_url"].(string), "--without", "presence")
	gw.waitListening()
	svc := startProc(t, home, 0, exe, "service", "presence", "--nats-url", recB["nats_url"].(string), "--state-dir", t.TempDir(), "--log-format", "json")
	svc.waitLog("service running")

	c := dialClient(t, client.Options{URL: gw.url(), Client: schemas.ClientInfo{Name: "cluster-test", Version: "1", Platform: "linux", Mode: "cli"}})
	// Interest crosses the route asynchronously and NATS gives clients no event for it; the
	// gateway answers UNAVAILABLE retryable until then, so retry on exactly that.
	deadline := time.After(15 * time.Second)
	pace := time.NewTicker(50 * time.Millisecond)
	defer pace.Stop()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		raw, err := c.Request(ctx, schemas.MethodSystemPresence, nil)
		cancel()
		if err == nil {
			if !strings.Contains(string(raw), `"reason":"self"`) {
				t.Fatalf("system-presence across the cluster: %s", raw)
			}
			break
		}
		var re *client.ResponseError
		if !errors.As(err, &re) || !re.Retryable() {
			t.Fatalf("system-presence: %v", err)
		}
		select {
		case <-pace.C:
		case <-deadline:
			t.Fatalf("no answer across the cluster: %v", err)
		}
	}
	stopGateway(t, gw)
	for _, p := range []*gatewayProc{svc, b, a} {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		if code := p.waitExit(); code != 0 {
			t.Errorf("%v exited %d", p.cmd.Args[1:3], code)
		}
	}
}
