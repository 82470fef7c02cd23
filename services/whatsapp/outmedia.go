package whatsapp

import (
	"bufio"
	"bytes"
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
	"strings"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"google.golang.org/protobuf/proto"
)

// Outbound media kinds and their size limits (SPEC §6.5).
const (
	kindImage    = "image"
	kindVideo    = "video"
	kindAudio    = "audio"
	kindDocument = "document"

	limitImage    = 6 << 20
	limitAV       = 16 << 20
	limitDocument = 100 << 20
)

// Errors of loading outbound media.
var (
	// ErrMediaTooLarge: the media exceeds the limit of its kind; the message names it.
	ErrMediaTooLarge = errors.New("media too large")
	// ErrMediaUnavailable: the media URL or path could not be read.
	ErrMediaUnavailable = errors.New("media unavailable")
)

// limitFor is the size limit of a media kind.
func limitFor(kind string) int64 {
	switch kind {
	case kindImage:
		return limitImage
	case kindVideo, kindAudio:
		return limitAV
	default:
		return limitDocument
	}
}

// extTypes are extension fallbacks for what content sniffing cannot tell apart.
var extTypes = map[string]string{
	".opus": "audio/ogg",
	".ogg":  "audio/ogg",
	".oga":  "audio/ogg",
	".m4a":  "audio/mp4",
	".aac":  "audio/aac",
	".amr":  "audio/amr",
	".mp3":  "audio/mpeg",
	".mp4":  "video/mp4",
	".m4v":  "video/mp4",
	".3gp":  "video/3gpp",
	".mov":  "video/quicktime",
	".jpg":  "image/jpeg",
	".jpeg": "image/jpeg",
	".png":  "image/png",
	".webp": "image/webp",
	".pdf":  "application/pdf",
}

// sniffMIME decides the MIME type of media from its first bytes (http.DetectContentType)
// and falls back to the file name's extension when sniffing finds nothing specific or
// cannot tell audio from video in the same container.
func sniffMIME(head []byte, name string) string {
	sniffed, _, _ := strings.Cut(http.DetectContentType(head), ";")
	if sniffed == "application/ogg" {
		sniffed = "audio/ogg"
	}
	ext := strings.ToLower(path.Ext(name))
	byExt := extTypes[ext]
	if byExt == "" && ext != "" {
		byExt, _, _ = strings.Cut(mime.TypeByExtension(ext), ";")
	}
	if byExt == "" {
		return sniffed
	}
	switch {
	case sniffed == "application/octet-stream", sniffed == "text/plain":
		return byExt
	case sniffed == "video/mp4" && strings.HasPrefix(byExt, "audio/"),
		sniffed == "video/webm" && strings.HasPrefix(byExt, "audio/"):
		return byExt
	}
	return sniffed
}

// kindOf maps a MIME type to how WhatsApp shows it: types it plays or displays inline are
// images, videos and audio; everything else is sent as a document.
func kindOf(mimeType string) string {
	switch mimeType {
	case "image/jpeg", "image/png", "image/webp":
		return kindImage
	case "video/mp4", "video/3gpp", "video/quicktime":
		return kindVideo
	case "audio/ogg", "audio/mpeg", "audio/mp4", "audio/aac", "audio/amr":
		return kindAudio
	}
	return kindDocument
}

// isOpus reports whether an Ogg stream carries Opus (its first page holds "OpusHead").
func isOpus(head []byte) bool { return bytes.Contains(head, []byte("OpusHead")) }

// outMedia is outbound media, read and classified.
type outMedia struct {
	data     []byte
	mimeType string
	kind     string
	fileName string
	ptt      bool // an Ogg/Opus voice note
}

// mediaLoader reads outbound media from an http(s) URL or a local path.
type mediaLoader struct {
	http    *http.Client
	timeout time.Duration
}

// load reads ref, classifies it and enforces its kind's size limit while reading.
func (l *mediaLoader) load(ctx context.Context, ref string) (outMedia, error) {
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	r, name, size, err := l.open(ctx, ref)
	if err != nil {
		return outMedia{}, fmt.Errorf("%w: %w", ErrMediaUnavailable, err)
	}
	defer func() { _ = r.Close() }()

	br := bufio.NewReaderSize(r, 512)
	head, err := br.Peek(512)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, bufio.ErrBufferFull) {
		return outMedia{}, fmt.Errorf("%w: read %s: %w", ErrMediaUnavailable, ref, err)
	}
	if len(head) == 0 {
		return outMedia{}, fmt.Errorf("%w: %s is empty", ErrMediaUnavailable, ref)
	}
	m := outMedia{mimeType: sniffMIME(head, name), fileName: name}
	m.kind = kindOf(m.mimeType)
	m.ptt = m.mimeType == "audio/ogg" && isOpus(head)
	limit := limitFor(m.kind)
	if size > limit {
		return outMedia{}, tooLarge(m.kind, limit)
	}
	m.data, err = io.ReadAll(io.LimitReader(br, limit+1))
	if err != nil {
		return outMedia{}, fmt.Errorf("%w: read %s: %w", ErrMediaUnavailable, ref, err)
	}
	if int64(len(m.data)) > limit {
		return outMedia{}, tooLarge(m.kind, limit)
	}
	return m, nil
}

