package main

import (
	"bufio"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/clawdis/clawdis/cmd/clawdis/internal/config"
)

// parseDaemonArgs parses args (without the program name) with the real CLI up to the
// gateway command, without running it.
func parseDaemonArgs(t *testing.T, args []string) {
	t.Helper()
	root := newRootCmd(os.Stdout, os.Stderr)
	cmd, rest, err := root.Find(args)
	if err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	if cmd.Name() != "gateway" {
		t.Fatalf("%v resolves to %q, want gateway", args, cmd.Name())
	}
	if err := cmd.ParseFlags(rest); err != nil {
		t.Fatalf("flags %v: %v", rest, err)
	}
	if err := cobra.NoArgs(cmd, cmd.Flags().Args()); err != nil {
		t.Fatalf("%v: %v", args, err)
	}
}

// systemdKeys reads the Key=Value lines of a systemd unit (a later line wins).
func systemdKeys(unit string) map[string]string {
	keys := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(unit))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if ok && !strings.HasPrefix(k, "#") {
			keys[k] = v
		}
	}
	return keys
}

// checkSystemdUnit parses a unit's command line with the real CLI and checks what the
// gateway needs from its supervisor; the token must not be on the command line.
func checkSystemdUnit(t *testing.T, unit string) map[string]string {
	t.Helper()
	keys := systemdKeys(unit)
	exec := strings.Fields(keys["ExecStart"])
	if len(exec) < 2 || !filepath.IsAbs(exec[0]) {
		t.Fatalf("ExecStart = %q", keys["ExecStart"])
	}
	parseDaemonArgs(t, exec[1:])
	for k, want := range map[string]string{"Restart": "on-failure", "KillMode": "mixed", "TimeoutStopSec": "20"} {
		if keys[k] != want {
			t.Errorf("%s = %q, want %q", k, keys[k], want)
		}
	}
	if strings.Contains(keys["ExecStart"], "--token") || keys["EnvironmentFile"] == "" {
		t.Error("the token must come from the EnvironmentFile, not the command line")
	}
	return keys
}

// checkPlist parses a plist's ProgramArguments with the real CLI.
func checkPlist(t *testing.T, plist string) []string {
	t.Helper()
	args := plistProgramArguments([]byte(plist))
	if len(args) < 2 || !filepath.IsAbs(args[0]) {
		t.Fatalf("ProgramArguments = %v", args)
	}
	parseDaemonArgs(t, args[1:])
	if slices.Contains(args, "--token") {
		t.Error("the token must not be on the command line")
	}
	return args
}

func TestSystemdUnitFlagsParse(t *testing.T) {
	b, err := os.ReadFile("../../deploy/systemd/clawdis-gateway.service")
	if err != nil {
		t.Fatal(err)
	}
	checkSystemdUnit(t, string(b))
}

func TestLaunchdPlistFlagsParse(t *testing.T) {
	b, err := os.ReadFile("../../deploy/launchd/com.clawdis.gateway.plist")
	if err != nil {
		t.Fatal(err)
	}
	checkPlist(t, string(b))
}

// TestDeployFilesAreGenerated: the files in deploy/ are what `clawdis gateway install`
// writes for the paths they use, so there is one template, not two copies that drift.
func TestDeployFilesAreGenerated(t *testing.T) {
	for path, spec := range map[string]unitSpec{
		"../../deploy/systemd/clawdis-gateway.service": {format: formatSystemd, binary: "/usr/local/bin/clawdis",
			stateDir: "/var/lib/clawdis", runAs: "clawdis", group: "clawdis", envFile: "/etc/clawdis/gateway.env"},
		"../../deploy/launchd/com.clawdis.gateway.plist": {format: formatLaunchd, userUnit: true,
			binary: "/usr/local/bin/clawdis", stateDir: "/Users/USER/.clawdis"},
	} {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		got := spec.render()
		if os.Getenv("CLAWDIS_UPDATE_DEPLOY") == "1" {
			if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if got != string(b) {
			t.Errorf("%s is not what `clawdis gateway install` generates; CLAWDIS_UPDATE_DEPLOY=1 go test -run TestDeployFilesAreGenerated ./cmd/clawdis rewrites it", path)
		}
	}
}

// TestComposeClusterConfig: the cluster override's config (deploy/compose/clawdis-cluster.json)
// is valid and is the compose stack's config with bus.replicas 3, nothing else.
func TestComposeClusterConfig(t *testing.T) {
	parse := func(name string) config.Config {
		t.Helper()
		path := filepath.Join("..", "..", "deploy", "compose", name)
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		cfg, warnings, err := config.Parse(data, path)
		if err != nil || len(warnings) > 0 {
			t.Fatalf("%s: %v %v", name, err, warnings)
		}
		return cfg
	}
	single, cluster := parse("clawdis.json"), parse("clawdis-cluster.json")
	if single.Bus.Replicas > 1 || cluster.Bus.Replicas != 3 {
		t.Fatalf("bus.replicas: %d in clawdis.json, %d in clawdis-cluster.json; want 1 and 3", single.Bus.Replicas, cluster.Bus.Replicas)
	}
	cluster.Bus.Replicas = single.Bus.Replicas
	if !reflect.DeepEqual(single, cluster) {
		t.Fatalf("clawdis-cluster.json differs from clawdis.json in more than bus.replicas:\n%+v\n%+v", single, cluster)
	}
}
