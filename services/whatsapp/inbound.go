package whatsapp

import (
	"context"
	"strings"

	"github.com/clawdis/clawdis/bus/wire"
	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
)

// Chat types of wire.InboundMessage.
const (
	chatDirect = "direct"
	chatGroup  = "group"
)

// lidResolver finds the phone-number JID behind a hidden-user (…@lid) JID. The store's
// Device.LIDs implements it; it answers types.EmptyJID when the mapping is unknown.
type lidResolver interface {
	GetPNForLID(ctx context.Context, lid types.JID) (types.JID, error)
}

// mediaSaver downloads one inbound attachment and returns the file it was saved to.
type mediaSaver interface {
	saveMedia(ctx context.Context, kind string, att attachment) (string, error)
}

// attachment is a downloadable media part of a message.
type attachment struct {
	msg      whatsmeow.DownloadableMessage
	mimeType string
	fileName string // documents only
	size     uint64 // as announced by the sender; 0 if unknown
}

// self is the linked account as the converter needs it.
type self struct {
	PN  types.JID // phone-number JID, non-AD
	LID types.JID // hidden-user JID, non-AD; may be empty
}

// converter turns whatsmeow message events into inbound messages.
type converter struct {
	self  self
	lids  lidResolver
	media mediaSaver
	// warn reports a problem that does not stop the conversion (a failed download, an
	// unresolvable sender); nil ignores them.
	warn func(msg string, args ...any)
}

// convert returns the inbound message for evt, or ok=false when the event is not one the
// gateway reports: no text and no media (reactions, receipts, protocol messages), edits,
// status updates and broadcasts, newsletters, and the owner's own messages outside the
// owner's own chat.
func (c *converter) convert(ctx context.Context, evt *events.Message) (msg wire.InboundMessage, ok bool) {
	info := evt.Info
	if evt.Message == nil || evt.IsEdit {
		return msg, false
	}
	switch info.Chat.Server {
	case types.BroadcastServer, types.NewsletterServer:
		return msg, false
	}
	group := info.Chat.Server == types.GroupServer
	toSelf := false
	if info.IsFromMe {
		if group || !c.isSelf(ctx, info.Chat) {
			return msg, false
		}
		toSelf = true
	}
	text, atts, mentions := content(evt.Message)
	if text == "" && len(atts) == 0 {
		return msg, false
	}
	msg = wire.InboundMessage{
		MessageID: info.ID,
		ChatID:    c.chatID(ctx, info),
		ChatType:  chatDirect,
		From:      c.sender(ctx, info),
		FromName:  info.PushName,
		Self:      e164(c.self.PN),
		ToSelf:    toSelf,
		Text:      text,
		Ts:        info.Timestamp.UnixMilli(),
	}
	if info.Timestamp.IsZero() {
		msg.Ts = 0
	}
	if group {
		msg.ChatType = chatGroup
		msg.Mentioned = c.mentioned(mentions)
	}
	for _, a := range atts {
		kind := a.kind
		m := wire.InboundMedia{Type: kind, MimeType: a.mimeType}
		if c.media != nil {
			path, err := c.media.saveMedia(ctx, kind, a.attachment)
			if err != nil {
				c.warnf("inbound media download failed", "message_id", info.ID, "type", kind, "err", err)
			}
			m.Path = path
		}
		msg.Media = append(msg.Media, m)
	}
	if msg.Text == "" && len(msg.Media) > 0 {
		msg.Text = "<media:" + msg.Media[0].Type + ">"
	}
	return msg, true
}

func (c *converter) warnf(msg string, args ...any) {
	if c.warn != nil {
		c.warn(msg, args...)
	}
}

// isSelf reports whether jid is the linked account (by phone number or LID).
func (c *converter) isSelf(ctx context.Context, jid types.JID) bool {
	jid = jid.ToNonAD()
	switch jid.Server {
	case types.DefaultUserServer:
		return jid.User == c.self.PN.User
	case types.HiddenUserServer:
		if !c.self.LID.IsEmpty() {
			return jid.User == c.self.LID.User
		}
		pn := c.resolve(ctx, jid)
		return pn.User == c.self.PN.User
	}
	return false
}

