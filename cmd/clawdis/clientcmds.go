package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/cmd/clawdis/internal/config"
	"github.com/clawdis/clawdis/cmd/clawdis/internal/suggest"
	"github.com/clawdis/clawdis/edge/client"
	"github.com/clawdis/clawdis/schemas"
	"github.com/clawdis/clawdis/services/health"
)

// register adds the client flags (--url, --token, --timeout) to fs.
func (cf *clientFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&cf.url, "url", "ws://127.0.0.1:18789", "gateway WebSocket URL (client commands)")
	fs.StringVar(&cf.token, "token", "", "gateway token (default $CLAWDIS_GATEWAY_TOKEN, then gateway.token)")
	fs.DurationVar(&cf.timeout, "timeout", 10*time.Second, "connection and call timeout (client commands)")
}

// newShortcutCmd is `clawdis status` or `clawdis health`: the same command as `clawdis
// gateway status|health`, with the same flags and output.
func newShortcutCmd(name string, stdout io.Writer) *cobra.Command {
	var cf clientFlags
	var cmd *cobra.Command
	switch name {
	case "status":
		cmd = newStatusCmd(&cf, stdout)
	case "health":
		cmd = newHealthCmd(&cf, stdout)
	default:
		panic("no shortcut " + name)
	}
	cmd.Short += " (same as `clawdis gateway " + name + "`)"
	cf.register(cmd.Flags())
	return cmd
}

// clientToken is --token, else $CLAWDIS_GATEWAY_TOKEN, else the config file's gateway.token.
func clientToken(flag string) string {
	if flag != "" {
		return flag
	}
	if t := os.Getenv("CLAWDIS_GATEWAY_TOKEN"); t != "" {
		return t
	}
	home, _ := os.UserHomeDir()
	paths := config.ResolvePaths("", "", os.Getenv, home)
	if cfg, _, err := config.Load(paths.ConfigPath); err == nil {
		return cfg.Gateway.Token
	}
	return ""
}

// callGateway connects as a cli client, makes one request and closes; --timeout bounds
// both.
func callGateway(ctx context.Context, cf *clientFlags, method string, params any) (json.RawMessage, error) {
	payload, _, err := callGatewayHello(ctx, cf, method, params)
	return payload, err
}

// callGatewayHello is callGateway that also returns the gateway's hello-ok.
func callGatewayHello(ctx context.Context, cf *clientFlags, method string, params any) (json.RawMessage, schemas.HelloOK, error) {
	ctx, cancel := context.WithTimeout(ctx, cf.timeout)
	defer cancel()
	c, err := dialGateway(ctx, cf, nil)
	if err != nil {
		return nil, schemas.HelloOK{}, err
	}
	defer c.Close()
	payload, err := c.Request(ctx, method, params)
	if err != nil {
		return nil, schemas.HelloOK{}, methodError(method, err, cf.timeout)
	}
	return payload, c.Hello(), nil
}

func printJSON(w io.Writer, raw json.RawMessage) error {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return fmt.Errorf("gateway sent invalid JSON: %w", err)
	}
	out, _ := json.MarshalIndent(v, "", "  ")
	_, err := fmt.Fprintln(w, string(out))
	return err
}

func newHealthCmd(cf *clientFlags, stdout io.Writer) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "health",
		Short: "Show the running gateway's health",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			raw, err := callGateway(cmd.Context(), cf, schemas.MethodHealth, nil)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(stdout, raw)
			}
			var h schemas.HealthSummary
			if err := json.Unmarshal(raw, &h); err != nil {
				return fmt.Errorf("health: unexpected payload: %w", err)
			}
			fmt.Fprint(stdout, formatHealth(cf.url, h))
			if !h.OK {
				return errors.New("gateway is not healthy")
			}
			if parts := needsAttention(h); len(parts) > 0 {
				return fmt.Errorf("the gateway runs, but %s needs attention (see above)", strings.Join(parts, " and "))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the payload as JSON")
	return cmd
}

