//go:build integration

package integration

import (
	"context"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/clawdis/clawdis/edge/client"
	"github.com/clawdis/clawdis/schemas"
)

// TestGatewayContainerHealthCheck: Docker's own health check of the compose gateway (the
// image's `clawdis gateway health`, run inside a container without a shell) reports healthy.
func TestGatewayContainerHealthCheck(t *testing.T) {
	s := needStack(t)
	id, err := s.run(time.Minute, "ps", "-q", "gateway")
	if err != nil {
		t.Fatal(err)
	}
	waitDockerHealthy(t, strings.TrimSpace(id))
}

// TestSingleContainer runs the plain image the way the README shows: one container with
// every service inside, state in a volume, the gateway published on loopback.
func TestSingleContainer(t *testing.T) {
	needStack(t) // the images exist once the stack is up
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	token := randomHex()
	name := "clawdis-it-single-" + strconv.Itoa(port)
	docker(t, "run", "-d", "--name", name, "-v", name+":/state", "-p", "127.0.0.1:"+strconv.Itoa(port)+":18789",
		"-e", "CLAWDIS_GATEWAY_TOKEN="+token, "clawdis:it")
	t.Cleanup(func() {
		_ = exec.Command("docker", "rm", "-f", "-v", name).Run()
		_ = exec.Command("docker", "volume", "rm", name).Run()
	})
	waitDockerHealthy(t, name)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, client.Options{URL: "ws://127.0.0.1:" + strconv.Itoa(port), Token: token})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	h, err := requestHealth(ctx, c)
	if err != nil || !h.OK || len(h.Services) != 7 || h.Sessions.Path != "/state/sessions/sessions.json" {
		t.Fatalf("health = %+v, %v", h, err)
	}
	if _, err := c.RequestFinal(ctx, schemas.MethodAgent, map[string]any{"message": "hi", "idempotencyKey": "single-1"}, nil); err == nil {
		t.Error("an agent run succeeded without an agent configured")
	}
	// A wrong token is refused even though the container sees the host as a remote peer.
	if bad, err := client.Dial(ctx, client.Options{URL: "ws://127.0.0.1:" + strconv.Itoa(port), Token: "wrong"}); err == nil {
		bad.Close()
		t.Error("a wrong token was accepted")
	}
}

// waitDockerHealthy polls Docker's health status of a container until it is healthy.
func waitDockerHealthy(t *testing.T, container string) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	var status string
	for time.Now().Before(deadline) {
		status = strings.TrimSpace(docker(t, "inspect", "--format", "{{.State.Health.Status}}", container))
		if status == "healthy" {
			return
		}
		time.Sleep(time.Second) // Docker runs the check on its own schedule: poll it
	}
	log := docker(t, "inspect", "--format", "{{range .State.Health.Log}}{{.ExitCode}} {{.Output}}{{end}}", container)
	t.Fatalf("container %s is %q, not healthy; check log: %s", container, status, log)
}

func docker(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("docker", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}
