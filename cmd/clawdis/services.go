package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/clawdis/clawdis/bus/subject"
	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/services/agent"
	"github.com/clawdis/clawdis/services/autoreply"
	"github.com/clawdis/clawdis/services/health"
	"github.com/clawdis/clawdis/services/presence"
	"github.com/clawdis/clawdis/services/provider"
	"github.com/clawdis/clawdis/services/sessions"
	"github.com/clawdis/clawdis/services/telegram"
	"github.com/clawdis/clawdis/services/whatsapp"
)

// runner is a component with the conventional Run(ctx) lifecycle.
type runner interface{ Run(context.Context) error }

// serviceNames lists the services this gateway runs in-process, in start order.
func serviceNames(s settings) []string {
	names := []string{subject.ServicePresence, subject.ServiceHealth, subject.ServiceSessions, subject.ServiceAgent}
	if !s.noProv {
		names = append(names, subject.ServiceWhatsApp, subject.ServiceTelegram, subject.ServiceAutoreply)
	}
	return names
}

// buildServices creates each named service on its own bus connection, and the WebChat facts
// service when this gateway serves WebChat.
func buildServices(s settings, host string, run []string, connect func(string) (*nats.Conn, error), log *slog.Logger) ([]runner, error) {
	names := s.bus.expected
	if names == nil {
		names = serviceNames(s)
	}
	var out []runner
	for _, name := range run {
		nc, err := connect(name)
		if err != nil {
			return nil, err
		}
		r, err := buildService(s, host, names, name, nc, log)
		if err != nil {
			return nil, fmt.Errorf("service %s: %w", name, err)
		}
		out = append(out, r)
	}
	if s.webchat {
		nc, err := connect(subject.ServiceWebChat)
		if err != nil {
			return nil, err
		}
		out = append(out, newWebChatFacts(s.wcPort, nc, log))
	}
	return out, nil
}

func buildService(s settings, host string, names []string, name string, nc *nats.Conn, log *slog.Logger) (runner, error) {
	cfg, state := s.cfg, s.paths.StateDir
	// Payloads that reach clients are bounded by the frame size the edge allows.
	maxPayload := cfg.Gateway.MaxPayload
	switch name {
	case subject.ServicePresence:
		return presence.New(presence.Config{Host: host, IP: primaryIP(), Version: version, MaxBytes: maxPayload}, nc, log)
	case subject.ServiceHealth:
		return health.New(health.Config{Services: names, MaxBytes: maxPayload, ConfigPath: s.config}, nc, log)
	case subject.ServiceSessions:
		return sessions.New(sessions.Config{Dir: filepath.Join(state, "sessions"), MainKey: cfg.Sessions.MainKey,
			MaxBytes: maxPayload}, nc, log)
	case subject.ServiceAgent:
		a := cfg.Agent
		return agent.New(agent.Config{
			Backend: a.Backend, Command: a.Command,
			OpenAI: agent.OpenAIConfig{BaseURL: a.OpenAI.BaseURL, Model: a.OpenAI.Model, APIKeyEnv: a.OpenAI.APIKeyEnv,
				SystemPrompt: a.OpenAI.SystemPrompt},
			Timeout: time.Duration(a.TimeoutSeconds) * time.Second, MaxConcurrent: a.MaxConcurrent,
			MaxReplyBytes: a.MaxReplyBytes, MaxPayload: maxPayload,
			ThinkingDefault: a.ThinkingDefault, MainKey: cfg.Sessions.MainKey, HistoryLimit: historyLimit(cfg.Sessions.HistoryLimit),
			Replicas: s.bus.replicas, LegacyDedupePath: filepath.Join(state, "dedupe", "agent.json"),
		}, nc, log)
	case subject.ServiceWhatsApp:
		wa, err := whatsapp.New(whatsapp.Config{StoreDir: filepath.Join(state, "whatsapp"),
			MediaDir: filepath.Join(state, "media", "inbound"), Log: log, DialLogin: s.waLogin})
		if err != nil {
			return nil, err
		}
		return newProvider(s, wa, map[string]string{wire.MetaHeartbeatSeconds: strconv.Itoa(cfg.Web.HeartbeatSeconds)}, nc, log)
	case subject.ServiceTelegram:
		t := cfg.Telegram
		bot, err := telegram.New(telegram.Config{
			Token: t.BotToken, APIRoot: t.APIRoot, WebhookURL: t.WebhookURL, WebhookSecret: t.WebhookSecret,
			WebhookListen: t.WebhookListen, WebhookPath: t.WebhookPath, Proxy: t.Proxy, MediaMaxMB: t.MediaMaxMb,
			MediaDir: filepath.Join(state, "media", "inbound"), Log: log,
		})
		if err != nil {
			return nil, err
		}
		return newProvider(s, bot, map[string]string{wire.MetaConfigured: strconv.FormatBool(t.BotToken != "")}, nc, log)
	case subject.ServiceAutoreply:
		groupMention, tgMention := cfg.Inbound.GroupChat.RequireMention, cfg.Telegram.RequireMention
		return autoreply.New(autoreply.Config{
			Providers: providerNames(names), MainKey: cfg.Sessions.MainKey,
			WhatsAppAllowFrom: cfg.Inbound.AllowFrom, TelegramAllowFrom: cfg.Telegram.AllowFrom,
			GroupRequireMention: &groupMention, TelegramRequireMention: &tgMention,
			MentionPatterns:   cfg.Inbound.GroupChat.MentionPatterns,
			LegacyJournalPath: filepath.Join(state, "autoreply", "pending.json"), Replicas: s.bus.replicas,
		}, nc, log)
	}
	return nil, fmt.Errorf("unknown service %q", name)
}

// newProvider puts a network adapter under the provider core with the configured
// reconnect policy and the provider's facts as its micro metadata.
func newProvider(s settings, n provider.Network, meta map[string]string, nc *nats.Conn, log *slog.Logger) (runner, error) {
	r := s.cfg.Web.Reconnect
	jitter := r.Jitter
	if jitter == 0 {
		jitter = -1 // the core reads 0 as "default"; a configured 0 means no jitter
	}
	return provider.New(provider.Config{
		Network:   n,
		DedupeDir: filepath.Join(s.paths.StateDir, "dedupe"),
		Replicas:  s.bus.replicas,
		MediaDir:  filepath.Join(s.paths.StateDir, "media", "inbound"),
		Reconnect: provider.Policy{InitialMs: r.InitialMs, MaxMs: r.MaxMs, Factor: r.Factor, Jitter: jitter, MaxAttempts: r.MaxAttempts},
		// Only the embedded bus without a TCP listener is private: with --bus-listen or
		// --nats-url (and in `clawdis service`) another copy could be on it.
		PrivateBus: s.bus.listen == "" && s.bus.natsURL == "",
		Metadata:   meta,
	}, nc, log)
}

// historyLimit maps sessions.historyLimit to the agent's: there 0 means the default and a
// negative value none, while a configured 0 means no history.
func historyLimit(n int) int {
	if n == 0 {
		return -1
	}
	return n
}

// providerNames keeps the provider services of names.
func providerNames(names []string) []string {
	var out []string
	for _, n := range names {
		if n == subject.ServiceWhatsApp || n == subject.ServiceTelegram {
			out = append(out, n)
		}
	}
	return out
}
