package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/clawdis/clawdis/edge/client"
	"github.com/clawdis/clawdis/edge/webchat"
)

// webChatFlags are the flags of `clawdis webchat`.
type webChatFlags struct {
	url, token, logFormat string
	port                  int
	verbose               bool
	// listening, when set, is called with the bound address once the server serves (tests).
	listening func(addr string)
}

func newWebChatCmd(stdout io.Writer) *cobra.Command {
	var wf webChatFlags
	cmd := &cobra.Command{
		Use:   "webchat",
		Short: "Run the WebChat server alone, connected to a running gateway",
		Long: "Serve the WebChat page on 127.0.0.1:PORT and relay it to the gateway at --url over one\n" +
			"connection that holds the token; browsers never see the token. Runs until SIGINT/SIGTERM.",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if wf.port < 0 || wf.port > 65535 {
				return usageError{fmt.Errorf("--port %d out of range", wf.port)}
			}
			log, err := newLogger(stdout, wf.logFormat, wf.verbose)
			if err != nil {
				return err
			}
			return runWithSignals(cmd.Context(), log, "webchat", func(ctx context.Context) error {
				return runWebChat(ctx, wf, log)
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&wf.url, "url", client.DefaultURL, "gateway WebSocket URL")
	f.StringVar(&wf.token, "token", "", "gateway token (default $CLAWDIS_GATEWAY_TOKEN, then gateway.token)")
	f.IntVar(&wf.port, "port", 18788, "WebChat HTTP port on 127.0.0.1 (0 picks a free port)")
	f.StringVar(&wf.logFormat, "log-format", "auto", "log format: auto (text on a terminal, else JSON), text or json")
	f.BoolVar(&wf.verbose, "verbose", false, "debug logs")
	return cmd
}

// runWebChat binds the port and serves WebChat until ctx ends. A taken port is an error.
func runWebChat(ctx context.Context, wf webChatFlags, log *slog.Logger) error {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(wf.port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("webchat: listen on %s: %w", addr, err)
	}
	srv, err := webchat.New(webchat.Config{
		Listener: ln, GatewayURL: wf.url, Token: clientToken(wf.token), Version: version, Log: log,
	})
	if err != nil {
		ln.Close()
		return err
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	select {
	case <-srv.Ready():
		if wf.listening != nil {
			wf.listening(ln.Addr().String())
		}
	case err := <-done:
		return err
	}
	return <-done
}

// runWithSignals runs fn with a context that the first SIGINT/SIGTERM cancels; a second
// signal during the shutdown exits at once with status 1. A failure is logged as "<what>
// failed".
func runWithSignals(parent context.Context, log *slog.Logger, what string, fn func(context.Context) error) error {
	if parent == nil {
		parent = context.Background()
	}
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	finished := make(chan struct{})
	watcherDone := make(chan struct{})
	go func() {
		defer close(watcherDone)
		select {
		case sig := <-sigs:
			log.Info("signal received; shutting down", "signal", sig.String())
			cancel()
		case <-finished:
			return
		}
		select {
		case sig := <-sigs:
			log.Error("second signal during shutdown; exiting now", "signal", sig.String())
			os.Exit(1)
		case <-finished:
		}
	}()
	err := fn(ctx)
	close(finished)
	<-watcherDone
	if err != nil {
		log.Error(what+" failed", "err", err)
	}
	return err
}
