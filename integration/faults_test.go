//go:build integration

package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/clawdis/clawdis/edge/client"
	"github.com/clawdis/clawdis/schemas"
	"github.com/clawdis/clawdis/services/telegram/telegramtest"
)

// The fault tests break one container at a time and leave the stack healthy again. They
// keep one client connection across the fault: a connection that survives proves the edge
// was not restarted (these clients do not reconnect).

// TestPresenceStopAndStart: with the presence container stopped, system-presence answers
// UNAVAILABLE (retryable) instead of hanging and health turns false; once it starts again
// both recover on the same edge connection.
func TestPresenceStopAndStart(t *testing.T) {
	s, c, ctx := breaking(t, "presence")

	s.composeT(t, "stop", "presence")
	requireUnavailable(t, ctx, c, schemas.MethodSystemPresence)
	waitHealth(t, ctx, s, c, func(h schemas.HealthSummary) bool { return !h.OK && !serviceOK(h, "presence") })

	s.composeT(t, "start", "presence")
	waitHealth(t, ctx, s, c, healthOK)
	if _, err := c.Request(ctx, schemas.MethodSystemPresence, nil); err != nil {
		t.Fatalf("system-presence after the restart: %v", err)
	}
	requireSameConnection(t, c)
}

// TestBusNodeRestart kills the bus node and starts it again: every service and the edge
// reconnect by themselves and requests succeed again. It logs how long that took.
func TestBusNodeRestart(t *testing.T) {
	s, c, ctx := breaking(t, "bus")

	s.composeT(t, "kill", "bus")
	requireUnavailable(t, ctx, c, schemas.MethodHealth)

	start := time.Now()
	s.composeT(t, "start", "bus")
	started := time.Since(start)
	waitHealth(t, ctx, s, c, healthOK)
	t.Logf("bus node restart: compose start took %s; every service healthy again %s after the start command",
		started.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	for _, m := range []string{schemas.MethodSystemPresence, schemas.MethodStatus} {
		if _, err := c.Request(ctx, m, nil); err != nil {
			t.Errorf("%s after the bus restart: %v", m, err)
		}
	}
	requireSameConnection(t, c)
}

// TestAgentRestartMidRun kills the agent container while a run is in progress: the run was
// stored before its acknowledgement, so the restarted agent runs it again from the start
// and the waiting client gets its final (SPEC §13); the next run is served as usual.
func TestAgentRestartMidRun(t *testing.T) {
	s, c, ctx := breaking(t, "agent")
	name := fmt.Sprintf("it-rerun-%d", time.Now().UnixNano()) // scriptagent hangs the first time only
	key := name + "-1"

	acked := make(chan struct{})
	type result struct {
		raw json.RawMessage
		err error
	}
	done := make(chan result, 1)
	go func() {
		raw, err := c.RequestFinal(ctx, schemas.MethodAgent, map[string]any{"message": "hang-once " + name,
			"sessionKey": "it-hang", "idempotencyKey": key}, func(json.RawMessage) { close(acked) })
		done <- result{raw, err}
	}()
	select {
	case <-acked:
	case r := <-done:
		t.Fatalf("the run ended before the kill: %s %v", r.raw, r.err)
	case <-ctx.Done():
		t.Fatal("no acknowledgement")
	}
	s.composeT(t, "kill", "agent")
	s.composeT(t, "start", "agent")
	var r result
	select {
	case r = <-done:
	case <-ctx.Done():
		t.Fatal("the client never got a final after the agent restarted")
	}
	if errors.Is(r.err, context.DeadlineExceeded) {
		t.Fatal("the client waited out its own deadline: silence")
	}
	var fin schemas.AgentResult
	if r.err != nil || json.Unmarshal(r.raw, &fin) != nil || fin.Status != "ok" || fin.RunID != key || fin.Text != "echo: hang-once "+name {
		t.Fatalf("final after the agent restart: %s %v; want the rerun's ok", r.raw, r.err)
	}

	waitHealth(t, ctx, s, c, healthOK)
	raw, err := c.RequestFinal(ctx, schemas.MethodAgent, map[string]any{"message": "are you back", "sessionKey": "it-hang",
		"idempotencyKey": "it-hang-2"}, nil)
	var res schemas.AgentResult
	if err != nil || json.Unmarshal(raw, &res) != nil || res.Status != "ok" {
		t.Fatalf("the next run: %s %v", raw, err)
	}
}

// breaking prepares a fault test on one container: the stack, a client connection that must
// survive the fault, a deadline, and a cleanup that starts the container again whatever
// happens.
func breaking(t *testing.T, container string) (*stack, *client.Client, context.Context) {
	t.Helper()
	s := needStack(t)
	c := s.dial(t, client.Options{Client: schemas.ClientInfo{Name: "it-fault-" + container, Mode: "cli"}})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	t.Cleanup(func() { _, _ = s.run(time.Minute, "start", container) })
	return s, c, ctx
}

// requireSameConnection fails when c's connection dropped: the edge must not have restarted.
func requireSameConnection(t *testing.T, c *client.Client) {
	t.Helper()
	if err := c.Err(); err != nil {
		t.Fatalf("the client connection dropped: %v", err)
	}
}

// requireUnavailable checks that method, whose service is down, is answered with a
// retryable UNAVAILABLE well within the client's deadline rather than left hanging.
func requireUnavailable(t *testing.T, ctx context.Context, c *client.Client, method string) {
	t.Helper()
	rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	_, err := c.Request(rctx, method, nil)
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("%s hung with its service down", method)
	}
	if re := responseError(t, err); re.Shape.Code != "UNAVAILABLE" || !re.Retryable() {
		t.Fatalf("%s with its service down: %+v", method, re.Shape)
	}
}

// waitHealth polls health through c until cond holds, failing t when it never does.
func waitHealth(t *testing.T, ctx context.Context, s *stack, c *client.Client, cond func(schemas.HealthSummary) bool) {
	t.Helper()
	if _, err := s.pollHealth(ctx, c, cond); err != nil {
		t.Fatalf("health never reached the expected state: %v", err)
	}
}

func serviceOK(h schemas.HealthSummary, name string) bool {
	for _, sv := range h.Services {
		if sv.Name == name {
			return sv.OK
		}
	}
	return false
}

// TestSecondTelegramCopyRefused starts a second telegram service container next to the
// running one: it must refuse to start (two pollers on one bot token fight over updates), and
// the first one keeps serving.
func TestSecondTelegramCopyRefused(t *testing.T) {
	s := needStack(t)
	out, err := s.run(2*time.Minute, "run", "--rm", "--no-deps", "-T", "telegram")
	if err == nil {
		t.Fatalf("a second telegram service started:\n%s", out)
	}
	if !strings.Contains(out, "already running elsewhere on the bus") {
		t.Fatalf("the second copy failed for another reason: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const chat = 7003
	s.fakeInject(t, chat, "still there?")
	s.waitSent(t, ctx, chat, func(m telegramtest.Sent) bool { return strings.Contains(m.Text, "still there?") })
}
