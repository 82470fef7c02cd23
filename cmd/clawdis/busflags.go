package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"

	"github.com/spf13/pflag"

	"github.com/clawdis/clawdis/bus"
	"github.com/clawdis/clawdis/bus/subject"
	"github.com/clawdis/clawdis/edge"
)

// busFlags choose the bus and which services run in this process (SPEC §11).
type busFlags struct {
	listen, token      string // --bus-listen, --bus-token: expose the embedded bus on TCP
	natsURL, natsToken string // --nats-url, --nats-token: use an existing NATS deployment
	only, without      []string
}

func (bf *busFlags) register(f *pflag.FlagSet) {
	f.StringVar(&bf.listen, "bus-listen", "", "also serve the embedded bus on TCP at ADDR (host:port), for split-out services")
	f.StringVar(&bf.token, "bus-token", "", "token bus clients must present (default $CLAWDIS_BUS_TOKEN; required off loopback)")
	f.StringVar(&bf.natsURL, "nats-url", "", "use the NATS deployment at URL instead of embedding a bus")
	f.StringVar(&bf.natsToken, "nats-token", "", "token for --nats-url (default $CLAWDIS_NATS_TOKEN)")
	f.StringSliceVar(&bf.only, "only", nil, `run only these services in-process (comma-separated; "none": the edge alone)`)
	f.StringSliceVar(&bf.without, "without", nil, "do not run these services in-process (they run elsewhere)")
}

// busPlan is the validated result: how to reach the bus and what runs here.
type busPlan struct {
	listen, token      string
	natsURL, natsToken string
	storeDir           string   // the embedded bus's JetStream store (bus.storeDir)
	replicas           int      // JetStream replicas of the streams and buckets (bus.replicas)
	expected           []string // every service the gateway relies on (routes, health pings)
	inProcess          []string // the ones this process runs
}

// planBus validates the bus flags against the services the configuration expects.
func planBus(bf busFlags, expected []string, getenv func(string) string) (busPlan, error) {
	p := busPlan{listen: bf.listen, token: bf.token, natsURL: bf.natsURL, natsToken: bf.natsToken, expected: expected}
	if p.token == "" {
		p.token = getenv("CLAWDIS_BUS_TOKEN")
	}
	if p.natsToken == "" {
		p.natsToken = getenv("CLAWDIS_NATS_TOKEN")
	}
	switch {
	case p.listen != "" && p.natsURL != "":
		return busPlan{}, usageError{errors.New("--bus-listen and --nats-url exclude each other: embed a bus or use an existing one")}
	case len(bf.only) > 0 && len(bf.without) > 0:
		return busPlan{}, usageError{errors.New("--only and --without exclude each other")}
	}
	if p.listen != "" {
		host, _, err := net.SplitHostPort(p.listen)
		if err != nil {
			return busPlan{}, usageError{fmt.Errorf("--bus-listen %q: want host:port", p.listen)}
		}
		if !edge.IsLoopbackHost(host) && p.token == "" {
			return busPlan{}, fmt.Errorf("refusing to expose the bus on %s without a bus token: set --bus-token or CLAWDIS_BUS_TOKEN", p.listen)
		}
	}
	onlyNone := slices.Contains(bf.only, onlyNoService)
	if onlyNone && len(bf.only) > 1 {
		return busPlan{}, usageError{fmt.Errorf("--only %s cannot be combined with service names", onlyNoService)}
	}
	if onlyNone && p.listen == "" && p.natsURL == "" {
		return busPlan{}, usageError{fmt.Errorf("--only %s needs --nats-url or --bus-listen: the services must be able to join from elsewhere", onlyNoService)}
	}
	for _, names := range [][]string{bf.only, bf.without} {
		for _, n := range names {
			if n == onlyNoService && onlyNone {
				continue
			}
			if !slices.Contains(knownServices, n) {
				return busPlan{}, usageError{fmt.Errorf("unknown service %q (known: %s)", n, strings.Join(knownServices, ", "))}
			}
		}
	}
	for _, n := range expected {
		switch {
		case len(bf.only) > 0 && !slices.Contains(bf.only, n):
		case slices.Contains(bf.without, n):
		default:
			p.inProcess = append(p.inProcess, n)
		}
	}
	return p, nil
}

// onlyNoService is the --only value that runs no service in-process: the edge alone.
const onlyNoService = "none"

// knownServices are the names `--only`, `--without` and `clawdis service` accept.
var knownServices = []string{subject.ServicePresence, subject.ServiceHealth, subject.ServiceSessions,
	subject.ServiceAgent, subject.ServiceWhatsApp, subject.ServiceTelegram, subject.ServiceAutoreply}

// connector starts the embedded bus (returning its stop function) or prepares the remote
// one.
func (p busPlan) connector(log *slog.Logger) (bus.Connector, func(), error) {
	if p.natsURL != "" {
		log.Info("using an external bus", "nats_url", p.natsURL)
		return bus.NewRemote(p.natsURL, p.natsToken, log), func() {}, nil
	}
	b := bus.New(bus.Config{Listen: p.listen, Token: p.token, StoreDir: p.storeDir}, log)
	if err := b.Start(); err != nil {
		return nil, nil, err
	}
	if u := b.ClientURL(); u != "" {
		log.Info("bus listening", "nats_url", u)
	}
	return b, b.Shutdown, nil
}
