package provider

import (
	"context"
	"encoding/json"
	"errors"
	"strings"

	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/schemas"
	"github.com/clawdis/clawdis/services/internal/idem"
)

// okReply answers typing requests.
var okReply = json.RawMessage(`{"ok":true}`)

// handleSend delivers one message once per idempotency key (SPEC §6.5): a repeat gets the
// remembered result, a concurrent repeat waits for the first delivery.
func (c *Core) handleSend(ctx context.Context, data []byte) (any, error) {
	var p schemas.SendParams
	if err := wire.DecodeParams(data, &p, "send params"); err != nil {
		return nil, err
	}
	switch {
	case strings.TrimSpace(p.IdempotencyKey) == "":
		return nil, wire.Invalid("idempotencyKey required")
	case strings.TrimSpace(p.To) == "":
		return nil, wire.Invalid("to required")
	case strings.TrimSpace(p.Message) == "" && strings.TrimSpace(p.MediaURL) == "":
		return nil, wire.Invalid("message required")
	case p.Provider != "" && p.Provider != c.id:
		return nil, wire.Invalid("provider %q sent to the %s provider", wire.Clip(p.Provider), c.id)
	}
	r, err := c.sends.Do(ctx, p.IdempotencyKey, func() idem.Result { return c.deliver(ctx, p) })
	switch {
	case r.OK:
		if err != nil {
			c.log.Error("send idempotency record not stored: a repeat will send again", "err", err)
		}
		return json.RawMessage(r.Payload), nil
	case r.Error != nil:
		if err != nil {
			c.log.Warn("send idempotency record not stored", "err", err)
		}
		return nil, r.Error
	default: // nothing sent: the records could not be read, or ctx ended while a repeat ran
		return nil, wire.Unavailable(true, "%s send not done: %s", c.id, err.Error())
	}
}

// deliver runs Network.Send and turns its outcome into an idempotency result.
func (c *Core) deliver(ctx context.Context, p schemas.SendParams) idem.Result {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.SendTimeout)
	defer cancel()
	rc, err := c.cfg.Network.Send(ctx, Outbound{To: p.To, Text: p.Message, MediaURL: p.MediaURL})
	if err != nil {
		werr := c.wireError("send", err)
		c.log.Warn("send failed", "to", p.To, "code", werr.Code, "retryable", werr.Retryable, "err", err)
		return idem.Result{Error: werr}
	}
	payload, err := json.Marshal(schemas.SendResult{
		RunID:     p.IdempotencyKey,
		MessageID: rc.MessageID,
		Provider:  c.id,
		ToJID:     rc.ToJID,
		ChatID:    rc.ChatID,
	})
	if err != nil {
		return idem.Result{Error: wire.Unavailable(false, "%s send: encode result: %s", c.id, err.Error())}
	}
	c.log.Info("message sent", "to", p.To, "message_id", rc.MessageID)
	return idem.Result{OK: true, Payload: payload}
}

// handleTyping shows or clears the typing indicator.
func (c *Core) handleTyping(ctx context.Context, data []byte) (any, error) {
	var req wire.TypingRequest
	if err := wire.DecodeParams(data, &req, "typing request"); err != nil {
		return nil, err
	}
	if strings.TrimSpace(req.ChatID) == "" {
		return nil, wire.Invalid("chatId required")
	}
	ctx, cancel := context.WithTimeout(ctx, DefaultTypingTimeout)
	defer cancel()
	if err := c.cfg.Network.Typing(ctx, req.ChatID, req.On); err != nil {
		c.log.Debug("typing failed", "chat_id", req.ChatID, "err", err)
		return nil, c.wireError("typing", err)
	}
	return okReply, nil
}

// wireError maps a Network error to the protocol error of SPEC §6.5. A *wire.Error from
// the network passes unchanged.
func (c *Core) wireError(op string, err error) *wire.Error {
	var (
		werr *wire.Error
		rerr *RecipientError
	)
	switch {
	case errors.As(err, &werr):
		return werr
	case errors.Is(err, ErrNotLinked):
		return &wire.Error{Code: wire.CodeNotLinked, Message: c.id + " not linked"}
	case errors.Is(err, ErrNotConfigured):
		return wire.Unavailable(false, "%s not configured", c.id)
	case errors.Is(err, ErrNotConnected):
		return wire.Unavailable(true, "%s not connected: %s", c.id, networkText(err))
	case errors.As(err, &rerr):
		return wire.Invalid("%s", rerr.Error())
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return wire.Unavailable(true, "%s %s interrupted: %s", c.id, op, networkText(err))
	default:
		return wire.Unavailable(false, "%s %s failed: %s", c.id, op, networkText(err))
	}
}

// maxNetworkText bounds the text of a network's error in a reply: it may repeat the
// recipient or the media reference the client sent (SPEC §5.2 allows 200 characters).
const maxNetworkText = 200

// networkText is err's text, clipped.
func networkText(err error) string { return wire.ClipTo(err.Error(), maxNetworkText) }
