// Package bus runs the embedded NATS server that connects the gateway's services and hands
// out named connections to it. By default the server has no TCP listener: every component
// connects in-process.
package bus

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Config configures the embedded bus. The zero value is an in-process-only bus.
type Config struct {
	// ServerName names the bus node in NATS logs and monitoring. Default "clawdis".
	ServerName string
	// ReadyTimeout bounds how long Start waits for the server. Default 10s.
	ReadyTimeout time.Duration
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
	opts := &server.Options{
		ServerName: b.cfg.ServerName,
		DontListen: true,
		NoSigs:     true, // otherwise the server's own SIGINT handler exits the process
		NoLog:      false,
		MaxPayload: MaxPayload,
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return fmt.Errorf("bus: create server: %w", err)
	}
	ns.SetLoggerV2(slogBridge{b.log}, false, false, false)
	go ns.Start()
	if !ns.ReadyForConnections(b.cfg.ReadyTimeout) {
		ns.Shutdown()
		return fmt.Errorf("bus: server not ready after %s", b.cfg.ReadyTimeout)
	}
	b.ns = ns
	b.log.Debug("bus started", "server", b.cfg.ServerName)
	return nil
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
		nats.MaxReconnects(-1),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			if sub != nil {
				log.Warn("bus subscription error", "subject", sub.Subject, "err", err)
				return
			}
			log.Warn("bus connection error", "err", err)
		}),
	}, extra...)
	nc, err := nats.Connect("", opts...)
	if err != nil {
		return nil, fmt.Errorf("bus: connect %s: %w", name, err)
	}
	return nc, nil
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

// slogBridge sends the NATS server's log lines to slog.
type slogBridge struct{ log *slog.Logger }

func (l slogBridge) Noticef(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l slogBridge) Warnf(format string, v ...any)   { l.log.Warn(fmt.Sprintf(format, v...)) }
func (l slogBridge) Fatalf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l slogBridge) Errorf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l slogBridge) Debugf(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l slogBridge) Tracef(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }

// MaxPayload is the largest bus message: room for a chat.send with a 5,000,000-byte image
// (about 6.7 MB in base64) when gateway.maxPayload allows such a frame.
const MaxPayload = 8 << 20
