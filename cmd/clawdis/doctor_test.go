package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clawdis/clawdis/cmd/clawdis/internal/config"
)

// doctorSetup is a healthy installation for `clawdis doctor`: a private state dir, a
// config with an agent command that exists, a Telegram bot whose token a fake Bot API
// accepts, a free gateway port on loopback, and no service unit.
type doctorSetup struct {
	home, state string
	port        int
	agent       string // the agent command
	apiRoot     string // the fake Bot API
	extra       string // more config keys, JSON5, inserted at the top level
	env         []string
}

func newDoctorSetup(t *testing.T) *doctorSetup {
	t.Helper()
	home := t.TempDir()
	state := filepath.Join(home, ".clawdis")
	if err := os.Mkdir(state, 0o700); err != nil {
		t.Fatal(err)
	}
	bot := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/botgood-token/getMe" {
			http.Error(w, `{"ok":false,"error_code":401,"description":"Unauthorized"}`, http.StatusUnauthorized)
			return
		}
		fmt.Fprint(w, `{"ok":true,"result":{"id":1,"is_bot":true,"username":"doctor_bot"}}`)
	}))
	t.Cleanup(bot.Close)
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh to use as the agent command")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return &doctorSetup{home: home, state: state, port: port, agent: sh, apiRoot: bot.URL,
		env: []string{"HOME=" + home, "XDG_CONFIG_HOME=" + filepath.Join(home, ".config"), "TELEGRAM_BOT_TOKEN=good-token"}}
}