func tooLarge(kind string, limit int64) error {
	return fmt.Errorf("%w: %s media is limited to %d MiB", ErrMediaTooLarge, kind, limit>>20)
}

// open returns the content of ref, its file name and its size (-1 if unknown).
func (l *mediaLoader) open(ctx context.Context, ref string) (io.ReadCloser, string, int64, error) {
	u, err := url.Parse(ref)
	scheme := ""
	if err == nil && len(u.Scheme) > 1 { // a one-letter "scheme" is a Windows drive
		scheme = strings.ToLower(u.Scheme)
	}
	switch scheme {
	case "http", "https":
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, ref, nil)
		if err != nil {
			return nil, "", 0, fmt.Errorf("media request: %w", err)
		}
		resp, err := l.http.Do(req)
		if err != nil {
			return nil, "", 0, fmt.Errorf("fetch media: %w", err)
		}
		if resp.StatusCode < 200 || resp.StatusCode > 299 {
			_ = resp.Body.Close()
			return nil, "", 0, fmt.Errorf("fetch media: HTTP %s", resp.Status)
		}
		name := path.Base(u.Path)
		if name == "/" || name == "." {
			name = ""
		}
		return resp.Body, name, resp.ContentLength, nil
	case "file":
		ref = u.Path
	case "":
	default:
		return nil, "", 0, fmt.Errorf("unsupported media URL scheme %q (http, https or a local path)", u.Scheme)
	}
	f, err := os.Open(ref)
	if err != nil {
		return nil, "", 0, fmt.Errorf("open media: %w", err)
	}
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		_ = f.Close()
		if err == nil {
			err = fmt.Errorf("%s is not a regular file", ref)
		}
		return nil, "", 0, fmt.Errorf("open media: %w", err)
	}
	return f, filepath.Base(ref), st.Size(), nil
}

// mediaMessage builds the message for uploaded media, with caption as its text.
func mediaMessage(m outMedia, up whatsmeow.UploadResponse, caption string) *waE2E.Message {
	var capt *string
	if caption != "" {
		capt = proto.String(caption)
	}
	switch m.kind {
	case kindImage:
		return &waE2E.Message{ImageMessage: &waE2E.ImageMessage{
			Caption: capt, Mimetype: proto.String(m.mimeType),
			URL: proto.String(up.URL), DirectPath: proto.String(up.DirectPath), MediaKey: up.MediaKey,
			FileEncSHA256: up.FileEncSHA256, FileSHA256: up.FileSHA256, FileLength: proto.Uint64(up.FileLength),
		}}
	case kindVideo:
		return &waE2E.Message{VideoMessage: &waE2E.VideoMessage{
			Caption: capt, Mimetype: proto.String(m.mimeType),
			URL: proto.String(up.URL), DirectPath: proto.String(up.DirectPath), MediaKey: up.MediaKey,
			FileEncSHA256: up.FileEncSHA256, FileSHA256: up.FileSHA256, FileLength: proto.Uint64(up.FileLength),
		}}
	case kindAudio:
		mt := m.mimeType
		if m.ptt {
			mt = "audio/ogg; codecs=opus"
		}
		return &waE2E.Message{AudioMessage: &waE2E.AudioMessage{
			Mimetype: proto.String(mt), PTT: proto.Bool(m.ptt),
			URL: proto.String(up.URL), DirectPath: proto.String(up.DirectPath), MediaKey: up.MediaKey,
			FileEncSHA256: up.FileEncSHA256, FileSHA256: up.FileSHA256, FileLength: proto.Uint64(up.FileLength),
		}}
	default:
		name := m.fileName
		if name == "" {
			name = "file" + mediaExt(m.mimeType, "")
		}
		return &waE2E.Message{DocumentMessage: &waE2E.DocumentMessage{
			Caption: capt, Mimetype: proto.String(m.mimeType), FileName: proto.String(name), Title: proto.String(name),
			URL: proto.String(up.URL), DirectPath: proto.String(up.DirectPath), MediaKey: up.MediaKey,
			FileEncSHA256: up.FileEncSHA256, FileSHA256: up.FileSHA256, FileLength: proto.Uint64(up.FileLength),
		}}
	}
}

// uploadType is whatsmeow's media type for a kind.
func uploadType(kind string) whatsmeow.MediaType {
	switch kind {
	case kindImage:
		return whatsmeow.MediaImage
	case kindVideo:
		return whatsmeow.MediaVideo
	case kindAudio:
		return whatsmeow.MediaAudio
	default:
		return whatsmeow.MediaDocument
	}
}
