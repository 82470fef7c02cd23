package main

import (
	"context"
	"errors"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/clawdis/clawdis/bus"
)

// busNodeFlags are the flags of `clawdis bus`.
type busNodeFlags struct {
	listen, token, clusterListen, name string
	routes                             []string
	logFormat                          string
}

func newBusCmd(stdout io.Writer) *cobra.Command {
	var bf busNodeFlags
	cmd := &cobra.Command{
		Use:   "bus",
		Short: "Run a standalone bus node (NATS) for split deployments and clusters",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if bf.listen == "" {
				return usageError{errors.New("bus needs --listen ADDR")}
			}
			log, err := newLogger(stdout, bf.logFormat, false)
			if err != nil {
				return err
			}
			return runWithSignals(cmd.Context(), log, "bus", func(ctx context.Context) error {
				plan, err := planBus(busFlags{listen: bf.listen, token: bf.token}, nil, os.Getenv)
				if err != nil {
					return err
				}
				b := bus.New(bus.Config{ServerName: bf.name, Listen: bf.listen, Token: plan.token,
					ClusterListen: bf.clusterListen, Routes: bf.routes}, log)
				if err := b.Start(); err != nil {
					return err
				}
				defer b.Shutdown()
				log.Info("bus listening", "nats_url", b.ClientURL(), "cluster_url", b.ClusterURL(), "routes", len(bf.routes))
				<-ctx.Done()
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&bf.listen, "listen", "", "client address (host:port), e.g. 0.0.0.0:4222")
	f.StringVar(&bf.token, "token", "", "token clients must present (default $CLAWDIS_BUS_TOKEN; required off loopback)")
	f.StringVar(&bf.clusterListen, "cluster-listen", "", "accept routes from other bus nodes at host:port")
	f.StringSliceVar(&bf.routes, "routes", nil, "bus nodes to route to (nats://host:port, comma-separated)")
	f.StringVar(&bf.name, "name", "", "node name (default clawdis)")
	f.StringVar(&bf.logFormat, "log-format", "auto", "log format: auto, text or json")
	return cmd
}
