package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// runCLI runs this test binary as the clawdis binary (see TestMain) with args, a clean
// environment plus env (which must set HOME), and returns its stdout, stderr and exit code.
func runCLI(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), procTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.Env = append(append(cleanEnv(), childEnv+"=1", "GORACE=atexit_sleep_ms=0", "DISPLAY=", "WAYLAND_DISPLAY="), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		if ee := (*exec.ExitError)(nil); !errors.As(err, &ee) {
			t.Fatalf("clawdis %v: %v", args, err)
		}
	}
	return out.String(), errb.String(), cmd.ProcessState.ExitCode()
}

// closedURL is a ws:// URL on which nothing listens.
func closedURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return "ws://" + ln.Addr().String()
}

// TestUsageErrorsBinary: an unknown command or flag exits 2 with one line naming it and the
// closest known one, and never prints the help with status 0 (SPEC §2); so does a flag that
// must not be used there.
func TestUsageErrorsBinary(t *testing.T) {
	t.Parallel()
	home := []string{"HOME=" + t.TempDir()}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"gatway"}, `unknown command "gatway" for "clawdis"; did you mean "gateway"?`},
		{[]string{"stauts"}, `unknown command "stauts" for "clawdis"; did you mean "status"?`},
		{[]string{"doctr", "--json"}, `unknown command "doctr" for "clawdis"; did you mean "doctor"?`},
		{[]string{"gateway", "statsu"}, `unknown command "statsu" for "clawdis gateway"; did you mean "status"?`},
		{[]string{"config", "valdate"}, `unknown command "valdate" for "clawdis config"; did you mean "validate"?`},
		{[]string{"frobnicate"}, `unknown command "frobnicate" for "clawdis" (see "clawdis --help")`},
		{[]string{"gateway", "--prot", "1"}, `unknown flag "--prot" for "clawdis gateway"; did you mean "--port"?`},
		{[]string{"status", "--jsno"}, `unknown flag "--jsno" for "clawdis status"; did you mean "--json"?`},
		{[]string{"service", "presnce"}, `did you mean "presence"?`},
		{[]string{"help", "gatway"}, `unknown command "gatway" for "clawdis"; did you mean "gateway"?`},
		{[]string{"version", "extra"}, `unknown command "extra" for "clawdis version"`},
		{[]string{"completion", "bsh"}, `unknown command "bsh" for "clawdis completion"; did you mean "bash"?`},
		{[]string{"gateway", "install", "--user", "--print", "--token", "x"}, "--token does not go in a service unit"},
	} {
		stdout, stderr, code := runCLI(t, home, tt.args...)
		if code != 2 || stdout != "" || !strings.Contains(stderr, tt.want) {
			t.Errorf("clawdis %v: exit %d, stdout %q, stderr %q; want exit 2, nothing on stdout and %q",
				tt.args, code, stdout, stderr, tt.want)
		}
		if strings.Count(stderr, "\n") != 1 {
			t.Errorf("clawdis %v: want one line on stderr, got %q", tt.args, stderr)
		}
	}
}

func TestVersionBinary(t *testing.T) {
	t.Parallel()
	home := []string{"HOME=" + t.TempDir()}
	flag, _, code1 := runCLI(t, home, "--version")
	cmd, _, code2 := runCLI(t, home, "version")
	if code1 != 0 || code2 != 0 || flag != cmd || !regexp.MustCompile(`^clawdis \S+ \(commit \S+, go[0-9.]+\S*, \w+/\w+\)\n$`).MatchString(cmd) {
		t.Errorf("--version %q (exit %d), version %q (exit %d)", flag, code1, cmd, code2)
	}
	out, _, code := runCLI(t, home, "version", "--json")
	var v map[string]string
	if err := json.Unmarshal([]byte(out), &v); err != nil || code != 0 || v["version"] == "" || v["commit"] == "" ||
		!strings.HasPrefix(v["go"], "go") {
		t.Errorf("version --json: %q (exit %d, %v)", out, code, err)
	}
}

