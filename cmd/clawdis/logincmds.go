package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/clawdis/clawdis/cmd/clawdis/internal/config"
	"github.com/clawdis/clawdis/edge"
	"github.com/clawdis/clawdis/services/provider"
	"github.com/clawdis/clawdis/services/whatsapp"
)

// stateFlags locate the state dir for the commands that work on it directly.
type stateFlags struct {
	stateDir, configPath string
}

func (sf *stateFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&sf.stateDir, "state-dir", "", "state directory (default $CLAWDIS_STATE_DIR or ~/.clawdis)")
	cmd.Flags().StringVar(&sf.configPath, "config", "", "config file (default $CLAWDIS_CONFIG_PATH, else <state dir>/clawdis.json)")
}

// paths resolves the state dir and config file from the flags and the environment.
func (sf *stateFlags) paths() config.Paths {
	home, _ := os.UserHomeDir()
	return config.ResolvePaths(sf.stateDir, sf.configPath, os.Getenv, home)
}

// lockState resolves and creates the state dir and takes the gateway lock, so that login
// and logout never touch the WhatsApp store while a gateway uses it.
func (sf *stateFlags) lockState() (string, *edge.Lock, error) {
	paths := sf.paths()
	if err := config.EnsureStateDir(paths.StateDir); err != nil {
		return "", nil, err
	}
	lock, err := edge.AcquireLock(paths.StateDir)
	var le *edge.LockedError
	if errors.As(err, &le) {
		return "", nil, fmt.Errorf("%w: a gateway is running; stop it first, then start it again afterwards", err)
	}
	return paths.StateDir, lock, err
}

func newLoginCmd(stdout io.Writer) *cobra.Command {
	var sf stateFlags
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "login",
		Short: "Link WhatsApp by scanning a QR code shown in the terminal",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			state, lock, err := sf.lockState()
			if err != nil {
				return err
			}
			defer func() { _ = lock.Release() }()
			// Login prints each stage (connecting, waiting for the code, the QR codes,
			// scanned, linked); what is left to say is the next step.
			if _, err := whatsapp.Login(cmd.Context(), whatsapp.LoginOptions{
				StoreDir: filepath.Join(state, "whatsapp"), Out: stdout, Timeout: timeout,
			}); err != nil {
				return err
			}
			_, err = fmt.Fprintln(stdout, "Next: start the gateway (`clawdis gateway`); it connects with this link.")
			return err
		},
	}
	sf.register(cmd)
	cmd.Flags().DurationVar(&timeout, "timeout", whatsapp.DefaultLoginTimeout, "how long to wait for the scan")
	return cmd
}

func newLogoutCmd(stdout io.Writer) *cobra.Command {
	var sf stateFlags
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "logout",
		Short: "Unlink WhatsApp and delete its local session",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			state, lock, err := sf.lockState()
			if err != nil {
				return err
			}
			defer func() { _ = lock.Release() }()
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			res, err := whatsapp.Logout(ctx, filepath.Join(state, "whatsapp"))
			if errors.Is(err, provider.ErrNotLinked) {
				_, err = fmt.Fprintln(stdout, "WhatsApp is not linked; nothing to log out.")
				return err
			}
			if err != nil {
				return err
			}
			if res.Remote {
				_, err = fmt.Fprintf(stdout, "Logged out %s.\n", res.Number)
			} else {
				_, err = fmt.Fprintf(stdout, "Deleted the local session of %s; remove the device on the phone too (Linked devices).\n", res.Number)
			}
			return err
		},
	}
	sf.register(cmd)
	cmd.Flags().DurationVar(&timeout, "timeout", 30*time.Second, "how long to wait for WhatsApp to confirm")
	return cmd
}
