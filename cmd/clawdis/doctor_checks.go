package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/clawdis/clawdis/cmd/clawdis/internal/config"
	"github.com/clawdis/clawdis/edge"
	"github.com/clawdis/clawdis/edge/client"
	"github.com/clawdis/clawdis/services/whatsapp"
)

// checkGateway asks the configured port: a gateway answering there is fine, and so is a
// free port; anything else holding it is a problem.
func checkGateway(ctx context.Context, env doctorEnv, cfg config.Config) checkResult {
	const name = "gateway"
	addr := net.JoinHostPort(cfg.Gateway.Bind, strconv.Itoa(cfg.Gateway.Port))
	wsURL := "ws://" + dialAddr(&net.TCPAddr{IP: net.ParseIP(cfg.Gateway.Bind), Port: cfg.Gateway.Port})
	if net.ParseIP(cfg.Gateway.Bind) == nil { // a host name
		wsURL = "ws://" + addr
	}
	token := env.getenv(config.EnvGatewayToken)
	if token == "" {
		token = cfg.Gateway.Token
	}
	cf := clientFlags{url: wsURL, token: token, timeout: env.timeout}
	c, err := dialGateway(ctx, &cf, nil)
	if err == nil {
		c.Close()
		return pass(name, "a gateway is running at %s", wsURL)
	}
	var he *client.HelloError
	if errors.As(err, &he) {
		fix := "use the token the gateway runs with (CLAWDIS_GATEWAY_TOKEN or gateway.token)"
		if he.Reason != "unauthorized" {
			fix = "see the gateway's log"
		}
		return fail(name, fix, "the gateway at %s refused this client: %s", wsURL, he.Reason)
	}
	ln, lerr := net.Listen("tcp", addr)
	if lerr == nil {
		_ = ln.Close()
		return pass(name, "not running; port %d is free for it (start it with `clawdis gateway`)", cfg.Gateway.Port)
	}
	return fail(name, "stop what holds the port (`clawdis gateway --force` stops it at start) or set gateway.port",
		"no gateway answers at %s, but the port is in use", wsURL)
}

// checkWhatsApp wants a linked WhatsApp, unless Telegram is configured instead.
func checkWhatsApp(ctx context.Context, env doctorEnv, cfg config.Config) checkResult {
	const name = "whatsapp"
	ctx, cancel := context.WithTimeout(ctx, env.timeout)
	defer cancel()
	number, err := whatsapp.Linked(ctx, filepath.Join(env.paths.StateDir, "whatsapp"))
	switch {
	case err != nil:
		return fail(name, "check the permissions of "+filepath.Join(env.paths.StateDir, "whatsapp"),
			"cannot read the WhatsApp store: %s", err.Error())
	case number != "":
		return pass(name, "linked as %s", number)
	case cfg.Telegram.BotToken != "":
		return pass(name, "not linked (Telegram is configured; to add WhatsApp, stop the gateway and run `clawdis login`)")
	}
	return fail(name, "stop the gateway and run `clawdis login`, or configure Telegram (TELEGRAM_BOT_TOKEN)",
		"WhatsApp is not linked and Telegram is not configured: no message can arrive")
}

// checkTelegram asks the Bot API whether it accepts the token (getMe). A Bot API that
// cannot be reached leaves the token unchecked, which is not a failure.
func checkTelegram(ctx context.Context, env doctorEnv, cfg config.Config) checkResult {
	const name = "telegram"
	t := cfg.Telegram
	if t.BotToken == "" {
		return pass(name, "not configured (set TELEGRAM_BOT_TOKEN or telegram.botToken to use a bot)")
	}
	hc := env.http
	if t.Proxy != "" {
		if pu, err := url.Parse(t.Proxy); err == nil {
			hc = &http.Client{Timeout: env.timeout, Transport: &http.Transport{Proxy: http.ProxyURL(pu)}}
		}
	}
	var me struct {
		OK     bool `json:"ok"`
		Result struct {
			Username string `json:"username"`
		} `json:"result"`
	}
	status, err := getJSON(ctx, hc, strings.TrimRight(t.APIRoot, "/")+"/bot"+t.BotToken+"/getMe", "", &me)
	switch {
	case err != nil:
		return pass(name, "token not checked: the Bot API is not reachable (%s)", err.Error())
	case status == http.StatusUnauthorized || status == http.StatusNotFound:
		return fail(name, "copy the token from @BotFather into TELEGRAM_BOT_TOKEN or telegram.botToken",
			"Telegram rejected the bot token (HTTP %d)", status)
	case status != http.StatusOK || !me.OK:
		return pass(name, "token not checked: the Bot API answered HTTP %d", status)
	}
	return pass(name, "the token is accepted: @%s", me.Result.Username)
}

