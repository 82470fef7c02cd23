package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/clawdis/clawdis/edge"
	"github.com/clawdis/clawdis/edge/client"
	"github.com/clawdis/clawdis/edge/webchat"
)

// webChatFlags are the flags of `clawdis webchat` (and the webchat flags of `clawdis service
// webchat`).
type webChatFlags struct {
	url, token, logFormat string
	// bind is the host to listen on; "" means 127.0.0.1. Anything but loopback needs allowFrom.
	bind string
	// allowFrom are the CIDRs of client networks served besides loopback (webchat.Config
	// AllowFrom), unparsed.
	allowFrom []string
	port      int
	verbose   bool
	// flagPrefix is prepended to the flag names in error messages: "" for `clawdis webchat`,
	// "webchat-" for `clawdis service webchat`.
	flagPrefix string
	// listening, when set, is called with the bound address once the server serves (tests).
	listening func(addr string)
}

func newWebChatCmd(stdout io.Writer) *cobra.Command {
	var wf webChatFlags
	cmd := &cobra.Command{
		Use:   "webchat",
		Short: "Run the WebChat server alone, connected to a running gateway",
		Long: "Serve the WebChat page on 127.0.0.1:PORT and relay it to the gateway at --url over one\n" +
			"connection that holds the token; browsers never see the token. Runs until SIGINT/SIGTERM.\n" +
			"Only loopback clients are served unless --allow-from names further client networks (in a\n" +
			"container: the bridge a published port arrives from); only then may --bind be off loopback.\n" +
			"Browsers must still open the page as http://127.0.0.1:PORT.",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, _, err := wf.listenPlan(); err != nil {
				return err
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
	f.IntVar(&wf.port, "port", 18788, "WebChat HTTP port on --bind (0 picks a free port)")
	f.StringVar(&wf.bind, "bind", "127.0.0.1", "host to listen on; off loopback (e.g. 0.0.0.0 in a container) it needs --allow-from")
	f.StringSliceVar(&wf.allowFrom, "allow-from", nil, "client networks served besides loopback, CIDR[,CIDR] (e.g. the Docker bridge 172.18.0.0/16)")
	f.StringVar(&wf.logFormat, "log-format", "auto", "log format: auto (text on a terminal, else JSON), text or json")
	f.BoolVar(&wf.verbose, "verbose", false, "debug logs")
	return cmd
}

// listenPlan checks the bind, port and allow-from flags and returns the address to listen on
// and the client networks to serve besides loopback. Bad values, and a bind address off
// loopback without allowed networks, are usage errors naming the flag.
func (wf webChatFlags) listenPlan() (addr string, allow []netip.Prefix, err error) {
	flag := func(name string) string { return "--" + wf.flagPrefix + name }
	if wf.port < 0 || wf.port > 65535 {
		return "", nil, usageError{fmt.Errorf("%s %d out of range", flag("port"), wf.port)}
	}
	host := strings.TrimSpace(wf.bind)
	if host == "" {
		host = "127.0.0.1"
	}
	if _, _, err := net.SplitHostPort(host); err == nil {
		return "", nil, usageError{fmt.Errorf("%s %q: give a host without a port (set the port with %s)", flag("bind"), wf.bind, flag("port"))}
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	for _, s := range wf.allowFrom {
		p, err := netip.ParsePrefix(strings.TrimSpace(s))
		if err != nil {
			return "", nil, usageError{fmt.Errorf("%s %q is not a CIDR network (like 172.18.0.0/16): %w", flag("allow-from"), s, err)}
		}
		allow = append(allow, p)
	}
	if !edge.IsLoopbackHost(host) && len(allow) == 0 {
		return "", nil, usageError{fmt.Errorf("%s %s is not loopback: WebChat serves loopback clients only unless %s names the client networks to trust",
			flag("bind"), host, flag("allow-from"))}
	}
	return net.JoinHostPort(host, strconv.Itoa(wf.port)), allow, nil
}

// runWebChat checks the flags, binds the port and serves WebChat until ctx ends. A taken
// port is an error.
func runWebChat(ctx context.Context, wf webChatFlags, log *slog.Logger) error {
	addr, allow, err := wf.listenPlan()
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("webchat: listen on %s: %w", addr, err)
	}
	srv, err := webchat.New(webchat.Config{
		Listener: ln, AllowFrom: allow, GatewayURL: wf.url, Token: clientToken(wf.token), Version: version, Log: log,
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
