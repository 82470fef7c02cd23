package agent

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/schemas"
)

func TestNormalizeThinking(t *testing.T) {
	tests := []struct {
		in           string
		level        string
		explicit, ok bool
	}{
		{"", "", false, true},
		{"default", "", false, true},
		{"off", "off", true, true},
		{"minimal", "minimal", true, true},
		{"think", "minimal", true, true},
		{"low", "low", true, true},
		{"medium", "medium", true, true},
		{"harder", "medium", true, true},
		{"high", "high", true, true},
		{"ultrathink", "high", true, true},
		{" MAX ", "high", true, true},
		{"extreme", "", false, false},
		{"on", "", false, false},
	}
	for _, tt := range tests {
		level, explicit, ok := normalizeThinking(tt.in)
		if level != tt.level || explicit != tt.explicit || ok != tt.ok {
			t.Errorf("normalizeThinking(%q) = %q %v %v, want %q %v %v", tt.in, level, explicit, ok, tt.level, tt.explicit, tt.ok)
		}
	}
}

func TestConfigValidation(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string // part of the error; "" = valid
	}{
		{"zero", Config{}, ""},
		{"command", Config{Backend: BackendCommand, Command: []string{"agent"}}, ""},
		{"command without argv", Config{Backend: BackendCommand}, "Command is required"},
		{"openai without model", Config{Backend: BackendOpenAI}, "OpenAI.Model is required"},
		{"unknown backend", Config{Backend: "claude"}, `unknown Backend "claude"`},
		{"bad base URL", Config{Backend: BackendOpenAI, OpenAI: OpenAIConfig{Model: "m", BaseURL: "localhost:11434"}}, "not an http(s) URL"},
		{"negative timeout", Config{Timeout: -time.Second}, "Timeout"},
		{"negative concurrency", Config{MaxConcurrent: -1}, "MaxConcurrent"},
		{"bad thinking default", Config{ThinkingDefault: "lots"}, "ThinkingDefault"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.cfg.withDefaults()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("error %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			case tt.want == "":
				if got.Timeout != DefaultTimeout || got.MaxConcurrent != 4 || got.MainKey != "main" ||
					got.HistoryLimit != 40 || got.ThinkingDefault != "off" || got.OpenAI.BaseURL != DefaultOpenAIBaseURL ||
					got.OpenAI.APIKeyEnv != "OPENAI_API_KEY" || got.Getenv == nil || got.Now == nil || got.HTTPClient == nil {
					t.Fatalf("defaults not applied: %+v", got)
				}
			}
		})
	}
}

// TestThrottle: deltas go out at most every interval; one held back goes out when due.
func TestThrottle(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	type step struct {
		offer  bool // offer (text changed) or due (timer fired)
		ms     int
		send   bool
		waitMs int
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"first goes out at once", []step{{true, 0, true, 0}}},
		{"spaced offers all go out", []step{{true, 0, true, 0}, {true, 100, true, 0}, {true, 250, true, 0}}},
		{"early offer held back", []step{{true, 0, true, 0}, {true, 30, false, 70}, {true, 60, false, 40}, {false, 100, true, 0}}},
		{"timer without pending sends nothing", []step{{true, 0, true, 0}, {false, 150, false, 0}}},
		{"timer fired early waits again", []step{{true, 0, true, 0}, {true, 10, false, 90}, {false, 95, false, 5}, {false, 100, true, 0}}},
		{"after a held-back delta the spacing restarts", []step{{true, 0, true, 0}, {true, 50, false, 50}, {false, 100, true, 0}, {true, 120, false, 80}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			th := throttle{every: 100 * time.Millisecond}
			for i, s := range tt.steps {
				var send bool
				var wait time.Duration
				if s.offer {
					send, wait = th.offer(at(s.ms))
				} else {
					send, wait = th.due(at(s.ms))
				}
				if send != s.send || wait != time.Duration(s.waitMs)*time.Millisecond {
					t.Fatalf("step %d at %dms: send %v wait %s, want %v %dms", i, s.ms, send, wait, s.send, s.waitMs)
				}
			}
		})
	}
}

