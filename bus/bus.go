// Package bus runs the embedded NATS server that connects the gateway's services and hands
// out named connections to it. By default the server has no TCP listener: every component
// connects in-process. The server's client connect/disconnect advisories are mapped into the
// application account (subject.BusConnect, subject.BusDisconnect), so services learn that a
// connection came or went without system-account rights. With a store directory the server
// runs JetStream, the store of the gateway's durable streams and buckets (SPEC §13); in a
// cluster every node runs it and the streams are replicated across the nodes.
package bus

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/clawdis/clawdis/bus/subject"
)

// Config configures the embedded bus. The zero value is an in-process-only bus.
type Config struct {
	// ServerName names the bus node in NATS logs and monitoring. Default "clawdis".
	ServerName string
	// ReadyTimeout bounds how long Start waits for the server. Default 10s.
	ReadyTimeout time.Duration
	// Listen, when set ("host:port", port 0 for any), also serves NATS clients on TCP so
	// services can run in other processes. Default "": in-process only.
	Listen string
	// Token, when set, is required from TCP clients (in-process connections pass it too).
	Token string
	// ClusterListen, when set, accepts routes from other bus nodes; Routes are the nodes to
	// connect to (nats://host:port). Clustering needs Listen.
	ClusterListen string
	Routes        []string
	// ClusterName names the cluster; every node of one cluster uses the same. Default
	// "clawdis".
	ClusterName string
	// StoreDir, when set, enables JetStream with its file store in this directory (created
	// 0700 when missing). Every node of a cluster needs its own, and a unique ServerName.
	// Default "": no JetStream.
	StoreDir string
}

// Bus is the embedded NATS server.
type Bus struct {
	cfg Config
	log *slog.Logger
	ns  *server.Server
}

// ErrNotStarted is returned by Connect before Start.
var ErrNotStarted = errors.New("bus: not started")

// New prepares a bus; it does no I/O.
func New(cfg Config, log *slog.Logger) *Bus {
	if cfg.ServerName == "" {
		cfg.ServerName = "clawdis"
	}
	if cfg.ReadyTimeout <= 0 {
		cfg.ReadyTimeout = 10 * time.Second
	}
	return &Bus{cfg: cfg, log: log.With("component", "bus")}
}

// Start starts the server and waits until it accepts connections.
func (b *Bus) Start() error {
	opts, err := b.options()
	if err != nil {
		return err
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return fmt.Errorf("bus: create server: %w", err)
	}
	bridge := &slogBridge{log: b.log, fatal: make(chan struct{})}
	ns.SetLoggerV2(bridge, false, false, false)
	go ns.Start()
	if err := waitReady(ns, bridge, b.cfg.ReadyTimeout); err != nil {
		ns.Shutdown()
		return err
	}
	if b.cfg.StoreDir != "" && !ns.JetStreamEnabled() {
		// A bus that cannot keep its promises must not start.
		ns.Shutdown()
		return fmt.Errorf("bus: JetStream did not start with the store %s (see the log above)", b.cfg.StoreDir)
	}
	if err := importAdvisories(ns); err != nil {
		ns.Shutdown()
		return err
	}
	b.ns = ns
	b.log.Debug("bus started", "server", b.cfg.ServerName, "jetstream", b.cfg.StoreDir != "")
	return nil
}

// readyPoll is how long each check for readiness waits; the server's own check sleeps
// 25 ms between looks when it is given longer than that.
const readyPoll = 50 * time.Millisecond

// waitReady waits until ns accepts connections, failing at once when the server reported
// a fatal error (which in nats-server's own binary would exit the process and here leaves
// the server half started) and after timeout.
func waitReady(ns *server.Server, bridge *slogBridge, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if ns.ReadyForConnections(readyPoll) {
			return nil
		}
		select {
		case <-bridge.fatal:
			return fmt.Errorf("bus: server failed to start: %s", bridge.fatalMsg)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("bus: server not ready after %s", timeout)
		}
	}
}

// The server's advisories about clients of the default (global) account, published in its
// system account (nats-server 2.12 and later).
const (
	sysConnectAdvisory    = "$SYS.ACCOUNT.$G.CONNECT"
	sysDisconnectAdvisory = "$SYS.ACCOUNT.$G.DISCONNECT"
)

// importAdvisories exports the client connect and disconnect advisories from the system
// account and imports them into the global account, where every gateway connection lives,
// as subject.BusConnect and subject.BusDisconnect. A client needs no system-account rights
// to hear them; on a NATS deployment not started by this package they simply never arrive.
func importAdvisories(ns *server.Server) error {
	sys, global := ns.SystemAccount(), ns.GlobalAccount()
	if sys == nil || global == nil {
		return errors.New("bus: import advisories: no system or global account")
	}
	for _, m := range []struct{ from, to string }{
		{sysConnectAdvisory, subject.BusConnect},
		{sysDisconnectAdvisory, subject.BusDisconnect},
	} {
		if err := sys.AddStreamExport(m.from, nil); err != nil {
			return fmt.Errorf("bus: export %s: %w", m.from, err)
		}
		if err := global.AddMappedStreamImport(sys, m.from, m.to); err != nil {
			return fmt.Errorf("bus: import %s as %s: %w", m.from, m.to, err)
		}
	}
	return nil
}

