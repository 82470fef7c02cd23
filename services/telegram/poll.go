package telegram

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	tele "gopkg.in/telebot.v3"

	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/schemas"
	"github.com/clawdis/clawdis/services/internal/backoff"
	"github.com/clawdis/clawdis/services/provider"
)

// conflictError is the LastError while another poller holds the token.
const conflictError = "another poller uses this token (409 conflict)"

// allowedUpdates are the update kinds the bot asks for.
const allowedUpdates = `["message","channel_post"]`

// runPolling long-polls getUpdates until ctx ends. A 401 ends it with a *TerminalError; a
// 409 conflict shows as the error state and is retried after ConflictBackoff; a 429 waits
// its retry_after; other failures, and updates that could not be stored (asked for again
// from the offset of the first of them), back off from 1s to 30s. It never loops without
// waiting.
func (b *Bot) runPolling(ctx context.Context, sink provider.Sink) error {
	if err := b.deleteWebhook(ctx); err != nil {
		if unauthorized(err) {
			return &provider.TerminalError{State: schemas.TelegramError, Err: errUnauthorized}
		}
		return fmt.Errorf("telegram: deleteWebhook: %w", err)
	}
	polling := func(st *wire.ProviderState) {
		st.State, st.Connected, st.LastError = schemas.TelegramPolling, true, ""
	}
	b.setState(sink, polling)
	b.log.Info("telegram long polling started", "timeout", b.cfg.PollTimeout)
	offset, failures, storeFailures := 0, 0, 0
	// The wait after failing polls other than conflicts and rate limits.
	retry := backoff.Policy{Initial: time.Second, Max: 30 * time.Second}
	healthy := true
	for {
		// After a failure one short poll confirms the recovery at once; it is followed by
		// long polls again, so it cannot spin.
		timeout := b.cfg.PollTimeout
		if !healthy {
			timeout = 0
		}
		updates, err := b.getUpdates(ctx, offset, timeout)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			ae, isAPI := classify(err)
			var d time.Duration
			switch {
			case isAPI && ae.code == http.StatusUnauthorized:
				return &provider.TerminalError{State: schemas.TelegramError, Err: errUnauthorized}
			case isAPI && ae.code == http.StatusConflict:
				d = b.cfg.ConflictBackoff
				b.log.Warn("telegram getUpdates conflict: another poller uses this token",
					"retry_in", d, "description", ae.desc)
				b.setState(sink, func(st *wire.ProviderState) {
					st.State, st.Connected, st.LastError = schemas.TelegramError, false, conflictError
				})
			case isAPI && ae.code == http.StatusTooManyRequests:
				d = time.Duration(max(ae.retryAfter, 1)) * time.Second
				b.log.Warn("telegram getUpdates rate limited", "retry_in", d)
			default:
				failures++
				d = retry.Delay(failures, nil)
				b.log.Warn("telegram getUpdates failed", "retry_in", d, "err", err)
				b.setState(sink, func(st *wire.ProviderState) {
					st.State, st.Connected = schemas.TelegramError, false
					st.LastError = "getUpdates failed: " + err.Error()
				})
			}
			healthy = false
			if b.sleep(ctx, d) != nil {
				return nil
			}
			continue
		}
		failures = 0
		if !healthy {
			healthy = true
			b.log.Info("telegram long polling recovered")
			b.setState(sink, polling)
		}
		// The offset moves past an update only once it is stored: the next getUpdates
		// confirms to Telegram what is before the offset.
		for _, u := range updates {
			if err := b.handleUpdate(ctx, sink, u); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				storeFailures++
				d := retry.Delay(storeFailures, nil)
				b.log.Warn("telegram update not stored; asking Telegram for it again", "update_id", u.ID,
					"retry_in", d, "err", err)
				if b.sleep(ctx, d) != nil {
					return nil
				}
				break
			}
			offset, storeFailures = u.ID+1, 0
		}
	}
}

// getUpdates long-polls for the updates from offset on (timeout 0: answers at once).
func (b *Bot) getUpdates(ctx context.Context, offset int, timeout time.Duration) ([]tele.Update, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout+apiTimeout/2)
	defer cancel()
	data, err := b.api(ctx).Raw("getUpdates", map[string]string{
		"offset":          strconv.Itoa(offset),
		"timeout":         strconv.Itoa(int(timeout / time.Second)),
		"allowed_updates": allowedUpdates,
	})
	if err != nil {
		return nil, b.redact(err)
	}
	var resp struct {
		Result []tele.Update `json:"result"`
	}
	if err := json.Unmarshal(data, &resp); err != nil {
		return nil, fmt.Errorf("telegram: getUpdates: bad answer: %w", err)
	}
	return resp.Result, nil
}

// deleteWebhook removes a webhook left from webhook mode, which would make getUpdates
// answer 409.
func (b *Bot) deleteWebhook(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, apiTimeout)
	defer cancel()
	return b.redact(b.api(ctx).RemoveWebhook())
}