// run writes the config and runs `clawdis doctor --json` as the binary.
func (s *doctorSetup) run(t *testing.T) (doctorReport, string, int) {
	t.Helper()
	cfg := fmt.Sprintf(`{
  gateway: { port: %d },
  agent: { command: [%q, "-c", "cat"] },
  telegram: { apiRoot: %q, allowFrom: [1] },
  %s
}`, s.port, s.agent, s.apiRoot, s.extra)
	if err := os.WriteFile(filepath.Join(s.state, "clawdis.json"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code := runCLI(t, s.env, "doctor", "--json")
	var rep doctorReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("doctor --json: %v\nstdout %s\nstderr %s", err, stdout, stderr)
	}
	return rep, stderr, code
}

func TestDoctorHealthy(t *testing.T) {
	t.Parallel()
	s := newDoctorSetup(t)
	rep, stderr, code := s.run(t)
	if code != 0 || !rep.OK || stderr != "" {
		t.Fatalf("healthy setup: exit %d, stderr %q, report %+v", code, stderr, rep)
	}
	var names []string
	for _, c := range rep.Checks {
		names = append(names, c.Name)
		if !c.OK || c.Fix != "" || c.Message == "" {
			t.Errorf("check %+v", c)
		}
	}
	if got := strings.Join(names, ","); got != "config,state dir,gateway,whatsapp,telegram,agent,bind,service units" {
		t.Errorf("checks %s", got)
	}
	// The text form: one ✓ line per check.
	stdout, _, code := runCLI(t, s.env, "doctor")
	if code != 0 || strings.Count(stdout, "✓ ") != len(rep.Checks) || strings.Contains(stdout, "✗") ||
		!strings.Contains(stdout, "✓ telegram: the token is accepted: @doctor_bot") {
		t.Errorf("doctor: exit %d\n%s", code, stdout)
	}
}

// TestDoctorBroken breaks one thing of a healthy setup at a time: doctor exits 1 and names
// the failing check with its fix.
func TestDoctorBroken(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name    string
		breakIt func(t *testing.T, s *doctorSetup)
		check   string
		msg     string
		fix     string
	}{
		{"bad config", func(t *testing.T, s *doctorSetup) { s.extra = `webchat: { port: "x" },` },
			"config", "webchat.port: must be an integer between 1 and 65535, got a string", "clawdis config validate"},
		{"unknown key", func(t *testing.T, s *doctorSetup) { s.extra = `agnet: {},` },
			"config", `unknown config key "agnet" (did you mean "agent"?)`, "rename or remove the key"},
		{"state dir 0755", func(t *testing.T, s *doctorSetup) {
			if err := os.Chmod(s.state, 0o755); err != nil {
				t.Fatal(err)
			}
		}, "state dir", "is mode 0755", "chmod 700 "},
		{"agent command missing", func(t *testing.T, s *doctorSetup) { s.agent = "/nonexistent/agent-cli" },
			"agent", `the agent command "/nonexistent/agent-cli" is not found`, "agent.command"},
		{"weak token on a non-loopback bind", func(t *testing.T, s *doctorSetup) {
			s.extra = `gateway: { port: ` + fmt.Sprint(s.port) + `, bind: "0.0.0.0", token: "s3kr1t" },`
		}, "bind", "the token is weak (6 characters; at least 16 needed)", "openssl rand -hex 16"},
		{"token with whitespace on a non-loopback bind", func(t *testing.T, s *doctorSetup) {
			s.extra = `gateway: { port: ` + fmt.Sprint(s.port) + `, bind: "0.0.0.0", token: "hunter2 hunter2 hunter2" },`
		}, "bind", "the token contains whitespace", "without whitespace"},
		{"token on a unit's command line", func(t *testing.T, s *doctorSetup) {
			dir := filepath.Join(s.home, ".config", "systemd", "user")
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			unit := "[Service]\nExecStart=/usr/local/bin/clawdis gateway --token hunter2hunter2hunter2\n"
			if err := os.WriteFile(filepath.Join(dir, "clawdis-gateway.service"), []byte(unit), 0o644); err != nil {
				t.Fatal(err)
			}
		}, "service units", "passes --token on the command line, visible to every user in ps", "EnvironmentFile"},
		{"telegram token rejected", func(t *testing.T, s *doctorSetup) { s.env = append(s.env, "TELEGRAM_BOT_TOKEN=bad-token-xyz") },
			"telegram", "Telegram rejected the bot token (HTTP 401)", "@BotFather"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newDoctorSetup(t)
			tt.breakIt(t, s)
			rep, stderr, code := s.run(t)
			if code != 1 || rep.OK || !strings.Contains(stderr, "doctor: 1 of 8 checks failed") {
				t.Errorf("exit %d, ok %v, stderr %q", code, rep.OK, stderr)
			}
			for _, c := range rep.Checks {
				if c.Name != tt.check {
					if !c.OK {
						t.Errorf("another check failed too: %+v", c)
					}
					continue
				}
				if c.OK || !strings.Contains(c.Message, tt.msg) || !strings.Contains(c.Fix, tt.fix) {
					t.Errorf("check %s = %+v; want a failure with %q, fixed by %q", c.Name, c, tt.msg, tt.fix)
				}
				for _, secret := range []string{"hunter2", "s3kr1t", "bad-token-xyz"} {
					if strings.Contains(c.Message+c.Fix+stderr, secret) {
						t.Errorf("check %s shows a secret: %+v", c.Name, c)
					}
				}
			}
		})
	}
}

// TestDoctorGatewayRunning: beside a running gateway the gateway check passes, and a
// gateway that refuses the token is a failure naming where the token comes from.
func TestDoctorGatewayRunning(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	t.Setenv("CLAWDIS_GATEWAY_TOKEN", "")
	d := startDaemon(t, t.TempDir(), "", func(df *daemonFlags) { df.token = "right-token" })
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(d.url, "ws://"))
	env := doctorEnv{getenv: func(string) string { return "" }, timeout: procTimeout}
	for token, wantOK := range map[string]bool{"right-token": true, "wrong-token": false} {
		cfg, _, err := config.Parse([]byte(fmt.Sprintf(`{gateway: {port: %s, token: %q}}`, port, token)), "test")
		if err != nil {
			t.Fatal(err)
		}
		c := checkGateway(t.Context(), env, cfg)
		if c.OK != wantOK || (!wantOK && !strings.Contains(c.Fix, "CLAWDIS_GATEWAY_TOKEN")) {
			t.Errorf("token %s: %+v", token, c)
		}
	}
}
