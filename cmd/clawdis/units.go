package main

import (
	"encoding/xml"
	"fmt"
	"path/filepath"
	"strings"
)

// Service unit names and formats of `clawdis gateway install` (and of deploy/).
const (
	systemdUnitName = "clawdis-gateway.service"
	launchdLabel    = "com.clawdis.gateway"
	formatSystemd   = "systemd"
	formatLaunchd   = "launchd"
)

// unitSpec is what a generated service unit runs: this binary as `clawdis gateway` with its
// state dir, as a user.
type unitSpec struct {
	format   string // formatSystemd or formatLaunchd
	userUnit bool   // a systemd user unit / a launchd LaunchAgent; else system-wide
	binary   string // absolute path of the clawdis binary
	stateDir string
	config   string // --config, when one was given
	runAs    string // system units: the account the gateway runs as
	group    string // systemd system units: its group
	envFile  string // systemd: where the token and other secrets are read from
}

// args is the gateway's command line (without the binary). Secrets are never on it.
func (u unitSpec) args() []string {
	a := []string{"gateway", "--state-dir", u.stateDir}
	if u.config != "" {
		a = append(a, "--config", u.config)
	}
	return append(a, "--log-format", "json")
}

// render writes the unit file's contents.
func (u unitSpec) render() string {
	if u.format == formatLaunchd {
		return u.renderLaunchd()
	}
	return u.renderSystemd()
}

// renderSystemd writes a systemd unit: sandboxed for a system unit, plain for a user unit.
func (u unitSpec) renderSystemd() string {
	var b strings.Builder
	ctl := "systemctl"
	if u.userUnit {
		ctl = "systemctl --user"
	}
	fmt.Fprintf(&b, "# clawdis gateway under systemd, as written by `clawdis gateway install%s`.\n", map[bool]string{true: " --user"}[u.userUnit])
	b.WriteString("# Put CLAWDIS_GATEWAY_TOKEN=... (and TELEGRAM_BOT_TOKEN=..., OPENAI_API_KEY=... as needed)\n")
	fmt.Fprintf(&b, "# in %s (mode 0600), never on the command line, then:\n", u.envFile)
	fmt.Fprintf(&b, "#   %s daemon-reload && %s enable --now clawdis-gateway\n", ctl, ctl)
	b.WriteString("[Unit]\nDescription=clawdis personal messaging gateway\nDocumentation=https://github.com/clawdis/clawdis\n")
	if !u.userUnit {
		b.WriteString("After=network-online.target\nWants=network-online.target\n")
	}
	b.WriteString("\n[Service]\nType=simple\n")
	if !u.userUnit {
		fmt.Fprintf(&b, "User=%s\nGroup=%s\n", u.runAs, u.group)
	}
	fmt.Fprintf(&b, "EnvironmentFile=-%s\n", u.envFile)
	fmt.Fprintf(&b, "ExecStart=%s\n", systemdCommandLine(append([]string{u.binary}, u.args()...)))
	b.WriteString("Restart=on-failure\nRestartSec=5\n")
	b.WriteString("# SIGTERM to the daemon first (it drains for up to 5 s), then SIGKILL to what is left of the\n")
	b.WriteString("# group, e.g. agent commands, only after TimeoutStopSec.\n")
	b.WriteString("KillMode=mixed\nKillSignal=SIGTERM\nTimeoutStopSec=20\n")
	if name, ok := strings.CutPrefix(u.stateDir, "/var/lib/"); ok && !u.userUnit && !strings.Contains(name, "/") {
		fmt.Fprintf(&b, "StateDirectory=%s\nStateDirectoryMode=0700\n", name)
	}
	b.WriteString("NoNewPrivileges=true\n")
	if !u.userUnit {
		protectHome := "true"
		if strings.HasPrefix(u.stateDir, "/home/") || strings.HasPrefix(u.stateDir, "/root/") {
			protectHome = "read-only"
		}
		fmt.Fprintf(&b, "ProtectSystem=strict\nProtectHome=%s\nPrivateTmp=true\nReadWritePaths=%s\n", protectHome, u.stateDir)
	}
	b.WriteString("\n[Install]\n")
	if u.userUnit {
		b.WriteString("WantedBy=default.target\n")
	} else {
		b.WriteString("WantedBy=multi-user.target\n")
	}
	return b.String()
}

