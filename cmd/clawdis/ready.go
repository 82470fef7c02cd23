package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/clawdis/clawdis/bus/subject"
	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/cmd/clawdis/internal/config"
	"github.com/clawdis/clawdis/schemas"
)

// providerSettle bounds how long the ready line waits for the providers to leave their
// starting states (a linked WhatsApp may take longer to connect: it then says connecting).
const providerSettle = 2 * time.Second

// readyLine is the start-up summary (SPEC §14.1): where to connect, which config was read,
// each provider's state with what to do next, and the agent backend.
func readyLine(gatewayURL, webChatURL, configPath string, providers map[string]*wire.ProviderState, agent config.Agent) string {
	parts := []string{"ready: " + gatewayURL}
	if webChatURL != "" {
		parts = append(parts, "WebChat "+webChatURL)
	} else {
		parts = append(parts, "WebChat off")
	}
	if configPath == noConfigFile {
		parts = append(parts, noConfigFile)
	} else {
		parts = append(parts, "config "+homeTilde(configPath))
	}
	if len(providers) == 0 {
		parts = append(parts, "providers off")
	} else {
		parts = append(parts, whatsAppReady(providers[subject.ServiceWhatsApp]), telegramReady(providers[subject.ServiceTelegram]))
	}
	return strings.Join(append(parts, agentReady(agent)), " · ")
}

// homeTilde shows a path under the home directory as ~/….
func homeTilde(p string) string {
	home, err := os.UserHomeDir()
	if err != nil || home == "" || home == "/" {
		return p
	}
	if rel, ok := strings.CutPrefix(p, home+string(filepath.Separator)); ok {
		return "~/" + rel
	}
	return p
}

func whatsAppReady(st *wire.ProviderState) string {
	switch {
	case st == nil:
		return "WhatsApp off"
	case st.State == schemas.WebUnlinked:
		return "WhatsApp not linked (run: clawdis login)"
	case st.State == schemas.WebDisabled:
		return "WhatsApp off"
	case st.Self != "":
		return "WhatsApp " + st.State + " as " + st.Self
	case st.LastError != "":
		return "WhatsApp " + st.State + " (" + st.LastError + ")"
	}
	return "WhatsApp " + st.State
}

func telegramReady(st *wire.ProviderState) string {
	switch {
	case st == nil:
		return "Telegram off"
	case st.State == schemas.TelegramUnconfigured:
		return "Telegram not configured (set TELEGRAM_BOT_TOKEN to use a bot)"
	case st.State == schemas.TelegramError && st.LastError != "":
		return "Telegram error: " + st.LastError
	case st.Self != "":
		return "Telegram " + st.State + " as @" + strings.TrimPrefix(st.Self, "@")
	}
	return "Telegram " + st.State
}

func agentReady(a config.Agent) string {
	switch a.Backend {
	case "command":
		if len(a.Command) > 0 {
			return "agent: command " + filepath.Base(a.Command[0])
		}
		return "agent: command"
	case "openai":
		return "agent: openai " + a.OpenAI.Model
	case "":
		return "agent: none (messages are not answered; set agent.backend)"
	}
	return "agent: " + a.Backend
}

// settledProviders asks each of providers (the ones the gateway expects, wherever they run)
// for its state and waits up to settle for those still starting to report a settled one. A
// provider that does not answer is in state "not answering".
func settledProviders(ctx context.Context, nc *nats.Conn, providers []string, settle time.Duration) map[string]*wire.ProviderState {
	out := map[string]*wire.ProviderState{}
	if len(providers) == 0 {
		return out
	}
	events := make(chan wire.ProviderState, 16)
	sub, err := nc.Subscribe(subject.ProviderStateAll, func(m *nats.Msg) {
		var st wire.ProviderState
		if json.Unmarshal(m.Data, &st) == nil {
			select {
			case events <- st:
			default:
			}
		}
	})
	if err == nil {
		defer func() { _ = sub.Unsubscribe() }()
		_ = nc.Flush()
	}
	ctx, cancel := context.WithTimeout(ctx, settle)
	defer cancel()
	for _, p := range providers {
		subj, err := subject.ProviderStatus(p)
		if err != nil {
			continue
		}
		var st wire.ProviderState
		if wire.RequestJSON(ctx, nc, subj, nil, &st) != nil {
			st = wire.ProviderState{Provider: p, State: "not answering"}
		}
		out[p] = &st
	}
	starting := func() bool {
		for _, st := range out {
			if st.State == schemas.TelegramStarting || st.State == schemas.WebConnecting || st.State == "" {
				return true
			}
		}
		return false
	}
	for err == nil && starting() {
		select {
		case st := <-events:
			if prev, ok := out[st.Provider]; ok && st.Ts >= prev.Ts {
				out[st.Provider] = &st
			}
		case <-ctx.Done():
			return out
		}
	}
	return out
}

// expectedProviders are the providers among the services the gateway expects.
func expectedProviders(services []string) []string {
	var ps []string
	for _, p := range []string{subject.ServiceWhatsApp, subject.ServiceTelegram} {
		if slices.Contains(services, p) {
			ps = append(ps, p)
		}
	}
	return ps
}
