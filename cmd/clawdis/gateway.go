package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/clawdis/clawdis/bus"
	"github.com/clawdis/clawdis/cmd/clawdis/internal/config"
	"github.com/clawdis/clawdis/cmd/clawdis/internal/force"
	"github.com/clawdis/clawdis/edge"
	"github.com/clawdis/clawdis/edge/webchat"
	"github.com/clawdis/clawdis/schemas"
	"github.com/clawdis/clawdis/services/health"
	"github.com/clawdis/clawdis/services/whatsapp"
)

// daemonFlags are the flags of `clawdis gateway` itself.
type daemonFlags struct {
	port, webchatPort       int
	bind, token, configPath string
	stateDir, logFormat     string
	logLevel                string
	force, verbose          bool
	noWebchat, noProviders  bool
	bus                     busFlags
	// listening, when set, is called with the bound address once the edge serves (tests).
	listening func(addr string)
	// whatsAppLogin, when set, is where web logins connect instead of WhatsApp (tests).
	whatsAppLogin whatsapp.LoginDialer
}

// clientFlags are shared by the client subcommands of `clawdis gateway`.
type clientFlags struct {
	url, token string
	timeout    time.Duration
}

func newGatewayCmd(stdout, stderr io.Writer) *cobra.Command {
	var df daemonFlags
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   "gateway",
		Short: "Run the gateway daemon, or talk to a running one (health, status, call)",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			df.token = cf.token
			return runDaemonCmd(cmd, df, stdout)
		},
	}
	f := cmd.Flags()
	f.IntVar(&df.port, "port", 0, "WebSocket port (default 18789, or gateway.port)")
	f.StringVar(&df.bind, "bind", "", "listen address (default 127.0.0.1, or gateway.bind)")
	f.BoolVar(&df.force, "force", false, "stop whatever listens on the port first")
	f.BoolVar(&df.verbose, "verbose", false, "log every frame in and out (never tokens)")
	f.IntVar(&df.webchatPort, "webchat-port", 0, "WebChat port (default 18788, or webchat.port)")
	f.BoolVar(&df.noWebchat, "no-webchat", false, "do not start the WebChat server")
	f.StringVar(&df.configPath, "config", "", "config file (default $CLAWDIS_CONFIG_PATH, else <state dir>/clawdis.json)")
	f.StringVar(&df.stateDir, "state-dir", "", "state directory (default $CLAWDIS_STATE_DIR, else ~/.clawdis)")
	f.BoolVar(&df.noProviders, "no-providers", false, "do not start the WhatsApp and Telegram providers")
	f.StringVar(&df.logFormat, "log-format", "auto", "log format: auto (text on a terminal, else JSON), text or json")
	f.StringVar(&df.logLevel, "log-level", "", "least severe level logged: debug, info, warn or error (default $CLAWDIS_LOG_LEVEL, then logging.level, else info)")
	df.bus.register(f)
	registerDaemonCompletions(cmd)

	cf.register(cmd.PersistentFlags())

	cmd.AddCommand(newHealthCmd(&cf, stdout), newStatusCmd(&cf, stdout), newCallCmd(&cf, stdout),
		newSendCmd(&cf, stdout), newAgentCmd(&cf, stdout), newSessionsCmd(&cf, stdout), newInstallCmd(stdout), newUninstallCmd(stdout))
	return cmd
}

// runDaemonCmd runs the daemon under runWithSignals: the first SIGINT/SIGTERM starts a
// graceful shutdown, a second one exits at once with status 1.
func runDaemonCmd(cmd *cobra.Command, df daemonFlags, stdout io.Writer) error {
	if problem := config.BindError(df.bind); df.bind != "" && problem != "" {
		return usageError{errors.New("--bind " + problem)}
	}
	level, err := daemonLogLevel(df, os.Getenv)
	if err != nil {
		return err
	}
	log, err := newLoggerLevel(stdout, df.logFormat, level)
	if err != nil {
		return err
	}
	return runWithSignals(cmd.Context(), log, "gateway", func(ctx context.Context) error {
		return runGateway(ctx, df, log)
	})
}

