package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// newDashboardCmd is `clawdis dashboard`.
func newDashboardCmd(stdout io.Writer) *cobra.Command {
	var sf stateFlags
	var token string
	var port int
	var noOpen bool
	cmd := &cobra.Command{
		Use:   "dashboard",
		Short: "Print the WebChat URL (with the token in its #fragment) and open it in a browser when one can be opened",
		Long: "Print the URL of WebChat, the gateway's browser page. When a gateway token is configured\n" +
			"(--token, $CLAWDIS_GATEWAY_TOKEN or gateway.token) it is in the URL's #fragment, which browsers\n" +
			"never send to a server; the page keeps it and removes it from the address bar. A browser is\n" +
			"opened only where one can be (a desktop session); that failing never fails the command.",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, _, _, err := sf.paths().Load()
			if err != nil {
				return err
			}
			cfg.ApplyEnv(os.Getenv)
			if token != "" {
				cfg.Gateway.Token = token
			}
			if port == 0 {
				port = cfg.WebChat.Port
			}
			u := dashboardURL(port, cfg.Gateway.Token)
			fmt.Fprintln(stdout, u)
			errw := cmd.ErrOrStderr()
			if !cfg.WebChat.Enabled {
				fmt.Fprintln(errw, "note: webchat.enabled is false: run `clawdis webchat` to serve the page")
			} else if !listening(cmd.Context(), port) {
				fmt.Fprintln(errw, "note: nothing answers on that port yet: start the gateway (`clawdis gateway`)")
			}
			if !noOpen {
				if opener := browserOpener(os.Getenv); opener != "" {
					// Best effort: the URL is printed above whatever happens here.
					if err := exec.Command(opener, u).Start(); err != nil {
						fmt.Fprintln(errw, "note: could not open a browser; open the URL above yourself")
					}
				}
			}
			return nil
		},
	}
	sf.register(cmd)
	cmd.Flags().StringVar(&token, "token", "", "gateway token to put in the URL (default $CLAWDIS_GATEWAY_TOKEN, then gateway.token)")
	cmd.Flags().IntVar(&port, "port", 0, "WebChat port (default webchat.port)")
	cmd.Flags().BoolVar(&noOpen, "no-open", false, "only print the URL")
	return cmd
}

// dashboardURL is the WebChat URL on loopback, with #token=… when a token is set (SPEC §10).
func dashboardURL(port int, token string) string {
	u := "http://127.0.0.1:" + strconv.Itoa(port) + "/"
	if token != "" {
		// %20, not +, for a space: the page decodes the fragment with decodeURIComponent.
		u += "#token=" + strings.ReplaceAll(url.QueryEscape(token), "+", "%20")
	}
	return u
}

// browserOpener is the program that opens a URL in this session's browser, or "" when no
// browser can be opened here (no desktop session, or no opener installed).
func browserOpener(getenv func(string) string) string {
	var name string
	switch runtime.GOOS {
	case "darwin":
		if getenv("SSH_CONNECTION") != "" && getenv("DISPLAY") == "" {
			return "" // a remote shell: the browser would open on the Mac's screen
		}
		name = "open"
	case "linux", "freebsd", "openbsd", "netbsd":
		if getenv("DISPLAY") == "" && getenv("WAYLAND_DISPLAY") == "" {
			return ""
		}
		name = "xdg-open"
	default:
		return ""
	}
	path, err := exec.LookPath(name)
	if err != nil {
		return ""
	}
	return path
}

// listening reports whether something accepts connections on the loopback port.
func listening(ctx context.Context, port int) bool {
	d := net.Dialer{Timeout: time.Second}
	c, err := d.DialContext(ctx, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	_ = c.Close()
	return true
}
