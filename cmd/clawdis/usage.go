package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/cmd/clawdis/internal/suggest"
	"github.com/clawdis/clawdis/edge/client"
)

// noArgs rejects positional arguments: an unknown subcommand, or an argument to a command
// that takes none, is `unknown command "X" for "clawdis …"`, with the closest subcommand
// when one is close (SPEC §2).
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	return unknownCommand(cmd, args[0])
}

// unknownCommand is the usage error for name, which is not a subcommand of cmd.
func unknownCommand(cmd *cobra.Command, name string) error {
	msg := fmt.Sprintf("unknown command %q for %q", name, cmd.CommandPath())
	if s := suggest.Closest(name, subcommandNames(cmd)); s != "" {
		msg += fmt.Sprintf("; did you mean %q?", s)
	} else if cmd.HasAvailableSubCommands() {
		msg += fmt.Sprintf(" (see %q)", cmd.CommandPath()+" --help")
	}
	return usageError{errors.New(msg)}
}

// subcommandNames lists the names and aliases of cmd's visible subcommands.
func subcommandNames(cmd *cobra.Command) []string {
	var names []string
	for _, c := range cmd.Commands() {
		if c.IsAvailableCommand() || c.Name() == "help" {
			names = append(names, c.Name())
			names = append(names, c.Aliases...)
		}
	}
	return names
}

// flagError turns pflag's parse errors into usage errors, with the closest flag of the
// command for an unknown one.
func flagError(cmd *cobra.Command, err error) error {
	// `clawdis doctr --json`: the unknown command is the mistake, not the flag that its
	// parent does not have.
	if args := cmd.Flags().Args(); len(args) > 0 && cmd.HasAvailableSubCommands() {
		return unknownCommand(cmd, args[0])
	}
	name, ok := strings.CutPrefix(err.Error(), "unknown flag: --")
	if !ok {
		return usageError{err}
	}
	name, _, _ = strings.Cut(name, "=")
	msg := fmt.Sprintf("unknown flag %q for %q", "--"+name, cmd.CommandPath())
	var flags []string
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if !f.Hidden {
			flags = append(flags, f.Name)
		}
	})
	if s := suggest.Closest(name, flags); s != "" {
		msg += fmt.Sprintf("; did you mean %q?", "--"+s)
	}
	return usageError{errors.New(msg)}
}

// newHelpCmd is `clawdis help [COMMAND…]`: the help of a command, and for an unknown one the
// same error as running it.
func newHelpCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "help [command]",
		Short: "Help about any command",
		RunE: func(cmd *cobra.Command, args []string) error {
			root := cmd.Root()
			target, rest, err := root.Find(args)
			if err != nil {
				return usageError{err}
			}
			if len(rest) > 0 {
				return unknownCommand(target, rest[0])
			}
			return target.Help()
		},
		ValidArgsFunction: func(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
			target, _, err := cmd.Root().Find(args)
			if err != nil {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			return subcommandNames(target), cobra.ShellCompDirectiveNoFileComp
		},
	}
}

// wantsJSON reports whether the failed command was asked for JSON output. When its flags did
// not parse, the raw arguments decide.
func wantsJSON(cmd *cobra.Command, args []string) bool {
	if cmd == nil || cmd.Flags().Lookup("json") == nil {
		return false
	}
	if v, err := cmd.Flags().GetBool("json"); err == nil && v {
		return true
	}
	return slices.Contains(args, "--json") || slices.Contains(args, "--json=true")
}

// failure is the JSON object a failed command prints with --json: {ok:false, error:{code?,
// message}}.
type failure struct {
	OK    bool         `json:"ok"`
	Error failureError `json:"error"`
}

type failureError struct {
	Code    string `json:"code,omitempty"`
	Message string `json:"message"`
}

// writeFailureJSON prints err as the --json failure object.
func writeFailureJSON(w io.Writer, err error) {
	b, _ := json.Marshal(failure{Error: failureError{Code: errorCode(err), Message: err.Error()}})
	fmt.Fprintln(w, string(b))
}

// Codes of CLI failures that are not a gateway's error code.
const (
	codeUsage        = "USAGE"
	codeUnauthorized = "UNAUTHORIZED"
)

// errorCode is the machine-readable code of a failure, or "" when there is none: the
// gateway's error code, UNAVAILABLE when it could not be reached or did not answer,
// UNAUTHORIZED when it refused the token, USAGE for bad usage.
func errorCode(err error) string {
	var re *client.ResponseError
	var he *client.HelloError
	var ue usageError
	switch {
	case errors.As(err, &re):
		return re.Shape.Code
	case errors.As(err, &he) && he.Reason == "unauthorized":
		return codeUnauthorized
	case errors.Is(err, client.ErrUnreachable), errors.Is(err, client.ErrDisconnected),
		errors.Is(err, context.DeadlineExceeded):
		return wire.CodeUnavailable
	case errors.As(err, &ue):
		return codeUsage
	}
	return ""
}

// explainDialError adds the next step to a refused handshake: an unauthorized client is
// told where the token comes from.
func explainDialError(err error) error {
	var he *client.HelloError
	if errors.As(err, &he) && he.Reason == "unauthorized" {
		return fmt.Errorf("%w: pass the gateway's token with --token or CLAWDIS_GATEWAY_TOKEN (or set gateway.token in the config file)", err)
	}
	return err
}

// registerDaemonCompletions adds value completion to the flags of `clawdis gateway` that
// take one of a few words.
func registerDaemonCompletions(cmd *cobra.Command) {
	words := map[string][]string{
		"log-level":  {"debug", "info", "warn", "error"},
		"log-format": {"auto", "text", "json"},
	}
	for flag, values := range words {
		_ = cmd.RegisterFlagCompletionFunc(flag, cobra.FixedCompletions(values, cobra.ShellCompDirectiveNoFileComp))
	}
}