// noConfigFile is settings.config when no config file was found.
const noConfigFile = "no config file; defaults"

// settings is the daemon's configuration after merging flags, environment and file.
type settings struct {
	cfg     config.Config
	paths   config.Paths
	port    int
	bind    string
	token   string
	webchat bool
	wcPort  int
	verbose bool
	force   bool
	noProv  bool
	bus     busPlan
	// config says which config file was read, for the start-up line.
	config string
	// waLogin is daemonFlags.whatsAppLogin.
	waLogin whatsapp.LoginDialer
}

func resolveSettings(df daemonFlags, getenv func(string) string, log *slog.Logger) (settings, error) {
	home, _ := os.UserHomeDir()
	paths := config.ResolvePaths(df.stateDir, df.configPath, getenv, home)
	cfg, warnings, found, err := paths.Load()
	if err != nil {
		return settings{}, err
	}
	for _, w := range warnings {
		log.Warn(w, "file", paths.ConfigPath)
	}
	cfg.ApplyEnv(getenv)
	s := settings{cfg: cfg, paths: paths, port: cfg.Gateway.Port, bind: cfg.Gateway.Bind, token: cfg.Gateway.Token,
		webchat: cfg.WebChat.Enabled && !df.noWebchat, wcPort: cfg.WebChat.Port, verbose: df.verbose, force: df.force, noProv: df.noProviders,
		config: paths.ConfigPath, waLogin: df.whatsAppLogin}
	if !found {
		s.config = noConfigFile
	}
	if df.port != 0 {
		s.port = df.port
	}
	if df.bind != "" {
		s.bind = df.bind
	}
	if t := getenv("CLAWDIS_GATEWAY_TOKEN"); t != "" {
		s.token = t
	}
	if df.token != "" {
		s.token = df.token
	}
	if df.webchatPort != 0 {
		s.wcPort = df.webchatPort
	}
	if s.port < 0 || s.port > 65535 {
		return settings{}, usageError{fmt.Errorf("--port %d out of range", s.port)}
	}
	if problem := bindTokenProblem(s.bind, s.token); problem != "" {
		return settings{}, fmt.Errorf("refusing to bind %s (not loopback): %s; %s", s.bind, problem, tokenFix)
	}
	if s.bus, err = planBus(df.bus, serviceNames(s), getenv); err != nil {
		return settings{}, err
	}
	s.bus.storeDir, s.bus.replicas = cmp.Or(cfg.Bus.StoreDir, filepath.Join(paths.StateDir, "bus")), cfg.Bus.Replicas
	return s, nil
}

