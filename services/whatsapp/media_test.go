package whatsapp

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
)

// Minimal file heads that http.DetectContentType recognises.
var (
	jpegHead = []byte("\xFF\xD8\xFF\xE0\x00\x10JFIF\x00")
	pngHead  = []byte("\x89PNG\x0D\x0A\x1A\x0A\x00\x00\x00\x0DIHDR")
	pdfHead  = []byte("%PDF-1.7\n")
	mp4Head  = []byte("\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom")
	m4aHead  = []byte("\x00\x00\x00\x18ftypM4A \x00\x00\x00\x00M4A mp42")
	opusHead = append([]byte("OggS\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00\x01\x02\x03\x04\x00\x00\x00\x00\x00\x00\x00\x00\x01\x13"), "OpusHead\x01\x01"...)
	vorbHead = append([]byte("OggS\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00\x01\x02\x03\x04\x00\x00\x00\x00\x00\x00\x00\x00\x01\x1e"), "\x01vorbis"...)
	mp3Head  = []byte("ID3\x04\x00\x00\x00\x00\x00\x00")
	zipHead  = []byte("PK\x03\x04\x14\x00\x00\x00")
)

func TestSniffAndKind(t *testing.T) {
	for _, tt := range []struct {
		name     string
		head     []byte
		file     string
		mimeType string
		kind     string
	}{
		{"jpeg", jpegHead, "photo", "image/jpeg", kindImage},
		{"png with wrong extension", pngHead, "x.pdf", "image/png", kindImage},
		{"pdf", pdfHead, "report.pdf", "application/pdf", kindDocument},
		{"mp4 video", mp4Head, "clip.mp4", "video/mp4", kindVideo},
		{"m4a audio in an mp4 container", m4aHead, "song.m4a", "audio/mp4", kindAudio},
		{"ogg opus", opusHead, "voice", "audio/ogg", kindAudio},
		{"mp3", mp3Head, "song.mp3", "audio/mpeg", kindAudio},
		{"zip", zipHead, "a.zip", "application/zip", kindDocument},
		{"unknown bytes, opus extension", []byte{0x01, 0x02, 0x03}, "note.opus", "audio/ogg", kindAudio},
		{"unknown bytes, webp extension", []byte{0x01, 0x02, 0x03}, "s.webp", "image/webp", kindImage},
		{"unknown bytes, no extension", []byte{0x01, 0x02, 0x03}, "blob", "application/octet-stream", kindDocument},
		{"plain text", []byte("hello world"), "notes.txt", "text/plain", kindDocument},
		{"gif is a document", []byte("GIF89a\x01\x00"), "a.gif", "image/gif", kindDocument},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := sniffMIME(tt.head, tt.file)
			if got != tt.mimeType {
				t.Fatalf("sniffMIME = %q, want %q", got, tt.mimeType)
			}
			if k := kindOf(got); k != tt.kind {
				t.Errorf("kindOf(%q) = %q, want %q", got, k, tt.kind)
			}
		})
	}
	if !isOpus(opusHead) || isOpus(vorbHead) {
		t.Error("isOpus cannot tell Opus from Vorbis")
	}
}

// sized returns head padded with zeros to n bytes.
func sized(head []byte, n int) []byte {
	b := make([]byte, n)
	copy(b, head)
	return b
}

func TestLoadLocalMediaLimits(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		name    string
		file    string
		data    []byte
		kind    string
		ptt     bool
		tooBig  bool
		limitMB string
	}{
		{"image at the limit", "a.jpg", sized(jpegHead, limitImage), kindImage, false, false, ""},
		{"image over the limit", "b.jpg", sized(jpegHead, limitImage+1), kindImage, false, true, "6 MiB"},
		{"video over the limit", "c.mp4", sized(mp4Head, limitAV+1), kindVideo, false, true, "16 MiB"},
		{"voice note", "d.ogg", sized(opusHead, 4096), kindAudio, true, false, ""},
		{"vorbis is not a voice note", "e.ogg", sized(vorbHead, 4096), kindAudio, false, false, ""},
		{"audio over the limit", "f.mp3", sized(mp3Head, limitAV+1), kindAudio, false, true, "16 MiB"},
		{"document under the limit", "g.pdf", sized(pdfHead, limitImage+1), kindDocument, false, false, ""},
		{"tiny file", "h.pdf", pdfHead, kindDocument, false, false, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, tt.file)
			if err := os.WriteFile(path, tt.data, 0o600); err != nil {
				t.Fatal(err)
			}
			l := &mediaLoader{http: http.DefaultClient, timeout: waitTimeout}
			for _, ref := range []string{path, "file://" + path} {
				m, err := l.load(context.Background(), ref)
				if tt.tooBig {
					if !errors.Is(err, ErrMediaTooLarge) || !strings.Contains(err.Error(), tt.limitMB) {
						t.Fatalf("load(%s) = %v, want ErrMediaTooLarge naming %s", ref, err, tt.limitMB)
					}
					continue
				}
				if err != nil {
					t.Fatalf("load(%s): %v", ref, err)
				}
				if m.kind != tt.kind || m.ptt != tt.ptt || !bytes.Equal(m.data, tt.data) || m.fileName != tt.file {
					t.Errorf("load(%s) = kind %s ptt %v %d bytes name %q", ref, m.kind, m.ptt, len(m.data), m.fileName)
				}
			}
		})
	}
}

