package telegram

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	tele "gopkg.in/telebot.v3"

	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/schemas"
	"github.com/clawdis/clawdis/services/provider"
)

// Limits of the webhook server.
const (
	webhookMaxBody      = 1 << 20
	webhookShutdownWait = 5 * time.Second
)

// runWebhook registers the webhook with Telegram and serves it on our own http.Server at
// WebhookListen/WebhookPath until ctx ends. Requests without the configured secret get 403;
// an update is answered 200 only once it is stored, else 503 so that Telegram sends it
// again.
func (b *Bot) runWebhook(ctx context.Context, sink provider.Sink) error {
	ln, err := net.Listen("tcp", b.cfg.WebhookListen)
	if err != nil {
		return fmt.Errorf("telegram: webhook listen %s: %w", b.cfg.WebhookListen, err)
	}
	defer ln.Close()

	// telebot's Webhook registers the webhook; its own handler (which answers before the
	// update is handled) is not used, so nothing reads what it would deliver here.
	updates := make(chan tele.Update)
	hook := &tele.Webhook{
		SecretToken:    b.cfg.WebhookSecret,
		AllowedUpdates: []string{"message", "channel_post"},
		Endpoint:       &tele.WebhookEndpoint{PublicURL: b.cfg.WebhookURL},
	}
	if err := b.setWebhook(ctx, hook, updates); err != nil {
		if unauthorized(err) {
			return &provider.TerminalError{State: schemas.TelegramError, Err: errUnauthorized}
		}
		return fmt.Errorf("telegram: setWebhook: %w", err)
	}
	if b.cfg.WebhookSecret == "" {
		b.log.Warn("telegram webhook has no secret: anyone reaching it can inject updates")
	}

	mux := http.NewServeMux()
	mux.Handle(b.cfg.WebhookPath, b.webhookHandler(ctx, sink))
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(b.log.Handler(), slog.LevelDebug),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	b.mu.Lock()
	b.webhookAddr = ln.Addr().String()
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		b.webhookAddr = ""
		b.mu.Unlock()
	}()
	b.setState(sink, func(st *wire.ProviderState) {
		st.State, st.Connected, st.LastError = schemas.TelegramWebhook, true, ""
	})
	b.log.Info("telegram webhook serving", "addr", ln.Addr().String(), "path", b.cfg.WebhookPath)

	select {
	case err := <-served:
		return fmt.Errorf("telegram: webhook server: %w", err)
	case <-ctx.Done():
		b.shutdown(srv)
		<-served
		return nil
	}
}

// shutdown stops srv, letting the requests in progress finish within webhookShutdownWait
// (an update not answered 200 is sent again by Telegram).
func (b *Bot) shutdown(srv *http.Server) {
	ctx, cancel := context.WithTimeout(context.Background(), webhookShutdownWait)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		b.log.Warn("telegram webhook shutdown", "err", err)
		_ = srv.Close()
	}
}

// setWebhook registers hook with Telegram and binds its handler to updates. telebot's
// Webhook only learns its destination in Poll; with an empty Listen Poll calls setWebhook,
// binds, and returns once it read from stop, which is already filled, so the handler can
// be mounted on our own server (telebot's would ignore listen errors).
func (b *Bot) setWebhook(ctx context.Context, hook *tele.Webhook, updates chan tele.Update) error {
	var (
		mu     sync.Mutex
		setErr error
	)
	ctx, cancel := context.WithTimeout(ctx, apiTimeout)
	defer cancel()
	client := *b.client
	client.Transport = &ctxTransport{ctx: ctx, base: b.transport}
	bound, err := tele.NewBot(tele.Settings{
		URL: b.cfg.APIRoot, Token: b.cfg.Token, Updates: 1, Offline: true, Client: &client,
		OnError: func(err error, _ tele.Context) {
			mu.Lock()
			defer mu.Unlock()
			if setErr == nil {
				setErr = err
			}
		},
	})
	if err != nil {
		return fmt.Errorf("telegram: offline bot: %w", err)
	}
	stop := make(chan struct{}, 1)
	stop <- struct{}{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		hook.Poll(bound, updates, stop)
	}()
	<-done
	mu.Lock()
	defer mu.Unlock()
	return b.redact(setErr)
}

// webhookHandler checks the method and secret, hands the update to sink and answers 200
// once it is stored. It handles updates until ctx (the run's) ends.
func (b *Bot) webhookHandler(ctx context.Context, sink provider.Sink) http.Handler {
	secret := []byte(b.cfg.WebhookSecret)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		got := []byte(r.Header.Get("X-Telegram-Bot-Api-Secret-Token"))
		if len(secret) > 0 && subtle.ConstantTimeCompare(got, secret) != 1 {
			b.log.Warn("telegram webhook request with a wrong secret", "remote", r.RemoteAddr)
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		var u tele.Update
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, webhookMaxBody)).Decode(&u); err != nil {
			b.log.Debug("telegram webhook request without an update", "err", err)
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		if err := b.handleUpdate(ctx, sink, u); err != nil {
			b.log.Warn("telegram update not stored; Telegram will send it again", "update_id", u.ID, "err", err)
			http.Error(w, "not stored, try again", http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
}
