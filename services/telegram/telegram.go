// Package telegram is the Telegram provider: a provider.Network built on telebot v3 that
// long-polls the Bot API (or serves a webhook when configured), reports its state with a
// background getMe probe, turns updates into inbound messages (downloading their media)
// and sends text in Markdown-then-plain chunks and media by URL or local file, waiting out
// 429 rate limits. The bot token never appears in logs or errors. It is the only importer
// of telebot.
package telegram

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	tele "gopkg.in/telebot.v3"

	"github.com/clawdis/clawdis/bus/subject"
	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/schemas"
	"github.com/clawdis/clawdis/services/internal/backoff"
	"github.com/clawdis/clawdis/services/provider"
)

// Defaults of Config.
const (
	DefaultAPIRoot         = "https://api.telegram.org"
	DefaultWebhookListen   = "127.0.0.1:8787"
	DefaultWebhookPath     = "/telegram-webhook"
	DefaultMediaMaxMB      = 5
	DefaultPollTimeout     = 25 * time.Second
	DefaultProbeInterval   = time.Minute
	DefaultConflictBackoff = 30 * time.Second
)

// apiTimeout bounds one Bot API call other than the long poll.
const apiTimeout = time.Minute

// Config configures a Bot. The zero value is an unconfigured bot (no token).
type Config struct {
	// Token is the bot token (telegram.botToken, or TELEGRAM_BOT_TOKEN which wins).
	// Empty: Run reports "unconfigured" and stops; Send answers provider.ErrNotConfigured.
	Token string
	// APIRoot is the Bot API server. Default https://api.telegram.org.
	APIRoot string
	// WebhookURL switches from long polling to a webhook: the public URL Telegram posts
	// updates to. Default "" (long polling).
	WebhookURL string
	// WebhookSecret is sent to Telegram with setWebhook and required in the
	// X-Telegram-Bot-Api-Secret-Token header of every webhook request. Default "" (none).
	WebhookSecret string
	// WebhookListen is the address the webhook server listens on. Default 127.0.0.1:8787.
	WebhookListen string
	// WebhookPath is the webhook's path. Default /telegram-webhook.
	WebhookPath string
	// Proxy is an http, https or socks5 proxy URL for the Bot API. Default none (the
	// environment's proxy settings apply). Ignored when HTTPClient is set.
	Proxy string
	// MediaMaxMB is the largest inbound media downloaded, in MiB. Default 5.
	MediaMaxMB int
	// MediaDir receives inbound media (normally <state>/media/inbound). Default "": media
	// is listed without being downloaded.
	MediaDir string
	// PollTimeout is the long-poll timeout of getUpdates. Default 25s.
	PollTimeout time.Duration
	// ProbeInterval is the time between background getMe probes. Default 1 minute.
	ProbeInterval time.Duration
	// ConflictBackoff is the wait before polling again after a 409 conflict (another
	// poller uses the token). Default 30s.
	ConflictBackoff time.Duration
	// HTTPClient makes the Bot API requests. Default a client of its own.
	HTTPClient *http.Client
	// Log receives the bot's logs (with component=telegram). Default discard.
	Log *slog.Logger
}

// Bot is the Telegram network.
type Bot struct {
	cfg       Config
	log       *slog.Logger
	client    *http.Client
	transport http.RoundTripper
	maxMedia  int64
	// sleep waits out poll backoffs and rate limits; tests replace it.
	sleep func(ctx context.Context, d time.Duration) error

	mu          sync.Mutex
	me          tele.User
	state       wire.ProviderState // the mode's state, without the probe's error
	probeErr    string
	lastProbe   *schemas.TelegramProbe // last getMe outcome, reported as the state's Probe
	webhookAddr string
}

var (
	_ provider.Network    = (*Bot)(nil)
	_ provider.StateNamer = (*Bot)(nil)
)

// New validates cfg and returns a Bot; it does no I/O.
func New(cfg Config) (*Bot, error) {
	if cfg.APIRoot == "" {
		cfg.APIRoot = DefaultAPIRoot
	}
	cfg.APIRoot = strings.TrimRight(cfg.APIRoot, "/")
	if u, err := url.Parse(cfg.APIRoot); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("telegram: APIRoot %q is not an http(s) URL", cfg.APIRoot)
	}
	if cfg.WebhookURL != "" {
		if u, err := url.Parse(cfg.WebhookURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("telegram: WebhookURL %q is not an http(s) URL", cfg.WebhookURL)
		}
	}
	if cfg.WebhookListen == "" {
		cfg.WebhookListen = DefaultWebhookListen
	}
	if cfg.WebhookPath == "" {
		cfg.WebhookPath = DefaultWebhookPath
	}
	if !strings.HasPrefix(cfg.WebhookPath, "/") {
		return nil, fmt.Errorf("telegram: WebhookPath %q must start with /", cfg.WebhookPath)
	}
	durations := []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"PollTimeout", &cfg.PollTimeout, DefaultPollTimeout},
		{"ProbeInterval", &cfg.ProbeInterval, DefaultProbeInterval},
		{"ConflictBackoff", &cfg.ConflictBackoff, DefaultConflictBackoff},
	}
	for _, d := range durations {
		if *d.v < 0 {
			return nil, fmt.Errorf("telegram: %s %s is negative", d.name, *d.v)
		}
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if cfg.PollTimeout < time.Second {
		return nil, fmt.Errorf("telegram: PollTimeout %s is below 1s (a hot loop)", cfg.PollTimeout)
	}
	switch {
	case cfg.MediaMaxMB < 0:
		return nil, fmt.Errorf("telegram: MediaMaxMB %d is negative", cfg.MediaMaxMB)
	case cfg.MediaMaxMB == 0:
		cfg.MediaMaxMB = DefaultMediaMaxMB
	}
	b := &Bot{cfg: cfg, maxMedia: int64(cfg.MediaMaxMB) << 20, sleep: backoff.Sleep}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	b.log = cfg.Log.With("component", subject.ServiceTelegram)
	if cfg.HTTPClient != nil {
		b.client = cfg.HTTPClient
	} else {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		if cfg.Proxy != "" {
			u, err := url.Parse(cfg.Proxy)
			if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "socks5") {
				return nil, errors.New("telegram: Proxy is not an http, https or socks5 URL")
			}
			tr.Proxy = http.ProxyURL(u)
		}
		b.client = &http.Client{Transport: tr}
	}
	b.transport = b.client.Transport
	if b.transport == nil {
		b.transport = http.DefaultTransport
	}
	return b, nil
}