func TestCompleteUTF8(t *testing.T) {
	euro := "€" // 3 bytes
	tests := []struct {
		in   string
		want int
	}{
		{"", 0},
		{"abc", 3},
		{"a" + euro, 4},
		{"a" + euro[:1], 1},
		{"a" + euro[:2], 1},
		{"a\x80", 2}, // a stray continuation byte is passed on
		{"a\xff", 2}, // so is an invalid byte
		{"😀"[:3], 0}, // 4-byte rune cut short
		{euro + "😀"[:1], 3},
	}
	for _, tt := range tests {
		if got := completeUTF8([]byte(tt.in)); got != tt.want {
			t.Errorf("completeUTF8(%q) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

// TestStreamWriterSplitsRunes: a rune split across writes reaches one output whole.
func TestStreamWriterSplitsRunes(t *testing.T) {
	out := make(chan output, 8)
	w := &streamWriter{out: out, reply: newReplyBuffer(1<<10, 1<<12)}
	for _, p := range []string{"a€"[:2], "a€"[2:], "b"} {
		_, _ = w.Write([]byte(p))
	}
	w.flush()
	close(out)
	var got []string
	for o := range out {
		got = append(got, o.Text)
	}
	if strings.Join(got, "|") != "a|€|b" {
		t.Fatalf("outputs = %q", got)
	}
}

func TestTailBuffer(t *testing.T) {
	tb := &tailBuffer{max: 32}
	for i := range 20 {
		_, _ = tb.Write([]byte("line " + string(rune('a'+i)) + "\n\n"))
	}
	if got := tb.lastLines(3); got != "line r\nline s\nline t" {
		t.Fatalf("lastLines = %q", got)
	}
	if len(tb.buf) > 32 {
		t.Fatalf("kept %d bytes", len(tb.buf))
	}
}

func TestDeliveryTarget(t *testing.T) {
	last := wire.Session{LastChannel: "whatsapp", LastTo: "+43"}
	tests := []struct {
		channel, to  string
		sess         wire.Session
		provider, rc string
	}{
		{"", "", last, "whatsapp", "+43"},
		{"last", "+44", last, "whatsapp", "+44"},
		{"telegram", "", last, "", ""},
		{"telegram", "99", last, "telegram", "99"},
		{"whatsapp", "", last, "whatsapp", "+43"},
		{"webchat", "+43", last, "", ""},
		{"last", "+43", wire.Session{LastChannel: "webchat"}, "", ""},
		{"", "", wire.Session{}, "", ""},
	}
	for _, tt := range tests {
		p, rc := deliveryTarget(tt.channel, tt.to, tt.sess)
		if p != tt.provider || rc != tt.rc {
			t.Errorf("deliveryTarget(%q, %q, %+v) = %q %q, want %q %q", tt.channel, tt.to, tt.sess, p, rc, tt.provider, tt.rc)
		}
	}
}

func TestImageParts(t *testing.T) {
	png := base64.StdEncoding.EncodeToString(pngBytes)
	big := base64.StdEncoding.EncodeToString(make([]byte, MaxAttachmentBytes+1))
	limit := base64.StdEncoding.EncodeToString(make([]byte, MaxAttachmentBytes))
	tests := []struct {
		name string
		att  schemas.ChatAttachment
		want string // error part; "" = accepted
	}{
		{"png", schemas.ChatAttachment{Type: "image", MimeType: "image/png", Content: png}, ""},
		{"data URL", schemas.ChatAttachment{Type: "image", MimeType: "image/png", Content: "data:image/png;base64," + png}, ""},
		{"at the limit", schemas.ChatAttachment{Type: "image", MimeType: "image/jpeg", Content: limit}, ""},
		{"over the limit", schemas.ChatAttachment{Type: "image", MimeType: "image/jpeg", FileName: "big.jpg", Content: big},
			"attachment 1 (big.jpg): larger than 5000000 bytes"},
		{"pdf", schemas.ChatAttachment{Type: "file", MimeType: "application/pdf", FileName: "cat.pdf", Content: "JVBERi0="},
			"attachment 1 (cat.pdf): only images are supported"},
		{"image type, pdf mime", schemas.ChatAttachment{Type: "image", MimeType: "application/pdf", Content: "JVBERi0="},
			"attachment 1: only images are supported"},
		{"bad base64", schemas.ChatAttachment{Type: "image", MimeType: "image/png", Content: "%%%"},
			"attachment 1: content is not valid base64"},
		{"empty", schemas.ChatAttachment{Type: "image", MimeType: "image/png"}, "attachment 1: content is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parts, err := imageParts([]schemas.ChatAttachment{tt.att})
			if tt.want == "" {
				if err != nil || len(parts) != 1 || parts[0].Type != "image" || parts[0].MimeType != tt.att.MimeType {
					t.Fatalf("parts %+v, err %v", parts, err)
				}
				return
			}
			var werr *wire.Error
			if !errors.As(err, &werr) || werr.Code != wire.CodeInvalidRequest || !strings.Contains(werr.Message, tt.want) {
				t.Fatalf("err = %v, want INVALID_REQUEST containing %q", err, tt.want)
			}
		})
	}
}
