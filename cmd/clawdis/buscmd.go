package main

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/clawdis/clawdis/bus"
	"github.com/clawdis/clawdis/cmd/clawdis/internal/config"
)

// busNodeFlags are the flags of `clawdis bus`.
type busNodeFlags struct {
	listen, token, clusterListen, name string
	routes                             []string
	logFormat                          string
	storeDir                           string
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
				storeDir, err := busStoreDir(bf.storeDir, os.Getenv)
				if err != nil {
					return err
				}
				b := bus.New(bus.Config{ServerName: busNodeName(bf.name), Listen: bf.listen, Token: plan.token,
					ClusterListen: bf.clusterListen, Routes: bf.routes, StoreDir: storeDir}, log)
				if err := b.Start(); err != nil {
					return err
				}
				defer b.Shutdown()
				log.Info("bus listening", "nats_url", b.ClientURL(), "cluster_url", b.ClusterURL(), "routes", len(bf.routes),
					"name", b.Name(), "store_dir", storeDir)
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
	f.StringVar(&bf.name, "name", "", "node name, unique in a cluster (default the host name)")
	f.StringVar(&bf.storeDir, "store-dir", "", "JetStream store directory, one per node (default $CLAWDIS_STATE_DIR/bus, else ~/.clawdis/bus)")
	f.StringVar(&bf.logFormat, "log-format", "auto", "log format: auto, text or json")
	return cmd
}

// busStoreDir is the JetStream store of a bus node: --store-dir, else <state dir>/bus with
// the state dir from $CLAWDIS_STATE_DIR or the home directory. Without any of them (a
// container without $HOME) it is an error rather than a store in the working directory.
func busStoreDir(flag string, getenv func(string) string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	if dir := getenv(config.EnvStateDir); dir != "" {
		return filepath.Join(dir, "bus"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil || home == "" {
		return "", usageError{errors.New("bus needs --store-dir (or $CLAWDIS_STATE_DIR): no home directory to default to")}
	}
	return filepath.Join(home, ".clawdis", "bus"), nil
}

// busNodeName is --name, else the host name: JetStream needs every node of a cluster named
// apart.
func busNodeName(flag string) string {
	if flag != "" {
		return flag
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "clawdis"
}