// runGateway is the daemon: take the lock, bind the port, start the bus and the services,
// serve; when ctx ends or a part fails stop in reverse order: WebChat, edge, services, bus,
// lock.
func runGateway(ctx context.Context, df daemonFlags, log *slog.Logger) error {
	start := time.Now()
	restoreGC := holdGC()
	defer restoreGC()
	s, err := resolveSettings(df, os.Getenv, log)
	if err != nil {
		return err
	}
	if err := config.EnsureStateDir(s.paths.StateDir); err != nil {
		return err
	}
	lock, err := edge.AcquireLock(s.paths.StateDir)
	if err != nil {
		return err
	}
	defer lock.Release()
	if s.force {
		if err := force.FreePort(ctx, s.port, log, 5*time.Second); err != nil {
			return fmt.Errorf("--force: %w", err)
		}
	}
	ln, err := edge.Listen(s.bind, s.port)
	if err != nil {
		return err
	}
	defer ln.Close()
	var wcLn net.Listener
	if s.webchat {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(s.wcPort))
		if wcLn, err = net.Listen("tcp", addr); err != nil {
			return fmt.Errorf("webchat: listen on %s: %w (use --webchat-port or --no-webchat)", addr, err)
		}
		defer wcLn.Close()
	}
	// Compiling the protocol's schemas takes a while; only the edge needs them, so they
	// compile while the bus and the services start.
	type loaded struct {
		set *schemas.Set
		err error
	}
	schemasDone := make(chan loaded, 1)
	go func() {
		set, err := schemas.Load()
		schemasDone <- loaded{set, err}
	}()

	b, stopBus, err := s.bus.connector(log)
	if err != nil {
		return err
	}
	defer stopBus()

	host, _ := os.Hostname()
	services := s.bus.inProcess
	var conns []*nats.Conn
	defer func() {
		for _, nc := range conns {
			nc.Close()
		}
	}()
	connect := func(name string) (*nats.Conn, error) {
		nc, err := b.Connect(name)
		if err != nil {
			return nil, err
		}
		conns = append(conns, nc)
		return nc, waitForBus(ctx, nc, log)
	}
	runners, err := buildServices(s, host, services, connect, log)
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped while waiting for the bus
		}
		return err
	}
	// Every part runs in g; failed ends when ctx does or a part fails, and then the parts
	// stop in order, each under a context of its own: WebChat, edge, services. The deferred
	// stops do the same on an early return (defers run last first).
	g, failed := errgroup.WithContext(ctx)
	svcCtx, stopServices := context.WithCancel(context.Background())
	defer func() { stopServices(); _ = g.Wait() }()
	// Health last: it is ready once every other service answered it, which they do at
	// once when they are ready first (started together, its first look finds some missing
	// and it looks again only a little later).
	others, last := splitHealth(runners)
	for _, phase := range [][]runner{others, last} {
		for _, r := range phase {
			g.Go(func() error { return r.Run(svcCtx) })
		}
		if err := awaitReady(failed, phase, nil); err != nil {
			if ctx.Err() != nil {
				return nil // stopped while starting
			}
			stopServices()
			return cmp.Or(g.Wait(), err)
		}
	}

	enc, err := connect("edge")
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	sl := <-schemasDone
	if sl.err != nil {
		return fmt.Errorf("protocol schemas: %w", sl.err)
	}
	ed, err := edge.New(edge.Config{
		Listener: ln, Schemas: sl.set, Version: version, Commit: buildCommit(), Host: host,
		Token: s.token, AllowedOrigins: s.cfg.Gateway.AllowedOrigins, AuthRateLimit: authRateLimit(s.cfg.Gateway),
		AllowedHosts: s.cfg.Gateway.AllowedHosts, MaxConnections: s.cfg.Gateway.MaxConnections,
		MaxPayload: int64(s.cfg.Gateway.MaxPayload), MaxBufferedBytes: int64(s.cfg.Gateway.MaxBufferedBytes),
		TickInterval: s.cfg.Gateway.TickInterval(), HandshakeTimeout: s.cfg.Gateway.HandshakeTimeout(),
		Routes: edge.RoutesFor(edge.DefaultRoutes(), s.bus.expected), Verbose: s.verbose,
		WebChatURL: webChatURL(wcLn),
	}, enc, log)
	if err != nil {
		return err
	}
	stopEdge := goUntilStopped(g, "edge", ed.Run)
	defer stopEdge()
	log.Info("gateway listening", "url", "ws://"+ln.Addr().String(), "state_dir", s.paths.StateDir, "config", s.config,
		"startup_ms", time.Since(start).Milliseconds(), "version", version)
	restoreGC()

	stopWebChat := func() {}
	if wcLn != nil {
		wc, err := webchat.New(webchat.Config{Listener: wcLn, GatewayURL: "ws://" + dialAddr(ln.Addr()),
			Token: s.token, AuthRateLimit: authRateLimit(s.cfg.Gateway), MaxConnections: s.cfg.Gateway.MaxConnections,
			PingInterval: s.cfg.Gateway.TickInterval(), Version: version, Log: log, Schemas: sl.set})
		if err != nil {
			return err
		}
		stopWebChat = goUntilStopped(g, "webchat", wc.Run)
		defer stopWebChat()
		log.Debug("webchat listening", "url", webChatURL(wcLn)) // WebChat says so, and the ready line
	}

	providers := settledProviders(ctx, enc, expectedProviders(s.bus.expected), providerSettle)
	log.Info(readyLine("ws://"+ln.Addr().String(), webChatURL(wcLn), s.config, providers, s.cfg.Agent))
	if df.listening != nil {
		df.listening(ln.Addr().String())
	}

	<-failed.Done()
	stopWebChat() // before the edge stops: it relays to it
	stopEdge()
	stopServices()
	runErr := g.Wait()
	log.Info("gateway stopped")
	return runErr
}

