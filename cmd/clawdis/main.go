// Command clawdis is the gateway daemon and its command-line clients: one static binary.
// This package is the only place that exits the process or handles signals.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// Set with -ldflags "-X main.version=… -X main.commit=…".
var (
	version = "dev"
	commit  = ""
)

func main() {
	os.Exit(execute(os.Args[1:], os.Stdout, os.Stderr))
}

// usageError marks bad command-line usage (exit 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// execute runs the CLI and returns the exit code: 0 success, 1 failure, 2 bad usage, 130
// interrupted (Ctrl-C during gateway agent). A
// failure is one line on stderr; with --json it is also a JSON object on stdout (SPEC §2).
func execute(args []string, stdout, stderr io.Writer) int {
	root := newRootCmd(stdout, stderr)
	root.SetArgs(args)
	cmd, err := root.ExecuteC()
	if err == nil {
		return 0
	}
	fmt.Fprintln(stderr, "clawdis: "+err.Error())
	var reported reportedError
	if wantsJSON(cmd, args) && !errors.As(err, &reported) {
		writeFailureJSON(stdout, err)
	}
	var ue usageError
	if errors.As(err, &ue) {
		return 2
	}
	var ie interruptedError
	if errors.As(err, &ie) {
		return exitInterrupted
	}
	return 1
}

func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "clawdis",
		Short:         "clawdis: a personal messaging gateway (WhatsApp, Telegram, AI agent turns)",
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cmd.Help()
		},
	}
	root.SetVersionTemplate(versionLine() + "\n")
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(flagError)
	root.SetHelpCommand(newHelpCmd())
	root.AddCommand(newGatewayCmd(stdout, stderr), newVersionCmd(stdout), newLoginCmd(stdout), newLogoutCmd(stdout),
		newWebChatCmd(stdout), newServiceCmd(stdout), newBusCmd(stdout),
		newShortcutCmd("status", stdout), newShortcutCmd("health", stdout),
		newDoctorCmd(stdout), newConfigCmd(stdout), newDashboardCmd(stdout))
	root.InitDefaultCompletionCmd() // now rather than at Execute, so that the next line covers it
	makeGroupsRunnable(root)
	return root
}

// makeGroupsRunnable gives every command that only groups subcommands a RunE that prints its
// help, and noArgs: cobra would otherwise print the help and exit 0 for an unknown
// subcommand of it.
func makeGroupsRunnable(cmd *cobra.Command) {
	for _, c := range cmd.Commands() {
		makeGroupsRunnable(c)
	}
	if cmd.HasSubCommands() && cmd.Run == nil && cmd.RunE == nil {
		cmd.Args = noArgs
		cmd.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
	}
}

// versionInfo is what `clawdis version --json` prints.
type versionInfo struct {
	Version string `json:"version"`
	Commit  string `json:"commit"`
	Go      string `json:"go"`
	OS      string `json:"os"`
	Arch    string `json:"arch"`
}

func currentVersion() versionInfo {
	return versionInfo{Version: version, Commit: buildCommit(), Go: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH}
}

// versionLine is the one line of `clawdis version` and `clawdis --version`.
func versionLine() string {
	v := currentVersion()
	return fmt.Sprintf("clawdis %s (commit %s, %s, %s/%s)", v.Version, v.Commit, v.Go, v.OS, v.Arch)
}

func newVersionCmd(stdout io.Writer) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit and Go version",
		Args:  noArgs,
		RunE: func(*cobra.Command, []string) error {
			if asJSON {
				b, _ := json.Marshal(currentVersion())
				_, err := fmt.Fprintln(stdout, string(b))
				return err
			}
			_, err := fmt.Fprintln(stdout, versionLine())
			return err
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print version, commit, Go version, OS and architecture as JSON")
	return cmd
}

func buildCommit() string {
	if commit != "" {
		return commit
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				return s.Value[:12]
			}
		}
	}
	return "unknown"
}
