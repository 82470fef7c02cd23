package whatsapp

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/clawdis/clawdis/services/provider"
	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"google.golang.org/protobuf/proto"
)

// Send delivers msg: text, or media (http(s) URL or local path) with the text as caption.
// Audio has no caption on WhatsApp, so the text follows as a second message; the receipt
// names the media message. Errors: *provider.RecipientError, provider.ErrNotLinked,
// provider.ErrNotConnected, ErrMediaTooLarge, ErrMediaUnavailable, or what WhatsApp said.
func (c *Client) Send(ctx context.Context, msg provider.Outbound) (provider.Receipt, error) {
	to, err := NormalizeRecipient(msg.To)
	if err != nil {
		return provider.Receipt{}, err
	}
	if msg.MediaURL == "" && strings.TrimSpace(msg.Text) == "" {
		return provider.Receipt{}, errors.New("whatsapp send: empty message")
	}
	wa, err := c.conn()
	if err != nil {
		return provider.Receipt{}, err
	}
	var out *waE2E.Message
	var followUp string
	if msg.MediaURL == "" {
		out = &waE2E.Message{Conversation: proto.String(msg.Text)}
	} else {
		m, err := c.loader.load(ctx, msg.MediaURL)
		if err != nil {
			return provider.Receipt{}, fmt.Errorf("whatsapp send: %w", err)
		}
		up, err := wa.Upload(ctx, m.data, uploadType(m.kind))
		if err != nil {
			return provider.Receipt{}, fmt.Errorf("whatsapp upload %s: %w", m.kind, err)
		}
		caption := msg.Text
		if m.kind == kindAudio {
			caption, followUp = "", msg.Text
		}
		out = mediaMessage(m, up, caption)
	}
	resp, err := wa.SendMessage(ctx, to, out)
	if err != nil {
		return provider.Receipt{}, sendError(err)
	}
	if strings.TrimSpace(followUp) != "" {
		if _, err := wa.SendMessage(ctx, to, &waE2E.Message{Conversation: proto.String(followUp)}); err != nil {
			c.log.Warn("sending the text after an audio message failed", "to", to.String(), "err", err)
		}
	}
	c.log.Debug("sent", "to", to.String(), "message_id", resp.ID)
	return provider.Receipt{MessageID: resp.ID, ToJID: to.String()}, nil
}

// sendError maps whatsmeow's "not connected" errors to provider.ErrNotConnected (the
// connection dropped between the check and the send) and names the operation otherwise.
func sendError(err error) error {
	if errors.Is(err, whatsmeow.ErrNotConnected) || errors.Is(err, whatsmeow.ErrNotLoggedIn) {
		return fmt.Errorf("%w: %w", provider.ErrNotConnected, err)
	}
	return fmt.Errorf("whatsapp send: %w", err)
}

// Typing turns the typing indicator in chatID on or off; on also marks the chat's unread
// inbound messages read. The account is shown as online while any chat is typing, so the
// indicator is visible, and offline again afterwards, so the phone keeps notifying.
func (c *Client) Typing(ctx context.Context, chatID string, on bool) error {
	jid, err := NormalizeRecipient(chatID)
	if err != nil {
		return err
	}
	wa, err := c.conn()
	if err != nil {
		return err
	}
	state := types.ChatPresencePaused
	if on {
		state = types.ChatPresenceComposing
	}
	if presence, change := c.typingChange(jid.String(), on); change {
		if err := wa.SendPresence(ctx, presence); err != nil && !errors.Is(err, whatsmeow.ErrNoPushName) {
			c.log.Debug("setting presence failed", "presence", string(presence), "err", err)
		}
	}
	var errs []error
	if err := wa.SendChatPresence(ctx, jid, state, types.ChatPresenceMediaText); err != nil {
		errs = append(errs, fmt.Errorf("whatsapp chat presence: %w", sendError(err)))
	}
	if on {
		for _, b := range c.reads.take(jid.String()) {
			if err := wa.MarkRead(ctx, b.ids, c.cfg.Now(), b.chat, b.sender); err != nil {
				errs = append(errs, fmt.Errorf("whatsapp mark read: %w", err))
			}
		}
	}
	return errors.Join(errs...)
}

// typingChange records chat's typing state and says whether the account's presence must
// change: available when the first chat starts typing, unavailable when the last stops.
func (c *Client) typingChange(chat string, on bool) (types.Presence, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	before := len(c.typing)
	if on {
		c.typing[chat] = true
	} else {
		delete(c.typing, chat)
	}
	switch after := len(c.typing); {
	case before == 0 && after > 0:
		return types.PresenceAvailable, true
	case before > 0 && after == 0:
		return types.PresenceUnavailable, true
	}
	return "", false
}
