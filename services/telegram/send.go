package telegram

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	tele "gopkg.in/telebot.v3"

	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/services/provider"
)

// Limits of outbound messages.
const (
	maxChunk      = 4000 // UTF-16 code units per text message (the API allows 4096)
	maxCaption    = 1024 // UTF-16 code units of a media caption
	maxRateWaits  = 3    // 429 answers waited out per message before giving up
	imageMaxBytes = 6 << 20
	avMaxBytes    = 16 << 20
	docMaxBytes   = 100 << 20
)

// recipient is a chat id or @channel as the Bot API takes it.
type recipient string

func (r recipient) Recipient() string { return string(r) }

var (
	chatIDPattern  = regexp.MustCompile(`^-?[0-9]{1,20}$`)
	channelPattern = regexp.MustCompile(`^@[A-Za-z][A-Za-z0-9_]{3,31}$`)
)

// normalizeRecipient accepts a chat id or @channel, with an optional "telegram:" prefix.
func normalizeRecipient(to string) (recipient, error) {
	s := strings.TrimSpace(to)
	s = strings.TrimPrefix(s, "telegram:")
	if chatIDPattern.MatchString(s) || channelPattern.MatchString(s) {
		return recipient(s), nil
	}
	return "", &provider.RecipientError{To: to, Reason: "not a Telegram chat id or @channel"}
}

// Send implements provider.Network. Text longer than 4000 characters goes out as several
// messages split at newlines or spaces, each tried as Markdown first and resent as plain
// text when Telegram cannot parse it. Media (http(s) URL or local file) goes first, with
// the text as its caption when it fits. The receipt names the first message.
func (b *Bot) Send(ctx context.Context, msg provider.Outbound) (provider.Receipt, error) {
	if b.cfg.Token == "" {
		return provider.Receipt{}, provider.ErrNotConfigured
	}
	to, err := normalizeRecipient(msg.To)
	if err != nil {
		return provider.Receipt{}, err
	}
	var first *tele.Message
	text := msg.Text
	if msg.MediaURL != "" {
		caption := ""
		if utf16Len(text) <= maxCaption {
			caption, text = text, ""
		}
		first, err = b.sendMedia(ctx, to, msg.MediaURL, caption)
		if err != nil {
			return provider.Receipt{}, b.sendError(msg.To, err)
		}
	}
	for _, chunk := range splitText(text, maxChunk) {
		m, err := b.sendText(ctx, to, chunk)
		if err != nil {
			return provider.Receipt{}, b.sendError(msg.To, err)
		}
		if first == nil {
			first = m
		}
	}
	if first == nil {
		return provider.Receipt{}, errors.New("telegram: nothing to send")
	}
	rc := provider.Receipt{MessageID: strconv.Itoa(first.ID)}
	if first.Chat != nil {
		rc.ChatID = strconv.FormatInt(first.Chat.ID, 10)
	}
	return rc, nil
}

// sendText sends one chunk as Markdown, and again as plain text when Telegram cannot parse
// its entities.
func (b *Bot) sendText(ctx context.Context, to recipient, text string) (*tele.Message, error) {
	m, err := b.withRetry(ctx, func(api *tele.Bot) (*tele.Message, error) {
		return api.Send(to, text, &tele.SendOptions{ParseMode: tele.ModeMarkdown})
	})
	if err == nil || !parseError(err) {
		return m, err
	}
	b.log.Debug("telegram markdown rejected; sending plain text", "chat_id", string(to))
	return b.withRetry(ctx, func(api *tele.Bot) (*tele.Message, error) {
		return api.Send(to, text)
	})
}

// sendMedia sends the media at ref (http(s) URL or local path) by its type with caption.
func (b *Bot) sendMedia(ctx context.Context, to recipient, ref, caption string) (*tele.Message, error) {
	file, mimeType, err := mediaFile(ref)
	if err != nil {
		return nil, err
	}
	var what tele.Sendable
	switch kind(mimeType) {
	case "photo":
		what = &tele.Photo{File: file, Caption: caption}
	case "video":
		what = &tele.Video{File: file, Caption: caption, FileName: fileName(ref), MIME: mimeType}
	case "voice":
		what = &tele.Voice{File: file, Caption: caption, MIME: mimeType}
	case "audio":
		what = &tele.Audio{File: file, Caption: caption, FileName: fileName(ref), MIME: mimeType}
	default:
		what = &tele.Document{File: file, Caption: caption, FileName: fileName(ref), MIME: mimeType}
	}
	send := func(opts ...any) func(api *tele.Bot) (*tele.Message, error) {
		return func(api *tele.Bot) (*tele.Message, error) { return api.Send(to, what, opts...) }
	}
	if caption == "" {
		return b.withRetry(ctx, send())
	}
	m, err := b.withRetry(ctx, send(&tele.SendOptions{ParseMode: tele.ModeMarkdown}))
	if err == nil || !parseError(err) {
		return m, err
	}
	return b.withRetry(ctx, send())
}

// mediaFile resolves ref to a telebot file and its MIME type, checking local files
// against the size limits of their type.
func mediaFile(ref string) (tele.File, string, error) {
	if u, err := url.Parse(ref); err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" {
		return tele.FromURL(ref), mime.TypeByExtension(path.Ext(u.Path)), nil
	}
	local := strings.TrimPrefix(ref, "file://")
	f, err := os.Open(local)
	if err != nil {
		return tele.File{}, "", wire.Invalid("media %s: %s", wire.Clip(ref), errors.Unwrap(err))
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || st.IsDir() {
		return tele.File{}, "", wire.Invalid("media %s is not a file", wire.Clip(ref))
	}
	head := make([]byte, 512)
	n, _ := io.ReadFull(f, head)
	mimeType := http.DetectContentType(head[:n])
	if ext := mime.TypeByExtension(filepath.Ext(local)); ext != "" &&
		(mimeType == "application/octet-stream" || strings.HasPrefix(mimeType, "text/plain")) {
		mimeType = ext
	}
	limit := int64(docMaxBytes)
	switch kind(mimeType) {
	case "photo":
		limit = imageMaxBytes
	case "video", "audio", "voice":
		limit = avMaxBytes
	}
	if st.Size() > limit {
		return tele.File{}, "", wire.Invalid("media %s is %d bytes, over the %d MiB limit for its type",
			wire.Clip(ref), st.Size(), limit>>20)
	}
	return tele.FromDisk(local), mimeType, nil
}