// resolve maps a LID JID to its phone-number JID; it returns jid unchanged when it is not a
// LID or the mapping is unknown.
func (c *converter) resolve(ctx context.Context, jid types.JID) types.JID {
	jid = jid.ToNonAD()
	if jid.Server != types.HiddenUserServer {
		return jid
	}
	if !c.self.LID.IsEmpty() && jid.User == c.self.LID.User {
		return c.self.PN
	}
	if c.lids == nil {
		return jid
	}
	pn, err := c.lids.GetPNForLID(ctx, jid)
	if err != nil || pn.IsEmpty() {
		if err != nil {
			c.warnf("resolving LID failed", "lid", jid.String(), "err", err)
		}
		return jid
	}
	return pn.ToNonAD()
}

// sender is the sender's E.164 number: from the message's alternate address when it is a
// phone number, else through the LID map; an unresolvable LID is reported as the LID JID
// (which never matches an E.164 allowlist entry).
func (c *converter) sender(ctx context.Context, info types.MessageInfo) string {
	if info.IsFromMe {
		return e164(c.self.PN)
	}
	s := info.Sender.ToNonAD()
	if s.Server == types.HiddenUserServer && info.SenderAlt.Server == types.DefaultUserServer {
		return e164(info.SenderAlt.ToNonAD())
	}
	return e164(c.resolve(ctx, s))
}

// chatID is where a reply goes: the group JID, or for a direct chat the peer's phone-number
// JID when it can be resolved (else the LID JID, which whatsmeow can also send to).
func (c *converter) chatID(ctx context.Context, info types.MessageInfo) string {
	chat := info.Chat.ToNonAD()
	if chat.Server != types.HiddenUserServer {
		return chat.String()
	}
	if !info.IsFromMe && info.SenderAlt.Server == types.DefaultUserServer && info.Sender.ToNonAD() == chat {
		return info.SenderAlt.ToNonAD().String()
	}
	if info.IsFromMe && info.RecipientAlt.Server == types.DefaultUserServer {
		return info.RecipientAlt.ToNonAD().String()
	}
	return c.resolve(ctx, chat).String()
}

// mentioned reports whether any mentioned JID is the linked account.
func (c *converter) mentioned(jids []string) bool {
	for _, s := range jids {
		jid, err := types.ParseJID(s)
		if err != nil {
			continue
		}
		jid = jid.ToNonAD()
		switch {
		case jid.Server == types.DefaultUserServer && jid.User == c.self.PN.User:
			return true
		case jid.Server == types.HiddenUserServer && !c.self.LID.IsEmpty() && jid.User == c.self.LID.User:
			return true
		}
	}
	return false
}

// typedAttachment is an attachment with its inbound media type.
type typedAttachment struct {
	attachment
	kind string
}

// content extracts the text (or caption), the attachments and the mentioned JIDs of m.
func content(m *waE2E.Message) (text string, atts []typedAttachment, mentions []string) {
	var ctxs []*waE2E.ContextInfo
	add := func(kind string, a attachment, caption string, ci *waE2E.ContextInfo) {
		atts = append(atts, typedAttachment{attachment: a, kind: kind})
		if text == "" {
			text = caption
		}
		ctxs = append(ctxs, ci)
	}
	switch {
	case m.GetConversation() != "":
		text = m.GetConversation()
	case m.GetExtendedTextMessage() != nil:
		text = m.GetExtendedTextMessage().GetText()
		ctxs = append(ctxs, m.GetExtendedTextMessage().GetContextInfo())
	}
	if im := m.GetImageMessage(); im != nil {
		add("image", attachment{msg: im, mimeType: im.GetMimetype(), size: im.GetFileLength()}, im.GetCaption(), im.GetContextInfo())
	}
	if vm := m.GetVideoMessage(); vm != nil {
		add("video", attachment{msg: vm, mimeType: vm.GetMimetype(), size: vm.GetFileLength()}, vm.GetCaption(), vm.GetContextInfo())
	}
	if am := m.GetAudioMessage(); am != nil {
		add("audio", attachment{msg: am, mimeType: am.GetMimetype(), size: am.GetFileLength()}, "", am.GetContextInfo())
	}
	if dm := m.GetDocumentMessage(); dm != nil {
		add("document", attachment{msg: dm, mimeType: dm.GetMimetype(), fileName: dm.GetFileName(), size: dm.GetFileLength()}, dm.GetCaption(), dm.GetContextInfo())
	}
	if sm := m.GetStickerMessage(); sm != nil {
		add("sticker", attachment{msg: sm, mimeType: sm.GetMimetype(), size: sm.GetFileLength()}, "", sm.GetContextInfo())
	}
	for _, ci := range ctxs {
		mentions = append(mentions, ci.GetMentionedJID()...)
	}
	return strings.TrimSpace(text), atts, mentions
}
