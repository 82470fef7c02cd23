package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/clawdis/clawdis/cmd/clawdis/internal/config"
)

// installFlags are the flags of `clawdis gateway install` and `uninstall`.
type installFlags struct {
	sf       stateFlags
	userUnit bool
	format   string
	runAs    string
	print    bool
}

// register adds the flags; install takes more than uninstall.
func (f *installFlags) register(cmd *cobra.Command, install bool) {
	cmd.Flags().BoolVar(&f.userUnit, "user", false, "a systemd user unit / launchd LaunchAgent of this user, instead of a system-wide one")
	cmd.Flags().StringVar(&f.format, "format", defaultUnitFormat(), "systemd or launchd")
	_ = cmd.RegisterFlagCompletionFunc("format", cobra.FixedCompletions([]string{formatSystemd, formatLaunchd}, cobra.ShellCompDirectiveNoFileComp))
	if !install {
		return
	}
	f.sf.register(cmd)
	cmd.Flags().StringVar(&f.runAs, "run-as", "", "system units: the account the gateway runs as (default the invoking user, $SUDO_USER under sudo)")
	cmd.Flags().BoolVar(&f.print, "print", false, "print the unit instead of installing it")
}

// defaultUnitFormat is launchd on macOS, systemd elsewhere.
func defaultUnitFormat() string {
	if runtime.GOOS == "darwin" {
		return formatLaunchd
	}
	return formatSystemd
}

// spec builds the unit for this binary, state dir and user.
func (f *installFlags) spec() (unitSpec, error) {
	if f.format != formatSystemd && f.format != formatLaunchd {
		return unitSpec{}, usageError{errors.New("--format must be systemd or launchd")}
	}
	bin, err := os.Executable()
	if err != nil {
		return unitSpec{}, fmt.Errorf("locate the clawdis binary: %w", err)
	}
	if resolved, err := filepath.EvalSymlinks(bin); err == nil {
		bin = resolved
	}
	p := f.sf.paths()
	state, err := filepath.Abs(p.StateDir)
	if err != nil {
		return unitSpec{}, fmt.Errorf("state dir: %w", err)
	}
	u := unitSpec{format: f.format, userUnit: f.userUnit, binary: bin, stateDir: state,
		envFile: filepath.Join(state, "gateway.env")}
	if p.ConfigFrom != "" {
		if u.config, err = filepath.Abs(p.ConfigPath); err != nil {
			return unitSpec{}, fmt.Errorf("config: %w", err)
		}
	}
	if !f.userUnit {
		u.envFile = "/etc/clawdis/gateway.env"
		var home string
		if u.runAs, u.group, home, err = runAsAccount(f.runAs); err != nil {
			return unitSpec{}, err
		}
		// The default state dir is that account's, not the one of whoever runs sudo.
		if f.sf.stateDir == "" && os.Getenv(config.EnvStateDir) == "" && home != "" {
			u.stateDir = filepath.Join(home, ".clawdis")
		}
	}
	return u, nil
}

// runAsAccount is the account (its name, primary group and home) a system unit runs as:
// name, else $SUDO_USER, else the current user.
func runAsAccount(name string) (account, group, home string, err error) {
	if name == "" {
		name = os.Getenv("SUDO_USER")
	}
	var u *user.User
	if name == "" {
		u, err = user.Current()
	} else {
		u, err = user.Lookup(name)
	}
	if err != nil {
		return "", "", "", fmt.Errorf("--run-as: no such user: %w", err)
	}
	group = u.Username
	if g, err := user.LookupGroupId(u.Gid); err == nil {
		group = g.Name
	}
	return u.Username, group, u.HomeDir, nil
}