// goUntilStopped runs part in g under a context of its own and returns the function that
// cancels that context and waits for part to return (safe to call more than once). A part
// that returns nil before it is stopped fails with "<name> stopped unexpectedly".
func goUntilStopped(g *errgroup.Group, name string, part func(context.Context) error) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	g.Go(func() error {
		defer close(done)
		err := part(ctx)
		if err == nil && ctx.Err() == nil {
			err = errors.New(name + " stopped unexpectedly")
		}
		return err
	})
	return func() { cancel(); <-done }
}

// waitForBus waits until nc is connected, saying so once when the bus is not there yet (a
// remote bus node that starts after this process).
func waitForBus(ctx context.Context, nc *nats.Conn, log *slog.Logger) error {
	if !nc.IsConnected() {
		log.Info("waiting for the bus", "conn", nc.Opts.Name)
	}
	return bus.WaitConnected(ctx, nc)
}

// dialAddr is the address local clients use for a listener: loopback when it listens on
// all interfaces.
func dialAddr(a net.Addr) string {
	tcp, ok := a.(*net.TCPAddr)
	if !ok {
		return a.String()
	}
	ip := tcp.IP
	if ip == nil || ip.IsUnspecified() {
		ip = net.IPv4(127, 0, 0, 1)
	}
	return net.JoinHostPort(ip.String(), strconv.Itoa(tcp.Port))
}

// splitHealth separates the health service from the other runners.
func splitHealth(runners []runner) (others, healthOnly []runner) {
	for _, r := range runners {
		if _, ok := r.(*health.Service); ok {
			healthOnly = append(healthOnly, r)
		} else {
			others = append(others, r)
		}
	}
	return others, healthOnly
}

// readyTimeout bounds how long startup waits for the services to subscribe.
const readyTimeout = 10 * time.Second

// awaitReady waits until every runner that reports readiness (a Ready channel closed once its
// endpoints are subscribed) is ready, so that the first client request after "listening" is
// answered rather than failing with "no service answers".
func awaitReady(ctx context.Context, runners []runner, svcErr <-chan error) error {
	timeout := time.NewTimer(readyTimeout)
	defer timeout.Stop()
	for _, r := range runners {
		rd, ok := r.(interface{ Ready() <-chan struct{} })
		if !ok {
			continue
		}
		select {
		case <-rd.Ready():
		case err := <-svcErr:
			return err
		case <-ctx.Done():
			return ctx.Err()
		case <-timeout.C:
			return fmt.Errorf("services not ready after %s", readyTimeout)
		}
	}
	return nil
}

// primaryIP is the first non-loopback IPv4 address of an up interface, or "".
func primaryIP() string {
	ifaces, err := net.Interfaces()
	if err != nil {
		return ""
	}
	for _, ifc := range ifaces {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil && !ipn.IP.IsLoopback() {
				return ipn.IP.String()
			}
		}
	}
	return ""
}

// webChatURL is the address of the WebChat page served on ln; empty when WebChat is off.
func webChatURL(ln net.Listener) string {
	if ln == nil {
		return ""
	}
	return "http://" + ln.Addr().String()
}

// authRateLimit is the gateway's failed-auth throttle (SPEC §5.2) as edge takes it.
func authRateLimit(g config.Gateway) edge.AuthRateLimit {
	a := g.AuthRateLimit
	return edge.AuthRateLimit{MaxFailures: a.MaxFailures, Window: a.Window(), Lockout: a.Lockout()}
}