// checkAgent checks that the agent backend can run: the command exists and is executable,
// or the OpenAI-compatible endpoint answers its models list (and offers the model).
func checkAgent(ctx context.Context, env doctorEnv, cfg config.Config) checkResult {
	const name = "agent"
	a := cfg.Agent
	switch a.Backend {
	case config.BackendCommand:
		path, err := exec.LookPath(a.Command[0])
		if err != nil {
			return fail(name, "install it, or set agent.command to the program's full path",
				"the agent command %s is not found or not executable", strconv.Quote(a.Command[0]))
		}
		return pass(name, "command backend: %s", path)
	case config.BackendOpenAI:
		return checkOpenAI(ctx, env, a)
	}
	return fail(name, "set agent.command, or agent.backend \"openai\" with agent.openai.model (docs/configuration.md#agent)",
		"no agent backend is configured: messages arrive but are not answered")
}

// checkOpenAI asks the OpenAI-compatible endpoint for its models and looks for the model.
func checkOpenAI(ctx context.Context, env doctorEnv, a config.Agent) checkResult {
	const name = "agent"
	base := strings.TrimRight(a.OpenAI.BaseURL, "/")
	key := env.getenv(a.OpenAI.APIKeyEnv)
	var models struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	status, err := getJSON(ctx, env.http, base+"/models", key, &models)
	switch {
	case err != nil:
		return fail(name, "start the server, or correct agent.openai.baseUrl",
			"the openai backend at %s is not reachable (%s)", base, err.Error())
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		fix := "set $" + a.OpenAI.APIKeyEnv + " to a valid API key"
		if key == "" {
			return fail(name, fix, "$%s is not set and %s wants an API key (HTTP %d)", a.OpenAI.APIKeyEnv, base, status)
		}
		return fail(name, fix, "%s rejected the API key in $%s (HTTP %d)", base, a.OpenAI.APIKeyEnv, status)
	case status != http.StatusOK:
		return fail(name, "check agent.openai.baseUrl: it should end in /v1 for most servers",
			"%s/models answered HTTP %d", base, status)
	}
	var ids []string
	for _, m := range models.Data {
		ids = append(ids, m.ID)
	}
	if len(ids) > 0 && !slices.Contains(ids, a.OpenAI.Model) {
		return fail(name, "set agent.openai.model to one of: "+strings.Join(ids[:min(len(ids), 8)], ", "),
			"%s does not offer the model %s", base, strconv.Quote(a.OpenAI.Model))
	}
	return pass(name, "openai backend: %s answers (model %s)", base, a.OpenAI.Model)
}

// getJSON GETs u (with a bearer token when one is given) and decodes a 200 answer into v.
// Errors name the failure without the URL, which may hold a token.
func getJSON(ctx context.Context, hc *http.Client, u, bearer string, v any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, errors.New("invalid URL")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := hc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			return resp.StatusCode, fmt.Errorf("answer is not JSON: %w", err)
		}
	}
	return resp.StatusCode, nil
}

// checkBindToken wants a strong token whenever the gateway listens beyond loopback, by
// the rule the gateway applies at start-up (bindTokenProblem).
func checkBindToken(cfg config.Config) checkResult {
	const name = "bind"
	bind := cfg.Gateway.Bind
	if edge.IsLoopbackHost(bind) {
		return pass(name, "the gateway listens on loopback (%s) only", bind)
	}
	if problem := bindTokenProblem(bind, cfg.Gateway.Token); problem != "" {
		return fail(name, tokenFix, "gateway.bind is %s (not loopback) and %s: the gateway refuses to start", bind, problem)
	}
	return pass(name, "gateway.bind is %s, protected by a strong token", bind)
}

// secretFlags are flags whose value is a secret; on a service's command line they are
// visible to every user in ps.
var secretFlags = []string{"--token", "--bus-token", "--nats-token"}

// checkUnits wants no secret flag on the command line of an installed service unit.
func checkUnits(units []string) checkResult {
	const name = "service units"
	var checked []string
	for _, path := range units {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		checked = append(checked, path)
		args := unitCommandLine(path, b)
		for _, a := range args {
			flag, _, _ := strings.Cut(a, "=")
			if slices.Contains(secretFlags, flag) {
				return fail(name, "remove "+flag+" from "+path+" and give the secret through the environment "+
					"(an EnvironmentFile with CLAWDIS_GATEWAY_TOKEN=…) or the config file; `clawdis gateway install` writes such a unit",
					"%s passes %s on the command line, visible to every user in ps", path, flag)
			}
		}
	}
	if len(checked) == 0 {
		return pass(name, "no clawdis service unit installed")
	}
	return pass(name, "no secret on the command line of %s", strings.Join(checked, ", "))
}

// unitCommandLine is the command line of a systemd unit (every ExecStart) or a launchd
// plist (ProgramArguments), split into arguments.
func unitCommandLine(path string, b []byte) []string {
	if strings.HasSuffix(path, ".plist") {
		return plistProgramArguments(b)
	}
	var args []string
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "ExecStart="); ok {
			args = append(args, strings.Fields(v)...)
		}
	}
	return args
}