// ID implements provider.Network.
func (b *Bot) ID() string { return subject.ServiceTelegram }

// CoreStates implements provider.StateNamer: "starting" before the first report, "error"
// while the core waits to restart the bot.
func (b *Bot) CoreStates() (initial, retrying string) {
	return schemas.TelegramStarting, schemas.TelegramError
}

// WebhookAddr is the address the webhook server listens on while it runs, else "".
func (b *Bot) WebhookAddr() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.webhookAddr
}

// Run implements provider.Network: getMe, then long polling or the webhook until ctx ends.
func (b *Bot) Run(ctx context.Context, sink provider.Sink) error {
	if b.cfg.Token == "" {
		sink.State(wire.ProviderState{State: schemas.TelegramUnconfigured})
		return &provider.TerminalError{State: schemas.TelegramUnconfigured, Err: provider.ErrNotConfigured}
	}
	b.setState(sink, func(st *wire.ProviderState) {
		*st = wire.ProviderState{State: schemas.TelegramStarting, Configured: true}
	})
	me, err := b.probe(ctx, sink)
	switch {
	case ctx.Err() != nil:
		return nil
	case unauthorized(err):
		return &provider.TerminalError{State: schemas.TelegramError, Err: errUnauthorized}
	case err != nil:
		return fmt.Errorf("telegram: getMe: %w", err)
	}
	b.mu.Lock()
	b.me = me
	b.probeErr = ""
	b.mu.Unlock()
	b.setState(sink, func(st *wire.ProviderState) { st.Self = "@" + me.Username })
	b.log.Info("telegram bot identified", "bot", "@"+me.Username, "bot_id", me.ID)

	probeCtx, stopProbe := context.WithCancel(ctx)
	probeDone := make(chan struct{})
	go func() {
		defer close(probeDone)
		b.probeLoop(probeCtx, sink)
	}()
	if b.cfg.WebhookURL != "" {
		err = b.runWebhook(ctx, sink)
	} else {
		err = b.runPolling(ctx, sink)
	}
	stopProbe()
	<-probeDone
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// setState changes the mode's state with fn and reports it, with the probe's error as
// LastError when the mode has none.
func (b *Bot) setState(sink provider.Sink, fn func(*wire.ProviderState)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	fn(&b.state)
	b.reportLocked(sink)
}

func (b *Bot) reportLocked(sink provider.Sink) {
	st := b.state
	st.Probe = b.lastProbe
	if st.LastError == "" {
		st.LastError = b.probeErr
	}
	sink.State(st)
}

// probe calls getMe, keeps the outcome as the state's Probe (shown in health) and reports
// it when it changed.
func (b *Bot) probe(ctx context.Context, sink provider.Sink) (tele.User, error) {
	start := time.Now()
	me, err := b.getMe(ctx)
	if ctx.Err() != nil {
		return me, err
	}
	p := &schemas.TelegramProbe{OK: err == nil, ElapsedMs: time.Since(start).Milliseconds()}
	if err != nil {
		msg := err.Error()
		p.Error = &msg
	} else {
		p.Bot = &schemas.TelegramBot{ID: me.ID, Username: me.Username}
	}
	b.mu.Lock()
	changed := b.lastProbe == nil || b.lastProbe.OK != p.OK
	b.lastProbe = p
	if changed {
		b.reportLocked(sink)
	}
	b.mu.Unlock()
	return me, err
}

// probeLoop calls getMe every ProbeInterval and reports a failing probe in LastError.
func (b *Bot) probeLoop(ctx context.Context, sink provider.Sink) {
	for {
		if backoff.Sleep(ctx, b.cfg.ProbeInterval) != nil {
			return
		}
		_, err := b.probe(ctx, sink)
		if ctx.Err() != nil {
			return
		}
		msg := ""
		if err != nil {
			msg = "getMe probe failed: " + err.Error()
			b.log.Warn("telegram getMe probe failed", "err", err)
		}
		b.mu.Lock()
		if msg != b.probeErr {
			b.probeErr = msg
			b.reportLocked(sink)
		}
		b.mu.Unlock()
	}
}