// TestShortcutsMatchGatewayCommands: `clawdis status|health` are `clawdis gateway
// status|health`: the same flags, and the same output and exit code against a live gateway
// and against none.
func TestShortcutsMatchGatewayCommands(t *testing.T) {
	root := newRootCmd(&bytes.Buffer{}, &bytes.Buffer{})
	for _, name := range []string{"status", "health"} {
		short, _, err := root.Find([]string{name})
		long, _, err2 := root.Find([]string{"gateway", name})
		if err != nil || err2 != nil || short == long {
			t.Fatalf("find %s: %v %v", name, err, err2)
		}
		if a, b := flagNames(short.Flags()), flagNames(long.LocalFlags())+" "+flagNames(long.InheritedFlags()); a != b {
			t.Errorf("%s flags %q, gateway %s flags %q", name, a, name, b)
		}
	}

	t.Setenv("HOME", t.TempDir())
	t.Setenv("CLAWDIS_GATEWAY_TOKEN", "")
	d := startDaemon(t, t.TempDir(), "", func(df *daemonFlags) { df.token = "tok" })
	env := []string{"HOME=" + t.TempDir()}
	digits := regexp.MustCompile(`[0-9]+`)
	for _, args := range [][]string{
		{"status", "--url", d.url, "--token", "tok"},
		{"status", "--json", "--url", d.url, "--token", "tok"},
		{"health", "--url", d.url, "--token", "tok"},
		{"status", "--url", closedURL(t)},
		{"health", "--json", "--url", closedURL(t)},
	} {
		// Latencies and ages differ between two calls; everything else must not.
		wantOut, wantErr, wantCode := runCLI(t, env, append([]string{"gateway"}, args...)...)
		gotOut, gotErr, gotCode := runCLI(t, env, args...)
		if gotCode != wantCode || digits.ReplaceAllString(gotOut, "N") != digits.ReplaceAllString(wantOut, "N") ||
			digits.ReplaceAllString(gotErr, "N") != digits.ReplaceAllString(wantErr, "N") {
			t.Errorf("clawdis %v: exit %d\n%s%s\nclawdis gateway %v: exit %d\n%s%s", args, gotCode, gotOut, gotErr,
				args, wantCode, wantOut, wantErr)
		}
		if gotOut == "" && gotCode == 0 {
			t.Errorf("clawdis %v printed nothing", args)
		}
	}
}

func flagNames(fs *pflag.FlagSet) string {
	var names []string
	fs.VisitAll(func(f *pflag.Flag) { names = append(names, f.Name+"="+f.DefValue) })
	return strings.Join(names, " ")
}

