//go:build integration

package integration

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/clawdis/clawdis/edge/client"
	"github.com/clawdis/clawdis/schemas"
	"github.com/clawdis/clawdis/services/telegram/telegramtest"
)

var keepStack = flag.Bool("keep", false, "leave the compose stack running after the tests (debugging)")

// theStack is the running compose stack, or nil with skipReason saying why there is none.
var (
	theStack   *stack
	skipReason string
)

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	compose, reason := findCompose()
	if reason != "" {
		skipReason = reason
		fmt.Fprintln(os.Stderr, "integration: skipping:", reason)
		return m.Run()
	}
	s, err := startStack(compose)
	if err != nil {
		fmt.Fprintln(os.Stderr, "integration: starting the stack:", err)
		if s != nil {
			s.dumpLogs()
			s.down()
		}
		return 1
	}
	theStack = s
	code := m.Run()
	if code != 0 {
		s.dumpLogs()
	}
	if *keepStack {
		fmt.Fprintf(os.Stderr, "integration: stack left running: %s\n", strings.Join(s.composeArgs(), " "))
		return code
	}
	if err := s.down(); err != nil {
		fmt.Fprintln(os.Stderr, "integration: tearing down:", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// findCompose returns the compose command (the docker plugin or docker-compose), or why the
// tests cannot run here.
func findCompose() ([]string, string) {
	if _, err := exec.LookPath("docker"); err != nil {
		return nil, "no docker client on PATH (install docker.io)"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput(); err != nil {
		return nil, "no Docker engine answers (start dockerd): " + firstLine(out)
	}
	if exec.CommandContext(ctx, "docker", "compose", "version").Run() == nil {
		return []string{"docker", "compose"}, ""
	}
	if p, err := exec.LookPath("docker-compose"); err == nil {
		return []string{p}, ""
	}
	return nil, "neither `docker compose` nor docker-compose is installed"
}

// stack is one compose project built from the repository's docker-compose.yml (and any
// override files).
type stack struct {
	compose                          []string
	root, project                    string
	files                            []string // compose files, relative to root
	env                              []string
	gatewayToken, busToken           string
	gatewayPort, webchatPort, fbPort int
}

// startStack builds the images, brings the stack up and waits until the gateway reports
// every service healthy.
func startStack(compose []string) (*stack, error) {
	root, err := filepath.Abs("..")
	if err != nil {
		return nil, err
	}
	build := exec.Command(filepath.Join(root, "deploy", "docker", "build-images"))
	build.Env = append(os.Environ(), "TAG=it")
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build-images: %w\n%s", err, out)
	}
	s, err := newStack(compose, root, fmt.Sprintf("clawdis-it-%d", os.Getpid()), "docker-compose.yml")
	if err != nil {
		return nil, err
	}
	return s, s.up(90 * time.Second)
}

// newStack prepares a compose project of the images built with tag "it" from files, with
// ports, tokens and a WebChat network of its own; it starts nothing.
func newStack(compose []string, root, project string, files ...string) (*stack, error) {
	s := &stack{compose: compose, root: root, project: project, files: files, gatewayToken: randomHex(), busToken: randomHex()}
	for _, p := range []*int{&s.gatewayPort, &s.webchatPort, &s.fbPort} {
		var err error
		if *p, err = freePort(); err != nil {
			return nil, err
		}
	}
	// A WebChat network of its own, so that stacks of parallel runs do not collide.
	b := make([]byte, 2)
	_, _ = rand.Read(b)
	net3, net4 := int(b[0]), int(b[1]&^7)
	s.env = append(os.Environ(),
		fmt.Sprintf("CLAWDIS_WEBCHAT_SUBNET=172.31.%d.%d/29", net3, net4),
		fmt.Sprintf("CLAWDIS_WEBCHAT_HOST=172.31.%d.%d", net3, net4+1),
		"CLAWDIS_TAG=it",
		"CLAWDIS_GATEWAY_TOKEN="+s.gatewayToken,
		"CLAWDIS_BUS_TOKEN="+s.busToken,
		"TELEGRAM_BOT_TOKEN=123456:integration",
		"CLAWDIS_PORT="+strconv.Itoa(s.gatewayPort),
		"CLAWDIS_WEBCHAT_PORT="+strconv.Itoa(s.webchatPort),
		"CLAWDIS_FAKEBOTAPI_PORT="+strconv.Itoa(s.fbPort),
	)
	return s, nil
}

// up starts every container of the project and waits, up to healthy, until the gateway
// reports every service healthy.
func (s *stack) up(healthy time.Duration) error {
	if _, err := s.run(3*time.Minute, "up", "-d", "--no-build"); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), healthy)
	defer cancel()
	if _, err := s.pollHealth(ctx, nil, healthOK); err != nil {
		return fmt.Errorf("the stack never became healthy: %w", err)
	}
	return nil
}

func (s *stack) composeArgs() []string {
	args := append([]string(nil), s.compose...)
	args = append(args, "-p", s.project)
	for _, f := range s.files {
		args = append(args, "-f", filepath.Join(s.root, f))
	}
	return append(args, "--project-directory", s.root)
}

