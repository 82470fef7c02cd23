package main

import (
	"bufio"
	"encoding/xml"
	"os"
	"strings"
	"testing"

	"github.com/spf13/cobra"
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

func TestSystemdUnitFlagsParse(t *testing.T) {
	f, err := os.Open("../../deploy/systemd/clawdis-gateway.service")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	keys := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if ok && !strings.HasPrefix(k, "#") {
			keys[k] = v
		}
	}
	exec := strings.Fields(keys["ExecStart"])
	if len(exec) < 2 || !strings.HasSuffix(exec[0], "/clawdis") {
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
}

func TestLaunchdPlistFlagsParse(t *testing.T) {
	b, err := os.ReadFile("../../deploy/launchd/com.clawdis.gateway.plist")
	if err != nil {
		t.Fatal(err)
	}
	// ProgramArguments is the <array> of <string>s after its <key>.
	dec := xml.NewDecoder(strings.NewReader(string(b)))
	var args []string
	inArgs, afterKey := false, false
	for {
		tok, err := dec.Token()
		if err != nil {
			break
		}
		switch el := tok.(type) {
		case xml.StartElement:
			if el.Name.Local == "array" && afterKey {
				inArgs = true
			}
			if el.Name.Local == "string" && inArgs {
				var s string
				if err := dec.DecodeElement(&s, &el); err == nil {
					args = append(args, s)
				}
			}
			if el.Name.Local == "key" {
				var k string
				_ = dec.DecodeElement(&k, &el)
				afterKey = k == "ProgramArguments"
			}
		case xml.EndElement:
			if el.Name.Local == "array" {
				inArgs, afterKey = false, false
			}
		}
	}
	if len(args) < 2 {
		t.Fatalf("ProgramArguments = %v", args)
	}
	parseDaemonArgs(t, args[1:])
}
