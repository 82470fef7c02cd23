package telegram

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"unicode"

	tele "gopkg.in/telebot.v3"

	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/services/provider"
)

// handleUpdate hands the message of u, if any, with its media downloaded, to sink and
// returns once it is stored. An error means it is not: Telegram must not be told the
// update was handled (offset, webhook answer), so that it delivers it again. An update
// without a message is handled by ignoring it.
func (b *Bot) handleUpdate(ctx context.Context, sink provider.Sink, u tele.Update) error {
	m := u.Message
	if m == nil {
		m = u.ChannelPost
	}
	if m == nil || m.Chat == nil {
		b.log.Debug("telegram update without a message ignored", "update_id", u.ID)
		return nil
	}
	b.mu.Lock()
	me := b.me
	b.mu.Unlock()
	msg := wire.InboundMessage{
		MessageID: strconv.Itoa(m.ID),
		ChatID:    strconv.FormatInt(m.Chat.ID, 10),
		ChatType:  "group",
		Text:      m.Text,
		Ts:        m.Unixtime * 1000,
	}
	if m.Chat.Type == tele.ChatPrivate {
		msg.ChatType = "direct"
	}
	if msg.Text == "" {
		msg.Text = m.Caption
	}
	switch {
	case m.Sender != nil:
		msg.From = strconv.FormatInt(m.Sender.ID, 10)
		msg.FromName = displayName(m.Sender)
	case m.SenderChat != nil:
		msg.From, msg.FromName = strconv.FormatInt(m.SenderChat.ID, 10), m.SenderChat.Title
	default:
		msg.From, msg.FromName = msg.ChatID, m.Chat.Title
	}
	if me.Username != "" {
		msg.Self = "@" + me.Username
		msg.Mentioned = mentions(msg.Text, me.Username) || mentionsUser(m, me.ID) ||
			(m.ReplyTo != nil && m.ReplyTo.Sender != nil && m.ReplyTo.Sender.ID == me.ID)
	}
	msg.Media = b.media(ctx, m)
	if msg.Text == "" && len(msg.Media) == 0 {
		b.log.Debug("telegram message without text or media ignored", "chat_id", msg.ChatID)
		return nil
	}
	if err := sink.Inbound(ctx, msg); err != nil {
		return fmt.Errorf("telegram: update %d: %w", u.ID, err)
	}
	return nil
}

func displayName(u *tele.User) string {
	name := strings.TrimSpace(u.FirstName + " " + u.LastName)
	if name == "" && u.Username != "" {
		name = "@" + u.Username
	}
	return name
}

// mentions reports whether text contains @username as a whole word (case-insensitive).
func mentions(text, username string) bool {
	lower, want := strings.ToLower(text), "@"+strings.ToLower(username)
	for i := 0; ; {
		j := strings.Index(lower[i:], want)
		if j < 0 {
			return false
		}
		end := i + j + len(want)
		if end == len(lower) || !isNameRune(rune(lower[end])) {
			return true
		}
		i = end
	}
}

func isNameRune(r rune) bool { return r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) }

// mentionsUser reports a text_mention entity of the bot (a mention without a username).
func mentionsUser(m *tele.Message, id int64) bool {
	for _, es := range []tele.Entities{m.Entities, m.CaptionEntities} {
		for _, e := range es {
			if e.Type == tele.EntityTMention && e.User != nil && e.User.ID == id {
				return true
			}
		}
	}
	return false
}

// attachment is one media file of a message.
type attachment struct {
	kind, mime, fileID string
	size               int64
}

// media lists the message's media and downloads each into MediaDir (at most MediaMaxMB);
// Path stays empty when it was not downloaded.
func (b *Bot) media(ctx context.Context, m *tele.Message) []wire.InboundMedia {
	var atts []attachment
	switch {
	case m.Photo != nil:
		atts = append(atts, attachment{"image", "image/jpeg", m.Photo.FileID, m.Photo.FileSize})
	case m.Video != nil:
		atts = append(atts, attachment{"video", m.Video.MIME, m.Video.FileID, m.Video.FileSize})
	case m.Animation != nil:
		atts = append(atts, attachment{"video", m.Animation.MIME, m.Animation.FileID, m.Animation.FileSize})
	case m.Audio != nil:
		atts = append(atts, attachment{"audio", m.Audio.MIME, m.Audio.FileID, m.Audio.FileSize})
	case m.Voice != nil:
		atts = append(atts, attachment{"audio", m.Voice.MIME, m.Voice.FileID, m.Voice.FileSize})
	case m.Document != nil:
		atts = append(atts, attachment{"document", m.Document.MIME, m.Document.FileID, m.Document.FileSize})
	case m.Sticker != nil:
		atts = append(atts, attachment{"sticker", "image/webp", m.Sticker.FileID, m.Sticker.FileSize})
	}
	var out []wire.InboundMedia
	for i, a := range atts {
		im := wire.InboundMedia{Type: a.kind, MimeType: a.mime}
		name := fmt.Sprintf("telegram-%d-%d-%d", m.Chat.ID, m.ID, i)
		p, err := b.download(ctx, a, name)
		switch {
		case err != nil:
			b.log.Warn("telegram media not downloaded", "chat_id", m.Chat.ID, "message_id", m.ID, "err", err)
		default:
			im.Path = p
		}
		out = append(out, im)
	}
	return out
}

var errTooLarge = errors.New("larger than MediaMaxMB")

// download saves the file into MediaDir as name plus an extension and returns its path
// ("" without error when MediaDir is not set).
func (b *Bot) download(ctx context.Context, a attachment, name string) (string, error) {
	if b.cfg.MediaDir == "" || a.fileID == "" {
		return "", nil
	}
	if a.size > b.maxMedia {
		return "", fmt.Errorf("%d bytes: %w", a.size, errTooLarge)
	}
	ctx, cancel := context.WithTimeout(ctx, apiTimeout)
	defer cancel()
	api := b.api(ctx)
	f := tele.File{FileID: a.fileID}
	body, err := api.File(&f)
	if err != nil {
		return "", fmt.Errorf("get file: %w", b.redact(err))
	}
	defer body.Close()
	if f.FileSize > b.maxMedia {
		return "", fmt.Errorf("%d bytes: %w", f.FileSize, errTooLarge)
	}
	ext := path.Ext(f.FilePath)
	if ext == "" {
		if exts, _ := mime.ExtensionsByType(a.mime); len(exts) > 0 {
			ext = exts[0]
		}
	}
	if err := os.MkdirAll(b.cfg.MediaDir, 0o700); err != nil {
		return "", fmt.Errorf("media dir: %w", err)
	}
	dst := filepath.Join(b.cfg.MediaDir, name+ext)
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return "", fmt.Errorf("create media file: %w", err)
	}
	n, err := io.Copy(out, io.LimitReader(body, b.maxMedia+1))
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	switch {
	case err != nil:
		err = fmt.Errorf("download: %w", b.redact(err))
	case n > b.maxMedia:
		err = fmt.Errorf("download: %w", errTooLarge)
	}
	if err != nil {
		_ = os.Remove(dst)
		return "", err
	}
	return dst, nil
}
