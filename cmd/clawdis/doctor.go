package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/clawdis/clawdis/cmd/clawdis/internal/config"
)

// checkResult is one check of `clawdis doctor` (SPEC §14.4).
type checkResult struct {
	Name    string `json:"name"`
	OK      bool   `json:"ok"`
	Message string `json:"message"`
	Fix     string `json:"fix,omitempty"`
}

// doctorReport is what `clawdis doctor --json` prints.
type doctorReport struct {
	OK     bool          `json:"ok"`
	Checks []checkResult `json:"checks"`
}

// pass is a check that passed, with its message.
func pass(name, format string, args ...any) checkResult {
	return checkResult{Name: name, OK: true, Message: fmt.Sprintf(format, args...)}
}

// fail is a check that failed, with its message and how to fix it.
func fail(name, fix, format string, args ...any) checkResult {
	return checkResult{Name: name, Message: fmt.Sprintf(format, args...), Fix: fix}
}

// doctorEnv is what the checks read: the resolved paths, the environment and the limits of
// the network checks. Tests fill it in; the command takes it from the process.
type doctorEnv struct {
	paths   config.Paths
	getenv  func(string) string
	home    string
	timeout time.Duration // each network check
	http    *http.Client
	// units are the service unit files to inspect (systemd units, launchd plists); those
	// that do not exist are skipped.
	units []string
}

// reportedError is a failure whose output, JSON included, has already been printed: execute
// prints only its one line on stderr.
type reportedError struct{ err error }

func (e reportedError) Error() string { return e.err.Error() }
func (e reportedError) Unwrap() error { return e.err }

// newDoctorCmd is `clawdis doctor [--json]`.
func newDoctorCmd(stdout io.Writer) *cobra.Command {
	var sf stateFlags
	var asJSON bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check the installation and say how to fix each problem",
		Long: "Check the config file, the state dir, the gateway (or its port), the WhatsApp link, the\n" +
			"Telegram token, the agent backend, the token of a non-loopback bind and the service\n" +
			"units. Runs without a gateway or beside one. Exits 1 when a check fails.",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			home, _ := os.UserHomeDir()
			env := doctorEnv{paths: sf.paths(), getenv: os.Getenv, home: home, timeout: timeout,
				http: &http.Client{Timeout: timeout}}
			env.units = unitCandidates(home, os.Getenv)
			rep := runDoctor(cmd.Context(), env)
			if asJSON {
				b, _ := json.MarshalIndent(rep, "", "  ")
				fmt.Fprintln(stdout, string(b))
			} else {
				printReport(stdout, rep)
			}
			if failed := countFailed(rep); failed > 0 {
				return reportedError{fmt.Errorf("doctor: %d of %d checks failed", failed, len(rep.Checks))}
			}
			return nil
		},
	}
	sf.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print {ok, checks:[{name, ok, message, fix}]} as JSON")
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Second, "bound of each network check")
	return cmd
}

// countFailed is the number of failed checks in rep.
func countFailed(rep doctorReport) int {
	n := 0
	for _, c := range rep.Checks {
		if !c.OK {
			n++
		}
	}
	return n
}

// printReport writes rep as text: a ✓ or ✗ line per check, a fix line under each failure.
func printReport(w io.Writer, rep doctorReport) {
	for _, c := range rep.Checks {
		mark := "✓"
		if !c.OK {
			mark = "✗"
		}
		fmt.Fprintf(w, "%s %s: %s\n", mark, c.Name, c.Message)
		if c.Fix != "" {
			fmt.Fprintf(w, "    fix: %s\n", c.Fix)
		}
	}
	if n := countFailed(rep); n > 0 {
		fmt.Fprintf(w, "%d %s to fix.\n", n, plural(n, "problem"))
	} else {
		fmt.Fprintln(w, "Everything looks right.")
	}
}

// runDoctor runs every check in order. A config file that does not load is one failed
// check; the others then use the defaults.
func runDoctor(ctx context.Context, env doctorEnv) doctorReport {
	cfgCheck, cfg, loaded := checkConfig(env.paths)
	cfg.ApplyEnv(env.getenv)
	// These read the configuration: with a file that does not load they would only report
	// on the defaults, so they wait for the config to be fixed.
	dependent := func(name string, run func() checkResult) checkResult {
		if !loaded {
			return pass(name, "not checked until the config file loads")
		}
		return run()
	}
	checks := []checkResult{
		cfgCheck,
		checkStateDir(env.paths.StateDir),
		dependent("gateway", func() checkResult { return checkGateway(ctx, env, cfg) }),
		dependent("whatsapp", func() checkResult { return checkWhatsApp(ctx, env, cfg) }),
		dependent("telegram", func() checkResult { return checkTelegram(ctx, env, cfg) }),
		dependent("agent", func() checkResult { return checkAgent(ctx, env, cfg) }),
		dependent("bind", func() checkResult { return checkBindToken(cfg) }),
		checkUnits(env.units),
	}
	return doctorReport{OK: countFailed(doctorReport{Checks: checks}) == 0, Checks: checks}
}

// checkConfig loads the config file; loaded is false when it does not load (cfg is then
// the defaults).
func checkConfig(p config.Paths) (c checkResult, cfg config.Config, loaded bool) {
	const name = "config"
	cfg, warnings, found, err := p.Load()
	var ce *config.Error
	switch {
	case errors.As(err, &ce) && strings.HasPrefix(ce.Problem, "no such file"):
		return fail(name, "create the file, or drop --config / $CLAWDIS_CONFIG_PATH to use "+
			"<state dir>/clawdis.json", "%s", err.Error()), config.Default(), false
	case err != nil:
		return fail(name, "correct that key (every key: docs/configuration.md), then run "+
			"`clawdis config validate`", "%s", err.Error()), config.Default(), false
	case len(warnings) > 0:
		return fail(name, "rename or remove the key; unknown keys are ignored, so the setting "+
			"you meant is not applied", "%s: %s", p.ConfigPath, strings.Join(warnings, "; ")), cfg, true
	case !found:
		return pass(name, "no config file at %s; all defaults apply", p.ConfigPath), cfg, true
	}
	return pass(name, "%s is valid", p.ConfigPath), cfg, true
}

// minFreeBytes is the free space below which the state dir check fails.
const minFreeBytes = 100 << 20

// checkStateDir wants the state dir to exist, be private (0700), writable, with free space.
func checkStateDir(dir string) checkResult {
	const name = "state dir"
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fail(name, "start the gateway once (it creates it), or: mkdir -m 700 "+dir, "%s does not exist", dir)
	case err != nil:
		return fail(name, "check the path and its parents' permissions", "%s: %s", dir, err.Error())
	case !fi.IsDir():
		return fail(name, "move the file away or choose another --state-dir", "%s is not a directory", dir)
	case fi.Mode().Perm()&0o077 != 0:
		return fail(name, "chmod 700 "+dir, "%s is mode %04o: other users can read the WhatsApp keys and transcripts in it",
			dir, fi.Mode().Perm())
	}
	f, err := os.CreateTemp(dir, ".doctor-*")
	if err != nil {
		return fail(name, "run clawdis as the directory's owner, or chown it to this user", "%s is not writable: %s",
			dir, errors.Unwrap(err))
	}
	_ = f.Close()
	_ = os.Remove(f.Name())
	if free, ok := freeBytes(dir); ok && free < minFreeBytes {
		return fail(name, "free some space: the bus store, transcripts and media live there",
			"%s has only %d MiB free", dir, free>>20)
	}
	return pass(name, "%s exists, is private (0700) and writable", dir)
}