func TestLoadMediaErrors(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.jpg")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	l := &mediaLoader{http: http.DefaultClient, timeout: waitTimeout}
	for _, ref := range []string{filepath.Join(dir, "missing.jpg"), dir, empty, "ftp://example.com/a.jpg"} {
		if _, err := l.load(context.Background(), ref); !errors.Is(err, ErrMediaUnavailable) {
			t.Errorf("load(%q) = %v, want ErrMediaUnavailable", ref, err)
		}
	}
}

func TestLoadHTTPMedia(t *testing.T) {
	big := sized(jpegHead, limitImage+1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/photo.jpg":
			_, _ = w.Write(sized(jpegHead, 1000))
		case "/voice":
			_, _ = w.Write(sized(opusHead, 1000))
		case "/big-announced.jpg": // Content-Length says it all: refused before reading
			w.Header().Set("Content-Length", strconv.Itoa(len(big)))
			_, _ = w.Write(big)
		case "/big-chunked.jpg": // no length: the limit is enforced while reading
			w.Header().Set("Transfer-Encoding", "chunked")
			for off := 0; off < len(big); off += 64 << 10 {
				_, _ = w.Write(big[off:min(off+64<<10, len(big))])
				w.(http.Flusher).Flush()
			}
		case "/slow.jpg":
			_, _ = w.Write(jpegHead)
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	l := &mediaLoader{http: srv.Client(), timeout: waitTimeout}
	ctx := context.Background()

	m, err := l.load(ctx, srv.URL+"/photo.jpg?size=large")
	if err != nil || m.kind != kindImage || m.fileName != "photo.jpg" || len(m.data) != 1000 {
		t.Errorf("photo: %+v %v", m.kind, err)
	}
	m, err = l.load(ctx, srv.URL+"/voice")
	if err != nil || m.kind != kindAudio || !m.ptt {
		t.Errorf("voice: kind %s ptt %v err %v", m.kind, m.ptt, err)
	}
	for _, p := range []string{"/big-announced.jpg", "/big-chunked.jpg"} {
		if _, err := l.load(ctx, srv.URL+p); !errors.Is(err, ErrMediaTooLarge) {
			t.Errorf("%s: %v, want ErrMediaTooLarge", p, err)
		}
	}
	if _, err := l.load(ctx, srv.URL+"/missing.png"); !errors.Is(err, ErrMediaUnavailable) || !strings.Contains(err.Error(), "404") {
		t.Errorf("missing: %v, want ErrMediaUnavailable naming the status", err)
	}
	short := &mediaLoader{http: srv.Client(), timeout: 200 * time.Millisecond}
	if _, err := short.load(ctx, srv.URL+"/slow.jpg"); !errors.Is(err, ErrMediaUnavailable) {
		t.Errorf("slow: %v, want a timeout", err)
	}
}

func TestMediaMessage(t *testing.T) {
	up := whatsmeow.UploadResponse{URL: "https://mmg/x", DirectPath: "/v/x", MediaKey: []byte{1}, FileLength: 10}
	for _, tt := range []struct {
		name  string
		m     outMedia
		check func(*waE2E.Message) bool
	}{
		{"image", outMedia{kind: kindImage, mimeType: "image/png"}, func(msg *waE2E.Message) bool {
			im := msg.GetImageMessage()
			return im.GetCaption() == "cap" && im.GetMimetype() == "image/png" && im.GetDirectPath() == "/v/x" && im.GetFileLength() == 10
		}},
		{"video", outMedia{kind: kindVideo, mimeType: "video/mp4"}, func(msg *waE2E.Message) bool {
			return msg.GetVideoMessage().GetCaption() == "cap" && msg.GetVideoMessage().GetURL() == "https://mmg/x"
		}},
		{"voice note", outMedia{kind: kindAudio, mimeType: "audio/ogg", ptt: true}, func(msg *waE2E.Message) bool {
			am := msg.GetAudioMessage()
			return am.GetPTT() && am.GetMimetype() == "audio/ogg; codecs=opus"
		}},
		{"audio", outMedia{kind: kindAudio, mimeType: "audio/mpeg"}, func(msg *waE2E.Message) bool {
			am := msg.GetAudioMessage()
			return !am.GetPTT() && am.GetMimetype() == "audio/mpeg"
		}},
		{"document", outMedia{kind: kindDocument, mimeType: "application/pdf", fileName: "r.pdf"}, func(msg *waE2E.Message) bool {
			dm := msg.GetDocumentMessage()
			return dm.GetCaption() == "cap" && dm.GetFileName() == "r.pdf" && dm.GetMimetype() == "application/pdf"
		}},
		{"document without a name", outMedia{kind: kindDocument, mimeType: "application/pdf"}, func(msg *waE2E.Message) bool {
			return msg.GetDocumentMessage().GetFileName() == "file.pdf"
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if msg := mediaMessage(tt.m, up, "cap"); !tt.check(msg) {
				t.Errorf("mediaMessage = %v", msg)
			}
		})
	}
}

// fakeDownloader writes fixed bytes, or fails.
type fakeDownloader struct {
	data []byte
	err  error
}

func (f fakeDownloader) DownloadToFile(_ context.Context, _ whatsmeow.DownloadableMessage, file whatsmeow.File) error {
	if f.err != nil {
		_, _ = file.Write([]byte("partial"))
		return f.err
	}
	_, err := file.Write(f.data)
	return err
}

func TestMediaDirSave(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "media", "inbound")
	m := &mediaDir{dir: dir, dl: fakeDownloader{data: []byte("jpegbytes")}}
	att := attachment{msg: &waE2E.ImageMessage{}, mimeType: "image/jpeg"}
	p1, err := m.saveMedia(context.Background(), "image", att)
	if err != nil {
		t.Fatal(err)
	}
	p2, err := m.saveMedia(context.Background(), "image", att)
	if err != nil {
		t.Fatal(err)
	}
	if p1 == p2 || filepath.Dir(p1) != dir || filepath.Ext(p1) != ".jpg" {
		t.Errorf("paths %s, %s: want two distinct .jpg files in %s", p1, p2, dir)
	}
	st, err := os.Stat(p1)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("stat %s: %v %v, want mode 0600", p1, st, err)
	}
	if b, _ := os.ReadFile(p1); string(b) != "jpegbytes" {
		t.Errorf("content %q", b)
	}

	failing := &mediaDir{dir: dir, dl: fakeDownloader{err: io.ErrUnexpectedEOF}}
	if p, err := failing.saveMedia(context.Background(), "video", attachment{msg: &waE2E.VideoMessage{}, mimeType: "video/mp4"}); err == nil || p != "" {
		t.Fatalf("failed download = %q, %v; want an error and no path", p, err)
	}
	if huge, err := m.saveMedia(context.Background(), "document", attachment{msg: &waE2E.DocumentMessage{}, size: maxInboundMedia + 1}); !errors.Is(err, errMediaTooLarge) || huge != "" {
		t.Errorf("oversized = %q, %v", huge, err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 2 {
		t.Errorf("media dir holds %d files (%v), want only the two saved ones", len(entries), err)
	}
}

func TestMediaExt(t *testing.T) {
	for _, tt := range []struct{ mime, name, want string }{
		{"image/jpeg", "", ".jpg"},
		{"audio/ogg; codecs=opus", "", ".ogg"},
		{"application/pdf", "Report.PDF", ".pdf"},
		{"application/octet-stream", "evil.sh;rm -rf", ".bin"},
		{"application/x-unknown-thing", "", ".bin"},
		{"text/plain", "", ".txt"},
	} {
		if got := mediaExt(tt.mime, tt.name); got != tt.want {
			t.Errorf("mediaExt(%q, %q) = %q, want %q", tt.mime, tt.name, got, tt.want)
		}
	}
}
