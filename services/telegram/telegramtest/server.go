// Package telegramtest is a fake Telegram Bot API speaking the real JSON: getMe, a
// getUpdates long poll fed by InjectMessage, sendMessage and the media sends, sendChatAction,
// setWebhook/deleteWebhook, getFile and file downloads. It can be told to fail a Markdown
// parse once, to answer 429 with retry_after once, to answer 409 conflicts and to reject
// the token. Tests await what the bot sent on channels; a fake container serves the same
// handler and is driven over /_fake/inject, /_fake/sent and /_fake/confirmed.
package telegramtest

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Defaults of the fake bot.
const (
	BotID       = 7000001
	BotUsername = "clawdis_test_bot"
)

// Server is the fake Bot API. Create it with New (started on a loopback httptest server)
// or NewUnstarted (an http.Handler to serve yourself).
type Server struct {
	// URL is the API root to pass as the adapter's APIRoot (set by New).
	URL string

	token string
	bot   User
	hs    *httptest.Server

	mu           sync.Mutex
	revoked      bool
	conflict     bool
	failMarkdown int
	retryAfter   int // seconds of the next 429, 0 for none
	updates      []Update
	nextUpdate   int
	nextMessage  int
	wake         chan struct{} // closed when an update arrives
	confirmed    int           // every update id below it was confirmed (a getUpdates offset)
	confirmWake  chan struct{} // closed when confirmed grows
	webhook      Webhook
	files        map[string][]byte // file id -> content
	calls        map[string]int    // method -> count
	sentLog      []Sent

	sent    chan Sent
	actions chan Action
	polls   chan int
}

// NewUnstarted returns a fake for token that is not listening: serve it yourself.
func NewUnstarted(token string) *Server {
	return &Server{
		token:       token,
		bot:         User{ID: BotID, IsBot: true, FirstName: "Clawdis Test", Username: BotUsername},
		nextUpdate:  1,
		nextMessage: 1,
		wake:        make(chan struct{}),
		confirmWake: make(chan struct{}),
		files:       map[string][]byte{},
		calls:       map[string]int{},
		sent:        make(chan Sent, 1024),
		actions:     make(chan Action, 1024),
		polls:       make(chan int, 4096),
	}
}

// New starts a fake for token on a loopback port; URL is its API root. Call Close.
func New(token string) *Server {
	s := NewUnstarted(token)
	s.hs = httptest.NewServer(s)
	s.URL = s.hs.URL
	return s
}

// Close stops a server started by New.
func (s *Server) Close() {
	if s.hs != nil {
		s.hs.CloseClientConnections()
		s.hs.Close()
	}
}

// Bot is the fake bot's own user.
func (s *Server) Bot() User { return s.bot }

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	switch {
	case strings.HasPrefix(path, "/_fake/"):
		s.serveControl(w, r)
	case strings.HasPrefix(path, "/file/bot"):
		s.serveFile(w, r, strings.TrimPrefix(path, "/file/bot"))
	case strings.HasPrefix(path, "/bot"):
		token, method, ok := strings.Cut(strings.TrimPrefix(path, "/bot"), "/")
		if !ok || !s.authorized(token) {
			reply(w, http.StatusUnauthorized, apiError(401, "Unauthorized", nil))
			return
		}
		params, err := readParams(r)
		if err != nil {
			reply(w, http.StatusBadRequest, apiError(400, "Bad Request: "+err.Error(), nil))
			return
		}
		s.mu.Lock()
		s.calls[method]++
		s.mu.Unlock()
		s.serveMethod(w, r, method, params)
	default:
		reply(w, http.StatusNotFound, apiError(404, "Not Found", nil))
	}
}

func (s *Server) authorized(token string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return token == s.token && !s.revoked
}

// params are a request's parameters with every value as a string, as the Bot API reads
// them; uploads are the multipart files.
type params struct {
	values  map[string]string
	uploads map[string]upload
}

type upload struct {
	name string
	size int64
}

// readParams reads JSON, multipart, form and query parameters.
func readParams(r *http.Request) (params, error) {
	p := params{values: map[string]string{}, uploads: map[string]upload{}}
	for k, v := range r.URL.Query() {
		p.values[k] = v[0]
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch ct {
	case "application/json":
		var m map[string]any
		if err := json.NewDecoder(r.Body).Decode(&m); err != nil && err != io.EOF {
			return p, fmt.Errorf("can't parse JSON: %w", err)
		}
		for k, v := range m {
			if str, ok := v.(string); ok {
				p.values[k] = str
			} else if v != nil {
				b, _ := json.Marshal(v)
				p.values[k] = string(b)
			}
		}
	case "multipart/form-data":
		// A part with a filename parameter (even an empty one, as telebot sends for
		// photos) is an upload.
		mr, err := r.MultipartReader()
		if err != nil {
			return p, fmt.Errorf("can't parse multipart: %w", err)
		}
		for {
			part, err := mr.NextPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				return p, fmt.Errorf("can't parse multipart: %w", err)
			}
			_, disp, _ := mime.ParseMediaType(part.Header.Get("Content-Disposition"))
			if fileName, isFile := disp["filename"]; isFile {
				n, err := io.Copy(io.Discard, part)
				if err != nil {
					return p, fmt.Errorf("can't read upload: %w", err)
				}
				p.uploads[disp["name"]] = upload{name: fileName, size: n}
				continue
			}
			b, err := io.ReadAll(io.LimitReader(part, 1<<20))
			if err != nil {
				return p, fmt.Errorf("can't read multipart value: %w", err)
			}
			p.values[disp["name"]] = string(b)
		}
	case "application/x-www-form-urlencoded":
		if err := r.ParseForm(); err != nil {
			return p, fmt.Errorf("can't parse form: %w", err)
		}
		for k, v := range r.PostForm {
			p.values[k] = v[0]
		}
	}
	return p, nil
}

// reply writes a Bot API answer.
func reply(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

type apiResult struct {
	OK          bool           `json:"ok"`
	Result      any            `json:"result,omitempty"`
	ErrorCode   int            `json:"error_code,omitempty"`
	Description string         `json:"description,omitempty"`
	Parameters  map[string]any `json:"parameters,omitempty"`
}

func ok(w http.ResponseWriter, result any) {
	reply(w, http.StatusOK, apiResult{OK: true, Result: result})
}

func apiError(code int, desc string, parameters map[string]any) apiResult {
	return apiResult{ErrorCode: code, Description: desc, Parameters: parameters}
}

func fail(w http.ResponseWriter, code int, desc string) {
	reply(w, code, apiError(code, desc, nil))
}

// resolveChat turns a chat_id parameter into a chat: positive ids are private chats,
// negative ids groups (-100… supergroups), @names channels.
func resolveChat(chatID string) (Chat, bool) {
	if name, ok := strings.CutPrefix(chatID, "@"); ok {
		if name == "" {
			return Chat{}, false
		}
		var h int64
		for _, c := range name {
			h = (h*31 + int64(c)) % 1_000_000_000
		}
		return Chat{ID: -1_000_000_000_000 - h, Type: "channel", Username: name, Title: name}, true
	}
	id, err := strconv.ParseInt(chatID, 10, 64)
	switch {
	case err != nil || id == 0:
		return Chat{}, false
	case id > 0:
		return Chat{ID: id, Type: "private", FirstName: "User"}, true
	case id < -1_000_000_000_000:
		return Chat{ID: id, Type: "supergroup", Title: "Group"}, true
	default:
		return Chat{ID: id, Type: "group", Title: "Group"}, true
	}
}

func now() int64 { return time.Now().Unix() }