func newStatusCmd(cf *clientFlags, stdout io.Writer) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the running gateway's status summary",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			raw, hello, err := callGatewayHello(cmd.Context(), cf, schemas.MethodStatus, nil)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(stdout, raw)
			}
			var st schemas.StatusSummary
			if err := json.Unmarshal(raw, &st); err != nil {
				return fmt.Errorf("status: unexpected payload: %w", err)
			}
			fmt.Fprint(stdout, formatGatewayLines(cf.url, hello, st))
			fmt.Fprint(stdout, formatStatus(st))
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the payload as JSON")
	return cmd
}

func newCallCmd(cf *clientFlags, stdout io.Writer) *cobra.Command {
	var params string
	cmd := &cobra.Command{
		Use:   "call METHOD",
		Short: "Call a gateway method and print its payload as JSON",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageError{fmt.Errorf("%s takes exactly one METHOD argument", cmd.CommandPath())}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			var p any
			if params != "" {
				if !json.Valid([]byte(params)) {
					return errors.New("--params is not valid JSON")
				}
				p = json.RawMessage(params)
			}
			if args[0] == schemas.MethodAgent { // two-stage: print the final, not the ack
				c, err := dialGateway(cmd.Context(), cf, nil)
				if err != nil {
					return err
				}
				defer c.Close()
				raw, err := c.RequestFinal(cmd.Context(), args[0], p, nil)
				if err != nil {
					return methodError(args[0], err, 0)
				}
				return printJSON(stdout, raw)
			}
			raw, err := callGateway(cmd.Context(), cf, args[0], p)
			if err != nil {
				return suggestMethod(args[0], err)
			}
			return printJSON(stdout, raw)
		},
		ValidArgsFunction: func(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
			if len(args) > 0 {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			return schemas.Methods(), cobra.ShellCompDirectiveNoFileComp
		},
	}
	cmd.Flags().StringVar(&params, "params", "", "method params as a JSON object")
	return cmd
}

// suggestMethod adds the closest known method to a gateway's refusal of an unknown one.
func suggestMethod(method string, err error) error {
	var re *client.ResponseError
	if !errors.As(err, &re) || re.Shape.Code != wire.CodeInvalidRequest || !strings.Contains(re.Shape.Message, "unknown method") {
		return err
	}
	if s := suggest.Closest(method, schemas.Methods()); s != "" && s != method {
		return fmt.Errorf("%w; did you mean %q?", err, s)
	}
	return err
}

func formatStatus(st schemas.StatusSummary) string {
	var b strings.Builder
	for _, l := range st.ProviderSummary {
		if strings.HasPrefix(l, "WebChat: enabled") && st.WebChatURL != "" {
			l = "WebChat: " + st.WebChatURL // where to open it, rather than only its port
		}
		fmt.Fprintln(&b, l)
	}
	backend := st.Sessions.Defaults.Backend
	if st.Sessions.Defaults.Model != "" {
		backend += " (" + st.Sessions.Defaults.Model + ")"
	}
	fmt.Fprintf(&b, "Agent: %s\n", backend)
	fmt.Fprintf(&b, "Sessions: %d (%s)\n", st.Sessions.Count, st.Sessions.Path)
	for _, s := range st.Sessions.Recent {
		fmt.Fprintf(&b, "  %s [%s] %s ago\n", s.Key, s.Kind, humanMs(s.Age))
	}
	if len(st.QueuedSystemEvents) > 0 {
		fmt.Fprintf(&b, "Queued system events: %d\n", len(st.QueuedSystemEvents))
		for _, e := range st.QueuedSystemEvents {
			fmt.Fprintf(&b, "  %s\n", e)
		}
	}
	return b.String()
}

// humanMs renders a millisecond age the way the health service's status lines do.
func humanMs(ms int64) string { return health.HumanAge(time.Duration(ms) * time.Millisecond) }