// options builds the server options from the config.
func (b *Bus) options() (*server.Options, error) {
	opts := &server.Options{
		ServerName:    b.cfg.ServerName,
		DontListen:    b.cfg.Listen == "",
		NoSigs:        true, // otherwise the server's own SIGINT handler exits the process
		MaxPayload:    MaxPayload,
		Authorization: b.cfg.Token,
	}
	if b.cfg.StoreDir != "" {
		if err := os.MkdirAll(b.cfg.StoreDir, 0o700); err != nil {
			return nil, fmt.Errorf("bus: create the JetStream store: %w", err)
		}
		opts.JetStream, opts.StoreDir = true, b.cfg.StoreDir
	}
	if b.cfg.Listen != "" {
		host, port, err := splitHostPort(b.cfg.Listen, "bus listen")
		if err != nil {
			return nil, err
		}
		opts.Host, opts.Port = host, port
		if port == 0 {
			opts.Port = server.RANDOM_PORT
		}
	}
	if b.cfg.ClusterListen != "" {
		if b.cfg.Listen == "" {
			return nil, errors.New("bus: a cluster listener needs a client listener (Listen)")
		}
		host, port, err := splitHostPort(b.cfg.ClusterListen, "cluster listen")
		if err != nil {
			return nil, err
		}
		if port == 0 {
			port = server.RANDOM_PORT
		}
		name := b.cfg.ClusterName
		if name == "" {
			name = "clawdis"
		}
		opts.Cluster = server.ClusterOpts{Name: name, Host: host, Port: port}
		if b.cfg.StoreDir != "" && len(b.cfg.Routes) == 0 {
			return nil, errors.New("bus: a JetStream cluster node needs routes: list every node of the cluster, itself included")
		}
		for _, r := range b.cfg.Routes {
			u, err := url.Parse(r)
			if err != nil || u.Host == "" {
				return nil, fmt.Errorf("bus: route %q is not a nats://host:port URL", r)
			}
			opts.Routes = append(opts.Routes, u)
		}
	} else if len(b.cfg.Routes) > 0 {
		return nil, errors.New("bus: routes need a cluster listener (ClusterListen)")
	}
	return opts, nil
}

func splitHostPort(addr, what string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("bus: %s %q: %w", what, addr, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("bus: %s %q: bad port", what, addr)
	}
	return host, port, nil
}

// ClientURL is the nats:// URL TCP clients use, or "" without a TCP listener.
func (b *Bus) ClientURL() string {
	if b.ns == nil || b.cfg.Listen == "" {
		return ""
	}
	if a, ok := b.ns.Addr().(*net.TCPAddr); ok {
		return "nats://" + net.JoinHostPort(a.IP.String(), strconv.Itoa(a.Port))
	}
	return ""
}

// ClusterURL is the nats:// URL other nodes route to, or "" without a cluster listener.
func (b *Bus) ClusterURL() string {
	if b.ns == nil || b.cfg.ClusterListen == "" {
		return ""
	}
	if a := b.ns.ClusterAddr(); a != nil {
		return "nats://" + net.JoinHostPort(a.IP.String(), strconv.Itoa(a.Port))
	}
	return ""
}

// Name is the server name of this bus node.
func (b *Bus) Name() string { return b.cfg.ServerName }

// JetStream reports whether the server runs JetStream.
func (b *Bus) JetStream() bool { return b.ns != nil && b.ns.JetStreamEnabled() }

// NumRoutes is the number of routes to other bus nodes currently up.
func (b *Bus) NumRoutes() int {
	if b.ns == nil {
		return 0
	}
	return b.ns.NumRoutes()
}

// Connect opens an in-process connection named name. Extra options are applied last.
func (b *Bus) Connect(name string, extra ...nats.Option) (*nats.Conn, error) {
	if b.ns == nil {
		return nil, ErrNotStarted
	}
	log := b.log.With("conn", name)
	opts := append([]nats.Option{
		nats.Name(name),
		nats.InProcessServer(b.ns),
		nats.Token(b.cfg.Token),
		nats.MaxReconnects(-1),
		nats.ErrorHandler(logAsyncErrors(log)),
	}, extra...)
	nc, err := nats.Connect("", opts...)
	if err != nil {
		return nil, fmt.Errorf("bus: connect %s: %w", name, err)
	}
	return nc, nil
}

// logAsyncErrors reports the connection's asynchronous errors (slow consumers among them).
func logAsyncErrors(log *slog.Logger) nats.ErrHandler {
	return func(_ *nats.Conn, sub *nats.Subscription, err error) {
		if sub != nil {
			log.Warn("bus subscription error", "subject", sub.Subject, "err", err)
			return
		}
		log.Warn("bus connection error", "err", err)
	}
}

// Shutdown stops the server and waits for it to finish.
func (b *Bus) Shutdown() {
	if b.ns == nil {
		return
	}
	b.ns.Shutdown()
	b.ns.WaitForShutdown()
	b.ns = nil
}

// slogBridge sends the NATS server's log lines to slog. Its first fatal line is kept and
// closes fatal.
type slogBridge struct {
	log       *slog.Logger
	fatalOnce sync.Once
	fatal     chan struct{}
	fatalMsg  string // written once, before fatal closes
}

func (l *slogBridge) Noticef(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l *slogBridge) Warnf(format string, v ...any)   { l.log.Warn(fmt.Sprintf(format, v...)) }
func (l *slogBridge) Errorf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l *slogBridge) Debugf(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l *slogBridge) Tracef(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }

func (l *slogBridge) Fatalf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	l.log.Error(msg)
	l.fatalOnce.Do(func() {
		l.fatalMsg = msg
		close(l.fatal)
	})
}

// MaxPayload is the largest bus message: room for a chat.send with a 5,000,000-byte image
// (about 6.7 MB in base64) when gateway.maxPayload allows such a frame.
const MaxPayload = 8 << 20
