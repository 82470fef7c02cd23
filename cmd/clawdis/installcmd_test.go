package main

import (
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
)

// TestGatewayInstallBinary installs a systemd user unit and a LaunchAgent for this binary
// and state dir, parses what was written with the real CLI, and removes them again.
func TestGatewayInstallBinary(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	state := filepath.Join(home, "st")
	xdg := filepath.Join(home, "xdg")
	env := []string{"HOME=" + home, "XDG_CONFIG_HOME=" + xdg, "CLAWDIS_STATE_DIR=" + state}
	exe, _ := os.Executable()
	exe, _ = filepath.EvalSymlinks(exe)

	stdout, stderr, code := runCLI(t, env, "gateway", "install", "--user", "--format", "systemd")
	unitFile := filepath.Join(xdg, "systemd", "user", "clawdis-gateway.service")
	if code != 0 || !strings.Contains(stdout, "Wrote "+unitFile) || !strings.Contains(stdout, "systemctl --user enable --now clawdis-gateway") {
		t.Fatalf("install --user: exit %d\n%s%s", code, stdout, stderr)
	}
	b, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	keys := checkSystemdUnit(t, string(b))
	if want := exe + " gateway --state-dir " + state + " --log-format json"; keys["ExecStart"] != want {
		t.Errorf("ExecStart = %q, want %q", keys["ExecStart"], want)
	}
	if keys["EnvironmentFile"] != "-"+filepath.Join(state, "gateway.env") || keys["WantedBy"] != "default.target" || keys["User"] != "" {
		t.Errorf("user unit keys: %v", keys)
	}
	if fi, err := os.Stat(state); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("state dir after install: %v %v", fi, err)
	}

	// An enabled unit is not removed behind systemd's back.
	wants := filepath.Join(filepath.Dir(unitFile), "default.target.wants")
	if err := os.MkdirAll(wants, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(unitFile, filepath.Join(wants, "clawdis-gateway.service")); err != nil {
		t.Fatal(err)
	}
	_, stderr, code = runCLI(t, env, "gateway", "uninstall", "--user", "--format", "systemd")
	if code != 1 || !strings.Contains(stderr, "systemctl --user disable --now clawdis-gateway") {
		t.Errorf("uninstall of an enabled unit: exit %d, %q", code, stderr)
	}
	if err := os.RemoveAll(wants); err != nil {
		t.Fatal(err)
	}
	stdout, _, code = runCLI(t, env, "gateway", "uninstall", "--user", "--format", "systemd")
	if _, err := os.Stat(unitFile); code != 0 || err == nil || !strings.Contains(stdout, "Removed "+unitFile) {
		t.Errorf("uninstall: exit %d, %q, file %v", code, stdout, err)
	}
	stdout, _, code = runCLI(t, env, "gateway", "uninstall", "--user", "--format", "systemd")
	if code != 0 || !strings.Contains(stdout, "Nothing to remove") {
		t.Errorf("second uninstall: exit %d, %q", code, stdout)
	}

	// A LaunchAgent, printed rather than installed, then installed.
	stdout, _, code = runCLI(t, env, "gateway", "install", "--user", "--format", "launchd", "--print", "--config", filepath.Join(home, "c.json"))
	args := checkPlist(t, stdout)
	if code != 0 || args[0] != exe || !strings.Contains(strings.Join(args, " "), "--config "+filepath.Join(home, "c.json")) {
		t.Errorf("install --print --format launchd: exit %d, args %v", code, args)
	}
	stdout, _, code = runCLI(t, env, "gateway", "install", "--user", "--format", "launchd")
	plist := filepath.Join(home, "Library", "LaunchAgents", "com.clawdis.gateway.plist")
	if b, err := os.ReadFile(plist); code != 0 || err != nil || !strings.Contains(stdout, "launchctl bootstrap gui/$(id -u) "+plist) {
		t.Errorf("install launchd: exit %d, %q, %v", code, stdout, err)
	} else {
		checkPlist(t, string(b))
	}
}

// TestGatewayInstallSystemUnit prints a system-wide unit run as the current user.
func TestGatewayInstallSystemUnit(t *testing.T) {
	t.Parallel()
	me, err := user.Current()
	if err != nil {
		t.Skip("no current user")
	}
	home := t.TempDir()
	env := []string{"HOME=" + home, "SUDO_USER="}
	stdout, stderr, code := runCLI(t, env, "gateway", "install", "--format", "systemd", "--print", "--state-dir", "/var/lib/clawdis")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	keys := checkSystemdUnit(t, stdout)
	if keys["User"] != me.Username || keys["StateDirectory"] != "clawdis" || keys["ReadWritePaths"] != "/var/lib/clawdis" ||
		keys["WantedBy"] != "multi-user.target" || keys["EnvironmentFile"] != "-/etc/clawdis/gateway.env" {
		t.Errorf("system unit: %s", stdout)
	}
	_, stderr, code = runCLI(t, env, "gateway", "install", "--format", "upstart", "--print")
	if code != 2 || !strings.Contains(stderr, "--format must be systemd or launchd") {
		t.Errorf("bad --format: exit %d, %q", code, stderr)
	}
}

func TestSystemdCommandLine(t *testing.T) {
	got := systemdCommandLine([]string{"/opt/my apps/clawdis", "gateway", "--state-dir", "/srv/50%"})
	if want := `"/opt/my apps/clawdis" gateway --state-dir "/srv/50%%"`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}