// kind is the Bot API send method for a MIME type.
func kind(mimeType string) string {
	mt, _, _ := mime.ParseMediaType(mimeType)
	switch {
	case mt == "image/jpeg" || mt == "image/png" || mt == "image/webp":
		return "photo"
	case strings.HasPrefix(mt, "video/"):
		return "video"
	case mt == "audio/ogg" || mt == "audio/opus":
		return "voice"
	case strings.HasPrefix(mt, "audio/"):
		return "audio"
	}
	return "document"
}

func fileName(ref string) string {
	if u, err := url.Parse(ref); err == nil && u.Host != "" {
		return path.Base(u.Path)
	}
	return filepath.Base(ref)
}

// withRetry calls fn, waiting out up to maxRateWaits 429 answers for their retry_after.
// telebot panics on some malformed answers; a panic becomes an error.
func (b *Bot) withRetry(ctx context.Context, fn func(*tele.Bot) (*tele.Message, error)) (*tele.Message, error) {
	for attempt := 0; ; attempt++ {
		m, err := b.call(ctx, fn)
		if err == nil && m == nil {
			err = errors.New("telegram: empty answer")
		}
		ae, isAPI := classify(err)
		if !isAPI || ae.code != http.StatusTooManyRequests || attempt >= maxRateWaits {
			return m, err
		}
		d := b.retryAfter(ae)
		b.log.Warn("telegram rate limited; waiting", "retry_in", d)
		if werr := b.sleep(ctx, d); werr != nil {
			return nil, fmt.Errorf("telegram: waiting out a rate limit: %w", werr)
		}
	}
}

func (b *Bot) call(ctx context.Context, fn func(*tele.Bot) (*tele.Message, error)) (m *tele.Message, err error) {
	ctx, cancel := context.WithTimeout(ctx, apiTimeout)
	defer cancel()
	defer func() {
		if p := recover(); p != nil {
			m, err = nil, fmt.Errorf("telegram: unexpected answer (telebot panicked: %v)", p)
		}
	}()
	m, err = fn(b.api(ctx))
	return m, b.redact(err)
}

// parseError reports Telegram's "can't parse entities" rejection of Markdown.
func parseError(err error) bool {
	ae, ok := classify(err)
	return ok && ae.code == http.StatusBadRequest && strings.Contains(ae.desc, "can't parse entities")
}

// sendError maps a failed send to the errors the core knows.
func (b *Bot) sendError(to string, err error) error {
	var werr *wire.Error
	if errors.As(err, &werr) {
		return werr
	}
	ae, isAPI := classify(err)
	switch {
	case !isAPI && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)):
		return err
	case !isAPI:
		return fmt.Errorf("%w: %s", provider.ErrNotConnected, err.Error())
	case ae.code == http.StatusBadRequest && (strings.Contains(ae.desc, "chat not found") ||
		strings.Contains(ae.desc, "chat_id is empty")):
		return &provider.RecipientError{To: to, Reason: ae.desc}
	case ae.code >= 500 || ae.code == http.StatusTooManyRequests:
		return fmt.Errorf("%w: %s", provider.ErrNotConnected, ae.desc)
	}
	return fmt.Errorf("telegram: %s (%d)", ae.desc, ae.code)
}

// Typing implements provider.Network: "typing" while on (Telegram shows it for ~5s);
// off needs no call.
func (b *Bot) Typing(ctx context.Context, chatID string, on bool) error {
	if b.cfg.Token == "" {
		return provider.ErrNotConfigured
	}
	to, err := normalizeRecipient(chatID)
	if err != nil || !on {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, apiTimeout)
	defer cancel()
	if err := b.redact(b.api(ctx).Notify(to, tele.Typing)); err != nil {
		return b.sendError(chatID, err)
	}
	return nil
}

// splitText splits text into chunks of at most limit UTF-16 code units, preferring to cut
// after a newline, then after whitespace; chunks that are only whitespace are dropped.
func splitText(text string, limit int) []string {
	var out []string
	for strings.TrimSpace(text) != "" {
		if utf16Len(text) <= limit {
			out = append(out, text)
			break
		}
		cut, units := 0, 0 // cut: byte index of the hard limit
		for cut < len(text) {
			r, w := utf8.DecodeRuneInString(text[cut:])
			if units += utf16.RuneLen(r); units > limit {
				break
			}
			cut += w
		}
		end := cut
		if i := strings.LastIndex(text[:cut], "\n"); i > 0 {
			end = i + 1
		} else if i := strings.LastIndexAny(text[:cut], " \t"); i > 0 {
			end = i + 1
		}
		if chunk := strings.TrimRight(text[:end], " \t\n"); chunk != "" {
			out = append(out, chunk)
		}
		text = text[end:]
	}
	return out
}

func utf16Len(s string) int {
	n := 0
	for _, r := range s {
		n += utf16.RuneLen(r)
	}
	return n
}

// retryAfter is the wait a 429 asks for (at least a second).
func (b *Bot) retryAfter(ae apiError) time.Duration {
	return time.Duration(max(ae.retryAfter, 1)) * time.Second
}