// run runs one compose subcommand and returns its combined output.
func (s *stack) run(timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	argv := append(s.composeArgs(), args...)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = s.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: %w\n%s", strings.Join(argv, " "), err, out)
	}
	return string(out), nil
}

// compose runs a compose subcommand for a test, failing it on error.
func (s *stack) composeT(t *testing.T, args ...string) {
	t.Helper()
	if _, err := s.run(2*time.Minute, args...); err != nil {
		t.Fatal(err)
	}
}

func (s *stack) down() error {
	_, err := s.run(3*time.Minute, "down", "-v", "--remove-orphans", "--timeout", "10")
	return err
}

func (s *stack) dumpLogs() {
	out, _ := s.run(time.Minute, "logs", "--no-color", "--tail", "60")
	fmt.Fprintln(os.Stderr, "integration: last container logs:\n"+out)
}

// gatewayURL is the published gateway WebSocket.
func (s *stack) gatewayURL() string { return "ws://127.0.0.1:" + strconv.Itoa(s.gatewayPort) }

// pollHealth polls health through c (or a fresh connection per attempt when c is nil)
// until cond accepts the summary, and returns it.
func (s *stack) pollHealth(ctx context.Context, c *client.Client, cond func(schemas.HealthSummary) bool) (schemas.HealthSummary, error) {
	var last error
	for {
		h, err := s.healthOnce(ctx, c)
		if err == nil && cond(h) {
			return h, nil
		}
		if err == nil {
			err = fmt.Errorf("health ok=%v: %s", h.OK, serviceStates(h))
		}
		last = err
		select {
		case <-ctx.Done():
			return h, fmt.Errorf("%w (last: %v)", ctx.Err(), last)
		case <-time.After(250 * time.Millisecond): // the stack is other processes: poll it
		}
	}
}

// healthOK is the pollHealth condition "every service answers".
func healthOK(h schemas.HealthSummary) bool { return h.OK }

func (s *stack) healthOnce(ctx context.Context, c *client.Client) (schemas.HealthSummary, error) {
	var h schemas.HealthSummary
	if c == nil {
		dc, err := client.Dial(ctx, client.Options{URL: s.gatewayURL(), Token: s.gatewayToken, DialTimeout: 5 * time.Second})
		if err != nil {
			return h, err
		}
		defer dc.Close()
		c = dc
	}
	return requestHealth(ctx, c)
}

// requestHealth asks c's gateway for its health summary.
func requestHealth(ctx context.Context, c *client.Client) (schemas.HealthSummary, error) {
	var h schemas.HealthSummary
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	raw, err := c.Request(rctx, schemas.MethodHealth, nil)
	if err != nil {
		return h, err
	}
	return h, json.Unmarshal(raw, &h)
}

// serviceStates renders the services part of a health summary for failure messages.
func serviceStates(h schemas.HealthSummary) string {
	var b strings.Builder
	for _, sv := range h.Services {
		fmt.Fprintf(&b, "%s=%v ", sv.Name, sv.OK)
	}
	return strings.TrimSpace(b.String())
}

// needStack skips t when no stack runs.
func needStack(t *testing.T) *stack {
	t.Helper()
	if theStack == nil {
		t.Skip("integration stack not running: " + skipReason)
	}
	return theStack
}

// dial connects a client to the stack's gateway; it is closed when t ends.
func (s *stack) dial(t *testing.T, opts client.Options) *client.Client {
	t.Helper()
	if opts.URL == "" {
		opts.URL = s.gatewayURL()
	}
	opts.Token = s.gatewayToken
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, opts)
	if err != nil {
		t.Fatalf("dial %s: %v", opts.URL, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// fakeInject posts a direct Telegram message from chatID to the fake Bot API.
func (s *stack) fakeInject(t *testing.T, chatID int64, text string) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"chatId": chatID, "text": text})
	resp, err := http.Post(s.fakeURL("/_fake/inject"), "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("inject: %s", resp.Status)
	}
}

// fakeSent lists what the bot sent through the fake Bot API.
func (s *stack) fakeSent(ctx context.Context) ([]telegramtest.Sent, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.fakeURL("/_fake/sent"), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var sent []telegramtest.Sent
	return sent, json.NewDecoder(resp.Body).Decode(&sent)
}

// waitSent polls the fake until the bot sent something to chat that match accepts.
func (s *stack) waitSent(t *testing.T, ctx context.Context, chat int64, match func(telegramtest.Sent) bool) telegramtest.Sent {
	t.Helper()
	for {
		sent, err := s.fakeSent(ctx)
		if err == nil {
			for _, m := range sent {
				if m.Chat == chat && match(m) {
					return m
				}
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("nothing sent to chat %d (last list: %+v, err %v)", chat, sent, err)
		case <-time.After(200 * time.Millisecond): // the fake is another process: poll it
		}
	}
}

func (s *stack) fakeURL(path string) string {
	return "http://127.0.0.1:" + strconv.Itoa(s.fbPort) + path
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func randomHex() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func firstLine(b []byte) string {
	line, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	return line
}

// responseError unwraps a *client.ResponseError, failing t when err is something else.
func responseError(t *testing.T, err error) *client.ResponseError {
	t.Helper()
	var re *client.ResponseError
	if !errors.As(err, &re) {
		t.Fatalf("want an error response, got %v", err)
	}
	return re
}