// newInstallCmd is `clawdis gateway install`.
func newInstallCmd(stdout io.Writer) *cobra.Command {
	var f installFlags
	cmd := &cobra.Command{
		Use:   "install",
		Short: "Write the systemd unit (Linux) or launchd plist (macOS) that runs this gateway",
		Long: "Write a service unit that runs this binary as `clawdis gateway` with this state dir, then\n" +
			"print the command that enables it. Secrets never go on its command line: a systemd unit\n" +
			"reads them from its EnvironmentFile, a launchd plist from the config file.",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cmd.Flags().Changed("token") {
				return usageError{errors.New("--token does not go in a service unit, where every user could read it: " +
					"put CLAWDIS_GATEWAY_TOKEN in the unit's EnvironmentFile (systemd) or gateway.token in the config file (launchd)")}
			}
			u, err := f.spec()
			if err != nil {
				return err
			}
			if f.print {
				_, err := io.WriteString(stdout, u.render())
				return err
			}
			home, _ := os.UserHomeDir()
			path := unitPath(u.format, u.userUnit, home, os.Getenv("XDG_CONFIG_HOME"))
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				return installError(path, err)
			}
			if err := os.WriteFile(path, []byte(u.render()), 0o644); err != nil {
				return installError(path, err)
			}
			if u.userUnit || u.runAs == currentUserName() {
				if err := config.EnsureStateDir(u.stateDir); err != nil {
					return err
				}
			}
			fmt.Fprintf(stdout, "Wrote %s.\n", path)
			_, err = fmt.Fprintln(stdout, "Enable and start it: "+enableCommand(u, path))
			return err
		},
	}
	f.register(cmd, true)
	return cmd
}

// newUninstallCmd is `clawdis gateway uninstall`.
func newUninstallCmd(stdout io.Writer) *cobra.Command {
	var f installFlags
	cmd := &cobra.Command{
		Use:   "uninstall",
		Short: "Remove the service unit that `clawdis gateway install` wrote",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.format != formatSystemd && f.format != formatLaunchd {
				return usageError{errors.New("--format must be systemd or launchd")}
			}
			home, _ := os.UserHomeDir()
			xdg := os.Getenv("XDG_CONFIG_HOME")
			path := unitPath(f.format, f.userUnit, home, xdg)
			if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
				_, err := fmt.Fprintf(stdout, "Nothing to remove: %s does not exist.\n", path)
				return err
			}
			ctl := "systemctl"
			if f.userUnit {
				ctl = "systemctl --user"
			}
			if f.format == formatSystemd && enabledSystemd(path, f.userUnit) {
				return fmt.Errorf("%s is still enabled: run `%s disable --now clawdis-gateway` first", path, ctl)
			}
			if err := os.Remove(path); err != nil {
				return installError(path, err)
			}
			fmt.Fprintf(stdout, "Removed %s.\n", path)
			next := ctl + " daemon-reload"
			if f.format == formatLaunchd {
				next = "launchctl bootout system/" + launchdLabel + " (if it is still loaded)"
				if f.userUnit {
					next = "launchctl bootout gui/$(id -u)/" + launchdLabel + " (if it is still loaded)"
				}
			}
			_, err := fmt.Fprintln(stdout, "Then: "+next)
			return err
		},
	}
	f.register(cmd, false)
	return cmd
}

// enabledSystemd reports whether the unit at path is enabled (its symlink in the target's
// wants directory exists).
func enabledSystemd(path string, userUnit bool) bool {
	target := "multi-user.target.wants"
	if userUnit {
		target = "default.target.wants"
	}
	_, err := os.Lstat(filepath.Join(filepath.Dir(path), target, systemdUnitName))
	return err == nil
}

// enableCommand is the command that enables and starts the unit written at path.
func enableCommand(u unitSpec, path string) string {
	switch {
	case u.format == formatLaunchd && u.userUnit:
		return "launchctl bootstrap gui/$(id -u) " + path
	case u.format == formatLaunchd:
		return "sudo launchctl bootstrap system " + path
	case u.userUnit:
		return "systemctl --user daemon-reload && systemctl --user enable --now clawdis-gateway" +
			" (and `loginctl enable-linger` to keep it running after logout)"
	}
	return "systemctl daemon-reload && systemctl enable --now clawdis-gateway"
}

// installError says what to do when the unit file cannot be written or removed.
func installError(path string, err error) error {
	if errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("cannot write %s: permission denied; run it with sudo, or use --user for a unit of your own", path)
	}
	return fmt.Errorf("install %s: %w", path, err)
}

// currentUserName is the name of the user running clawdis, or "".
func currentUserName() string {
	u, err := user.Current()
	if err != nil {
		return ""
	}
	return u.Username
}