// systemdCommandLine quotes the arguments that need it for ExecStart.
func systemdCommandLine(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		if strings.ContainsAny(a, " \t\"'\\;$%") {
			a = `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, `%`, `%%`, `$`, `$$`).Replace(a) + `"`
		}
		out[i] = a
	}
	return strings.Join(out, " ")
}

// renderLaunchd writes a launchd plist: a LaunchAgent, or a LaunchDaemon with UserName.
func (u unitSpec) renderLaunchd() string {
	var b strings.Builder
	kind, where := "LaunchAgent", "gui/$(id -u)"
	if !u.userUnit {
		kind, where = "LaunchDaemon", "system"
	}
	b.WriteString("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n")
	b.WriteString("<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n")
	// No "--" in here: XML comments cannot hold it.
	fmt.Fprintf(&b, "<!-- clawdis gateway as a %s, as written by `clawdis gateway install`. Put the\n", kind)
	fmt.Fprintf(&b, "     token in %s (gateway.token), never in this file, then:\n", xmlText(filepath.Join(u.stateDir, "clawdis.json")))
	fmt.Fprintf(&b, "     launchctl bootstrap %s %s -->\n", where, xmlText(unitPath(u.format, u.userUnit, "", "")))
	b.WriteString("<plist version=\"1.0\">\n<dict>\n")
	fmt.Fprintf(&b, "  <key>Label</key>\n  <string>%s</string>\n", launchdLabel)
	if !u.userUnit {
		fmt.Fprintf(&b, "  <key>UserName</key>\n  <string>%s</string>\n", xmlText(u.runAs))
	}
	b.WriteString("  <key>ProgramArguments</key>\n  <array>\n")
	for _, a := range append([]string{u.binary}, u.args()...) {
		fmt.Fprintf(&b, "    <string>%s</string>\n", xmlText(a))
	}
	b.WriteString("  </array>\n  <key>RunAtLoad</key>\n  <true/>\n")
	b.WriteString("  <key>KeepAlive</key>\n  <dict>\n    <key>SuccessfulExit</key>\n    <false/>\n  </dict>\n")
	b.WriteString("  <key>ThrottleInterval</key>\n  <integer>5</integer>\n  <key>ExitTimeOut</key>\n  <integer>20</integer>\n")
	logFile := xmlText(filepath.Join(u.stateDir, "gateway.log"))
	fmt.Fprintf(&b, "  <key>StandardOutPath</key>\n  <string>%s</string>\n", logFile)
	fmt.Fprintf(&b, "  <key>StandardErrorPath</key>\n  <string>%s</string>\n", logFile)
	b.WriteString("</dict>\n</plist>\n")
	return b.String()
}

// xmlText escapes s for XML character data.
func xmlText(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// unitPath is where a unit of the format is installed, for the user whose home directory is
// home ("" writes it as ~) and whose $XDG_CONFIG_HOME is xdgConfig (may be "").
func unitPath(format string, userUnit bool, home, xdgConfig string) string {
	if home == "" {
		home = "~"
	}
	switch {
	case format == formatLaunchd && userUnit:
		return filepath.Join(home, "Library", "LaunchAgents", launchdLabel+".plist")
	case format == formatLaunchd:
		return filepath.Join("/Library/LaunchDaemons", launchdLabel+".plist")
	case userUnit:
		if xdgConfig == "" {
			xdgConfig = filepath.Join(home, ".config")
		}
		return filepath.Join(xdgConfig, "systemd", "user", systemdUnitName)
	}
	return filepath.Join("/etc/systemd/system", systemdUnitName)
}

// unitCandidates lists every place a clawdis service unit may be installed.
func unitCandidates(home string, getenv func(string) string) []string {
	var out []string
	for _, format := range []string{formatSystemd, formatLaunchd} {
		for _, user := range []bool{false, true} {
			out = append(out, unitPath(format, user, home, getenv("XDG_CONFIG_HOME")))
		}
	}
	return out
}

// plistProgramArguments returns the ProgramArguments strings of a launchd plist.
func plistProgramArguments(b []byte) []string {
	dec := xml.NewDecoder(strings.NewReader(string(b)))
	var args []string
	inArgs, afterKey := false, false
	for {
		tok, err := dec.Token()
		if err != nil {
			return args
		}
		switch el := tok.(type) {
		case xml.StartElement:
			switch {
			case el.Name.Local == "array" && afterKey:
				inArgs = true
			case el.Name.Local == "string" && inArgs:
				var s string
				if dec.DecodeElement(&s, &el) == nil {
					args = append(args, s)
				}
			case el.Name.Local == "key":
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
}
