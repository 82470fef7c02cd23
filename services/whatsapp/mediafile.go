package whatsapp

import (
	"context"
	"errors"
	"fmt"
	"mime"
	"os"
	"path/filepath"
	"strings"

	"go.mau.fi/whatsmeow"
)

// maxInboundMedia is the largest attachment downloaded; bigger ones are reported without a
// path.
const maxInboundMedia = 100 << 20

// errMediaTooLarge: an inbound attachment exceeds maxInboundMedia.
var errMediaTooLarge = errors.New("attachment larger than 100 MiB, not downloaded")

// downloader fetches a media part into a file (whatsmeow.Client.DownloadToFile).
type downloader interface {
	DownloadToFile(ctx context.Context, msg whatsmeow.DownloadableMessage, file whatsmeow.File) error
}

// mediaDir saves inbound attachments under dir with unique names, mode 0600.
type mediaDir struct {
	dir string
	dl  downloader
}

func (m *mediaDir) saveMedia(ctx context.Context, kind string, att attachment) (string, error) {
	if m.dir == "" {
		return "", errors.New("no media directory configured")
	}
	if att.size > maxInboundMedia {
		return "", errMediaTooLarge
	}
	if err := os.MkdirAll(m.dir, 0o700); err != nil {
		return "", fmt.Errorf("create media dir: %w", err)
	}
	// CreateTemp picks a unique name and creates the file with mode 0600.
	f, err := os.CreateTemp(m.dir, "wa-"+kind+"-*"+mediaExt(att.mimeType, att.fileName))
	if err != nil {
		return "", fmt.Errorf("create media file: %w", err)
	}
	path := f.Name()
	err = m.dl.DownloadToFile(ctx, att.msg, f)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close media file: %w", cerr)
	}
	if err != nil {
		_ = os.Remove(path)
		return "", fmt.Errorf("download %s: %w", kind, err)
	}
	return path, nil
}

// commonExt are the extensions of the usual WhatsApp media types (mime.ExtensionsByType
// would give the alphabetically first, like ".jfif" for JPEG).
var commonExt = map[string]string{
	"image/jpeg":      ".jpg",
	"image/png":       ".png",
	"image/webp":      ".webp",
	"image/gif":       ".gif",
	"video/mp4":       ".mp4",
	"video/3gpp":      ".3gp",
	"video/quicktime": ".mov",
	"audio/ogg":       ".ogg",
	"audio/mpeg":      ".mp3",
	"audio/mp4":       ".m4a",
	"audio/aac":       ".aac",
	"audio/amr":       ".amr",
	"application/pdf": ".pdf",
	"application/zip": ".zip",
	"text/plain":      ".txt",
}

// mediaExt picks a file extension: the document's own when it has one, else one for the
// MIME type, else ".bin".
func mediaExt(mimeType, fileName string) string {
	if ext := strings.ToLower(filepath.Ext(fileName)); validExt(ext) {
		return ext
	}
	base, _, _ := strings.Cut(mimeType, ";")
	base = strings.ToLower(strings.TrimSpace(base))
	if ext, ok := commonExt[base]; ok {
		return ext
	}
	if exts, err := mime.ExtensionsByType(base); err == nil && len(exts) > 0 && validExt(exts[0]) {
		return exts[0]
	}
	return ".bin"
}

// validExt accepts a short ".alnum" extension (the sender chooses file names).
func validExt(ext string) bool {
	if len(ext) < 2 || len(ext) > 10 || ext[0] != '.' {
		return false
	}
	for _, c := range ext[1:] {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}
