package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clawdis/clawdis/cmd/clawdis/internal/config"
)

// TestConfigValidateBinary runs `clawdis config validate` on good and bad files.
func TestConfigValidateBinary(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	env := []string{"HOME=" + home}
	write := func(name, content string) string {
		p := filepath.Join(home, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.json", `// comments are fine
{ gateway: { port: 18790 }, agent: { command: ["my-agent", "{{Body}}"] }, }`)
	typo := write("typo.json", `{ agnet: { command: ["my-agent"] } }`)
	bad := write("bad.json", `{ gateway: { port: 70000, token: "do-not-print-me" } }`)
	broken := write("broken.json", "{\n  gateway: {\n")
	for _, tt := range []struct {
		args   []string
		code   int
		stdout string // a line of stdout
		stderr string
	}{
		{[]string{"config", "validate", good}, 0, good + ": valid", ""},
		{[]string{"config", "validate", typo}, 0, `warning: unknown config key "agnet" (did you mean "agent"?)`, ""},
		{[]string{"config", "validate", bad}, 1, "", "clawdis: config " + bad + ": gateway.port: must be an integer between 1 and 65535"},
		{[]string{"config", "validate", broken}, 1, "", "clawdis: config " + broken + ": syntax error at line 2: unexpected end of JSON input"},
		{[]string{"config", "validate", filepath.Join(home, "none.json")}, 1, "", "no such file"},
		{[]string{"config", "validate", "--config", good}, 0, good + ": valid", ""},
		{[]string{"config", "validate"}, 0, filepath.Join(home, ".clawdis", "clawdis.json") + ": no such file; all defaults apply", ""},
	} {
		stdout, stderr, code := runCLI(t, env, tt.args...)
		if code != tt.code || !strings.Contains(stdout, tt.stdout) || !strings.Contains(stderr, tt.stderr) {
			t.Errorf("clawdis %v: exit %d, stdout %q, stderr %q", tt.args, code, stdout, stderr)
		}
		if strings.Contains(stdout+stderr, "do-not-print-me") {
			t.Errorf("clawdis %v printed a secret", tt.args)
		}
	}
	stdout, _, code := runCLI(t, env, "config", "validate", "--json", typo)
	var v validation
	if err := json.Unmarshal([]byte(stdout), &v); err != nil || code != 0 || !v.OK || !v.Exists || len(v.Warnings) != 1 {
		t.Errorf("validate --json: %q (exit %d, %v)", stdout, code, err)
	}
}

// TestConfigShowPathSchema: show fills in defaults and redacts every secret, wherever it
// came from; path names the file; schema is the embedded schema.
func TestConfigShowPathSchema(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	state := filepath.Join(home, "state")
	if err := os.Mkdir(state, 0o700); err != nil {
		t.Fatal(err)
	}
	cfgFile := filepath.Join(state, "clawdis.json")
	if err := os.WriteFile(cfgFile, []byte(`{gateway: {token: "file-token-1"}, telegram: {webhookSecret: "hook-secret-2",
		proxy: "http://user:proxy-pass-3@127.0.0.1:3128"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"HOME=" + home, "CLAWDIS_STATE_DIR=" + state, "TELEGRAM_BOT_TOKEN=env-bot-4"}
	stdout, stderr, code := runCLI(t, env, "config", "show")
	var tree map[string]map[string]any
	if err := json.Unmarshal([]byte(stdout), &tree); err != nil || code != 0 {
		t.Fatalf("config show: exit %d, %v\n%s%s", code, err, stdout, stderr)
	}
	for _, secret := range []string{"file-token-1", "hook-secret-2", "proxy-pass-3", "env-bot-4"} {
		if strings.Contains(stdout, secret) {
			t.Errorf("config show prints %s", secret)
		}
	}
	if tree["gateway"]["token"] != redacted || tree["telegram"]["botToken"] != redacted ||
		tree["gateway"]["port"] != float64(18789) || tree["agent"]["thinkingDefault"] != "off" {
		t.Errorf("config show: %s", stdout)
	}

	stdout, _, code = runCLI(t, env, "config", "path")
	if code != 0 || stdout != cfgFile+"\n" {
		t.Errorf("config path: exit %d, %q, want %s", code, stdout, cfgFile)
	}
	stdout, _, code = runCLI(t, append(env, "CLAWDIS_CONFIG_PATH=/etc/other.json"), "config", "path")
	if code != 0 || stdout != "/etc/other.json\n" {
		t.Errorf("config path with $CLAWDIS_CONFIG_PATH: exit %d, %q", code, stdout)
	}

	stdout, _, code = runCLI(t, env, "config", "schema")
	if code != 0 || stdout != string(config.Schema().JSON()) || !json.Valid([]byte(stdout)) {
		t.Errorf("config schema: exit %d, %d bytes", code, len(stdout))
	}
	raw, err := os.ReadFile("../../schemas/config.schema.json")
	if err != nil || string(raw) != stdout {
		t.Errorf("config schema differs from schemas/config.schema.json (%v)", err)
	}
}