// TestJSONFailures: with --json a failure still prints {ok:false, error:{code?, message}} on
// stdout, and an unauthorized client is told about --token and CLAWDIS_GATEWAY_TOKEN.
func TestJSONFailures(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	t.Setenv("CLAWDIS_GATEWAY_TOKEN", "")
	d := startDaemon(t, t.TempDir(), "", func(df *daemonFlags) { df.token = "tok" })
	env := []string{"HOME=" + t.TempDir()}
	for _, tt := range []struct {
		args     []string
		exit     int
		code     string
		contains string
	}{
		{[]string{"status", "--json", "--url", closedURL(t)}, 1, "UNAVAILABLE", "gateway not reachable at ws://"},
		{[]string{"gateway", "health", "--json", "--url", closedURL(t)}, 1, "UNAVAILABLE", "gateway not reachable"},
		{[]string{"gateway", "status", "--json", "--url", d.url, "--token", "wrong"}, 1, "UNAUTHORIZED",
			"unauthorized: pass the gateway's token with --token or CLAWDIS_GATEWAY_TOKEN"},
		{[]string{"gateway", "send", "--json", "--to", "+15550001", "--url", d.url}, 2, "USAGE", "--message or --media-url"},
		{[]string{"config", "validate", "--json", "/nonexistent/clawdis.json"}, 1, "", "no such file"},
	} {
		stdout, stderr, code := runCLI(t, env, tt.args...)
		var f struct {
			OK    *bool `json:"ok"`
			Error struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		if err := json.Unmarshal([]byte(stdout), &f); err != nil || f.OK == nil || *f.OK || code != tt.exit ||
			f.Error.Code != tt.code || !strings.Contains(f.Error.Message, tt.contains) {
			t.Errorf("clawdis %v: exit %d, stdout %q (%v), want exit %d with code %q and a message with %q",
				tt.args, code, stdout, err, tt.exit, tt.code, tt.contains)
		}
		if !strings.Contains(stderr, tt.contains) {
			t.Errorf("clawdis %v: stderr %q lacks %q", tt.args, stderr, tt.contains)
		}
	}
	// Without --json the same failure is one line on stderr and nothing on stdout.
	stdout, stderr, code := runCLI(t, env, "status", "--url", d.url, "--token", "wrong")
	if code != 1 || stdout != "" || !strings.Contains(stderr, "--token or CLAWDIS_GATEWAY_TOKEN") {
		t.Errorf("unauthorized without --json: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

// TestDaemonFlagErrors: --bind with a port, a bad --log-level and a --config that does not
// exist stop the daemon before anything starts, each with one line naming the problem.
func TestDaemonFlagErrors(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	env := []string{"HOME=" + home}
	missing := home + "/nope.json"
	for _, tt := range []struct {
		args []string
		env  []string
		code int
		want string
	}{
		{[]string{"gateway", "--bind", "127.0.0.1:18789"}, nil, 2, "--bind must be an address without a port (the port is gateway.port or --port)"},
		{[]string{"gateway", "--log-level", "loud"}, nil, 2, "--log-level must be debug, info, warn or error"},
		{[]string{"gateway"}, []string{"CLAWDIS_LOG_LEVEL=loud"}, 1, "$CLAWDIS_LOG_LEVEL must be debug, info, warn or error"},
		{[]string{"gateway", "--config", missing, "--port", "0"}, nil, 1, "config " + missing + ": no such file (named by --config)"},
		{[]string{"gateway", "--port", "0"}, []string{"CLAWDIS_CONFIG_PATH=" + missing}, 1,
			"config " + missing + ": no such file (named by $CLAWDIS_CONFIG_PATH)"},
	} {
		_, stderr, code := runCLI(t, append(env, tt.env...), tt.args...)
		if code != tt.code || !strings.Contains(stderr, "clawdis: "+tt.want) || strings.Contains(stderr, "loud") {
			t.Errorf("clawdis %v (%v): exit %d, stderr %q; want exit %d and %q", tt.args, tt.env, code, stderr, tt.code, tt.want)
		}
	}
}

func TestDaemonLogLevel(t *testing.T) {
	state := t.TempDir()
	if err := os.WriteFile(state+"/clawdis.json", []byte(`{logging: {level: "warn"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		flag, env string
		verbose   bool
		want      string
	}{
		{"", "", false, "WARN"},            // the config file
		{"", "error", false, "ERROR"},      // the environment wins over the file
		{"debug", "error", false, "DEBUG"}, // the flag wins over both
		{"error", "", true, "DEBUG"},       // --verbose logs frames, at debug
	} {
		df := daemonFlags{stateDir: state, logLevel: tt.flag, verbose: tt.verbose}
		level, err := daemonLogLevel(df, func(k string) string {
			if k == "CLAWDIS_LOG_LEVEL" {
				return tt.env
			}
			return ""
		})
		if err != nil || level.String() != tt.want {
			t.Errorf("flag %q env %q verbose %v: %v %v, want %s", tt.flag, tt.env, tt.verbose, level, err, tt.want)
		}
	}
}

// TestSendMediaWithoutMessage: --media-url alone is a valid send (the usage check passes and
// the request goes out).
func TestSendMediaWithoutMessage(t *testing.T) {
	var out, errb bytes.Buffer
	code := execute([]string{"gateway", "send", "--to", "+15550001", "--media-url", "https://example.com/a.png",
		"--url", closedURL(t)}, &out, &errb)
	if code != 1 || !strings.Contains(errb.String(), "gateway not reachable") {
		t.Errorf("send --media-url alone: exit %d, stderr %q; want the request to be attempted", code, errb.String())
	}
}

// TestCompletion: the shell completion offers providers, services and methods.
func TestCompletion(t *testing.T) {
	t.Parallel()
	env := []string{"HOME=" + t.TempDir()}
	for _, tt := range []struct {
		args []string
		want []string
	}{
		{[]string{"__complete", "gateway", "send", "--provider", ""}, []string{"whatsapp", "telegram"}},
		{[]string{"__complete", "service", ""}, []string{"presence", "health", "agent", "telegram", "webchat"}},
		{[]string{"__complete", "gateway", "call", ""}, []string{"health", "status", "send", "agent", "chat.history"}},
		{[]string{"__complete", "gateway", "--log-level", ""}, []string{"debug", "info", "warn", "error"}},
		{[]string{"__complete", "gat"}, []string{"gateway"}},
	} {
		stdout, _, code := runCLI(t, env, tt.args...)
		lines := strings.Split(stdout, "\n")
		for _, w := range tt.want {
			found := false
			for _, l := range lines {
				if strings.HasPrefix(l, w+"\t") || l == w {
					found = true
				}
			}
			if !found || code != 0 {
				t.Errorf("%v: %q lacks %q (exit %d)", tt.args, stdout, w, code)
			}
		}
	}
	var b bytes.Buffer
	if err := newRootCmd(&b, &b).GenBashCompletionV2(&b, true); err != nil || !strings.Contains(b.String(), "__complete") {
		t.Errorf("bash completion: %v", err)
	}
}

// TestStartLineNamesConfig: the start-up line says which config file was read (or that
// none was), and a typo in it is a warning naming the key it was meant to be.
func TestStartLineNamesConfig(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	d := startDaemon(t, t.TempDir(), "", nil)
	if logs := d.logs.String(); !strings.Contains(logs, `"config":"no config file; defaults"`) {
		t.Errorf("without a file: %s", logs)
	}
	d.stop()
	state := t.TempDir()
	d = startDaemon(t, state, `{agnet: {command: ["x"]}}`, nil)
	logs := d.logs.String()
	if !strings.Contains(logs, `"config":"`+state+`/clawdis.json"`) ||
		!strings.Contains(logs, `unknown config key \"agnet\" (did you mean \"agent\"?)`) {
		t.Errorf("with a file: %s", logs)
	}
}
