package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"

	"github.com/clawdis/clawdis/bus"
	"github.com/clawdis/clawdis/cmd/clawdis/internal/config"
	"github.com/clawdis/clawdis/cmd/clawdis/internal/suggest"
)

// serviceFlags are the flags of `clawdis service NAME`.
type serviceFlags struct {
	natsURL, natsToken   string
	stateDir, configPath string
	logFormat            string
	verbose              bool
	// webchat only: the gateway to relay to, and where to serve (see webChatFlags)
	url, token       string
	webchatPort      int
	webchatBind      string
	webchatAllowFrom []string
}

func newServiceCmd(stdout io.Writer) *cobra.Command {
	var sf serviceFlags
	cmd := &cobra.Command{
		Use:   "service NAME",
		Short: "Run one bus service alone against an existing bus (split deployments, debugging)",
		Long: "Run exactly one service (" + strings.Join(knownServices, ", ") + ", or webchat) connected to\n" +
			"the bus at --nats-url, until SIGINT/SIGTERM. Start the gateway with --without NAME so\n" +
			"requests are not split between two copies.",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageError{fmt.Errorf("%s takes exactly one service NAME", cmd.CommandPath())}
			}
			if args[0] != "webchat" && !slices.Contains(knownServices, args[0]) {
				msg := fmt.Sprintf("unknown service %q (known: %s, webchat)", args[0], strings.Join(knownServices, ", "))
				if s := suggest.Closest(args[0], append(slices.Clone(knownServices), "webchat")); s != "" {
					msg += fmt.Sprintf("; did you mean %q?", s)
				}
				return usageError{errors.New(msg)}
			}
			return nil
		},
		ValidArgsFunction: func(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
			if len(args) > 0 {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			return append(slices.Clone(knownServices), "webchat"), cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if name != "webchat" && sf.natsURL == "" {
				return usageError{errors.New("service needs --nats-url")}
			}
			log, err := newLogger(stdout, sf.logFormat, sf.verbose)
			if err != nil {
				return err
			}
			log = log.With("service", name)
			return runWithSignals(cmd.Context(), log, "service "+name, func(ctx context.Context) error {
				if name == "webchat" {
					return runWebChat(ctx, webChatFlags{url: sf.url, token: sf.token, port: sf.webchatPort,
						bind: sf.webchatBind, allowFrom: sf.webchatAllowFrom, flagPrefix: "webchat-"}, log)
				}
				return runService(ctx, sf, name, log)
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&sf.natsURL, "nats-url", "", "the bus to join (nats://host:port, comma-separated for a cluster)")
	f.StringVar(&sf.natsToken, "nats-token", "", "bus token (default $CLAWDIS_NATS_TOKEN)")
	f.StringVar(&sf.stateDir, "state-dir", "", "state directory (default $CLAWDIS_STATE_DIR, else ~/.clawdis)")
	f.StringVar(&sf.configPath, "config", "", "config file (default <state dir>/clawdis.json)")
	f.StringVar(&sf.logFormat, "log-format", "auto", "log format: auto, text or json")
	f.BoolVar(&sf.verbose, "verbose", false, "debug logs")
	f.StringVar(&sf.url, "url", "ws://127.0.0.1:18789", "webchat: the gateway WebSocket URL")
	f.StringVar(&sf.token, "token", "", "webchat: gateway token (default $CLAWDIS_GATEWAY_TOKEN, then gateway.token)")
	f.IntVar(&sf.webchatPort, "webchat-port", 18788, "webchat: HTTP port on --webchat-bind")
	f.StringVar(&sf.webchatBind, "webchat-bind", "127.0.0.1", "webchat: host to listen on; off loopback (e.g. 0.0.0.0 in a container) it needs --webchat-allow-from")
	f.StringSliceVar(&sf.webchatAllowFrom, "webchat-allow-from", nil, "webchat: client networks served besides loopback, CIDR[,CIDR] (e.g. the Docker bridge 172.18.0.0/16)")
	return cmd
}

// runService runs one service on the bus at --nats-url until ctx ends.
func runService(ctx context.Context, sf serviceFlags, name string, log *slog.Logger) error {
	s, err := resolveSettings(daemonFlags{stateDir: sf.stateDir, configPath: sf.configPath, noWebchat: true}, os.Getenv, log)
	if err != nil {
		return err
	}
	if err := config.EnsureStateDir(s.paths.StateDir); err != nil {
		return err
	}
	s.bus.natsURL = sf.natsURL // the bus it runs on: shared, never private
	token := sf.natsToken
	if token == "" {
		token = os.Getenv("CLAWDIS_NATS_TOKEN")
	}
	nc, err := bus.NewRemote(sf.natsURL, token, log).Connect(name)
	if err != nil {
		return err
	}
	defer nc.Close()
	if err := waitForBus(ctx, nc, log); err != nil {
		if ctx.Err() != nil {
			return nil // stopped before the bus answered
		}
		return err
	}
	host, _ := os.Hostname()
	rs, err := buildServices(s, host, []string{name}, func(string) (*nats.Conn, error) { return nc, nil }, log)
	if err != nil {
		return err
	}
	failed := make(chan error, 1) // only a failing Run sends
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		if err := rs[0].Run(ctx); err != nil {
			failed <- err
		}
	}()
	if err := awaitReady(ctx, rs, failed); err != nil {
		<-finished
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	log.Info("service running", "nats_url", sf.natsURL, "state_dir", s.paths.StateDir)
	<-finished
	select {
	case err := <-failed:
		return err
	default:
		return nil
	}
}
