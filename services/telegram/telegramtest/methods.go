package telegramtest

import (
	"fmt"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
)

// Error descriptions of the real Bot API.
const (
	DescParseEntities = "Bad Request: can't parse entities: Can't find end of the entity starting at byte offset 0"
	DescConflict      = "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"
	DescWebhookActive = "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first"
	DescChatNotFound  = "Bad Request: chat not found"
)

// maxText is the Bot API's limit on a message text, in UTF-16 code units.
const maxText = 4096

// mediaMethods maps the media send methods to their media field.
var mediaMethods = map[string]string{
	"sendPhoto":    "photo",
	"sendDocument": "document",
	"sendVideo":    "video",
	"sendAudio":    "audio",
	"sendVoice":    "voice",
}

func (s *Server) serveMethod(w http.ResponseWriter, r *http.Request, method string, p params) {
	switch method {
	case "getMe":
		ok(w, s.bot)
	case "getUpdates":
		s.getUpdates(w, r, p)
	case "sendMessage":
		s.send(w, method, "", p)
	case "sendChatAction":
		if _, found := resolveChat(p.values["chat_id"]); !found {
			fail(w, 400, DescChatNotFound)
			return
		}
		select {
		case s.actions <- Action{ChatID: p.values["chat_id"], Action: p.values["action"]}:
		default: // nobody awaits actions
		}
		ok(w, true)
	case "setWebhook":
		s.mu.Lock()
		s.webhook = Webhook{URL: p.values["url"], Secret: p.values["secret_token"]}
		s.mu.Unlock()
		ok(w, true)
	case "deleteWebhook":
		s.mu.Lock()
		s.webhook = Webhook{}
		s.mu.Unlock()
		ok(w, true)
	case "getWebhookInfo":
		s.mu.Lock()
		info := map[string]any{"url": s.webhook.URL, "pending_update_count": len(s.updates)}
		s.mu.Unlock()
		ok(w, info)
	case "getFile":
		s.getFile(w, p.values["file_id"])
	default:
		if field, isMedia := mediaMethods[method]; isMedia {
			s.send(w, method, field, p)
			return
		}
		fail(w, http.StatusNotFound, "Not Found")
	}
}

// getUpdates answers the pending updates from offset on, waiting up to timeout seconds
// for one to arrive.
func (s *Server) getUpdates(w http.ResponseWriter, r *http.Request, p params) {
	offset, _ := strconv.Atoi(p.values["offset"])
	timeout, _ := strconv.Atoi(p.values["timeout"])
	limit, _ := strconv.Atoi(p.values["limit"])
	if limit <= 0 || limit > 100 {
		limit = 100
	}
	s.mu.Lock()
	n := s.calls["getUpdates"]
	s.mu.Unlock()
	select {
	case s.polls <- n:
	default:
	}
	deadline := time.NewTimer(time.Duration(timeout) * time.Second)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		switch {
		case s.conflict:
			s.mu.Unlock()
			fail(w, http.StatusConflict, DescConflict)
			return
		case s.webhook.URL != "":
			s.mu.Unlock()
			fail(w, http.StatusConflict, DescWebhookActive)
			return
		}
		if offset > s.confirmed {
			s.confirmed = offset
			close(s.confirmWake)
			s.confirmWake = make(chan struct{})
		}
		if offset > 0 { // confirms the updates before offset
			keep := s.updates[:0]
			for _, u := range s.updates {
				if u.UpdateID >= offset {
					keep = append(keep, u)
				}
			}
			s.updates = keep
		}
		if len(s.updates) > 0 || timeout <= 0 {
			batch := append([]Update{}, s.updates[:min(limit, len(s.updates))]...)
			s.mu.Unlock()
			ok(w, batch)
			return
		}
		wake := s.wake
		s.mu.Unlock()
		select {
		case <-wake:
		case <-deadline.C:
			timeout = 0
		case <-r.Context().Done():
			return
		}
	}
}

// send answers sendMessage and the media sends with a proper Message.
func (s *Server) send(w http.ResponseWriter, method, field string, p params) {
	chatID := p.values["chat_id"]
	chat, found := resolveChat(chatID)
	if !found {
		fail(w, 400, DescChatNotFound)
		return
	}
	rec := Sent{Method: method, ChatID: chatID, Chat: chat.ID, Text: p.values["text"],
		Caption: p.values["caption"], ParseMode: p.values["parse_mode"]}
	if field != "" {
		if up, isUpload := p.uploads[field]; isUpload {
			rec.Media, rec.MediaSize = "upload:"+up.name, up.size
		} else {
			rec.Media = p.values[field]
		}
	}
	switch {
	case field == "" && strings.TrimSpace(rec.Text) == "":
		fail(w, 400, "Bad Request: message text is empty")
		return
	case field != "" && rec.Media == "":
		fail(w, 400, "Bad Request: there is no "+field+" in the request")
		return
	case len(utf16.Encode([]rune(rec.Text))) > maxText:
		fail(w, 400, "Bad Request: message is too long")
		return
	}
	s.mu.Lock()
	if strings.HasPrefix(rec.ParseMode, "Markdown") && s.failMarkdown > 0 {
		s.failMarkdown--
		s.mu.Unlock()
		fail(w, 400, DescParseEntities)
		return
	}
	if retry := s.retryAfter; retry > 0 {
		s.retryAfter = 0
		s.mu.Unlock()
		reply(w, http.StatusTooManyRequests, apiError(429,
			fmt.Sprintf("Too Many Requests: retry after %d", retry), map[string]any{"retry_after": retry}))
		return
	}
	rec.MessageID = s.nextMessage
	s.nextMessage++
	s.sentLog = append(s.sentLog, rec)
	s.mu.Unlock()

	bot := s.bot
	msg := Message{MessageID: rec.MessageID, From: &bot, Date: now(), Chat: chat, Text: rec.Text, Caption: rec.Caption}
	if field != "" {
		f := Document{FileID: fmt.Sprintf("%s-%d", field, rec.MessageID),
			FileUniqueID: fmt.Sprintf("u%d", rec.MessageID), FileSize: rec.MediaSize}
		if strings.HasPrefix(rec.Media, "upload:") {
			f.FileName = strings.TrimPrefix(rec.Media, "upload:")
		} else {
			f.FileName = path.Base(rec.Media)
		}
		switch field {
		case "photo":
			msg.Photo = []PhotoSize{{FileID: f.FileID, FileUniqueID: f.FileUniqueID, Width: 1, Height: 1, FileSize: f.FileSize}}
		case "video":
			msg.Video = &f
		case "audio":
			msg.Audio = &f
		case "voice":
			msg.Voice = &f
		default:
			msg.Document = &f
		}
	}
	select {
	case s.sent <- rec:
	default: // nobody awaits sends; they stay in SentMessages
	}
	ok(w, msg)
}

// getFile answers the file registered with AddFile.
func (s *Server) getFile(w http.ResponseWriter, id string) {
	s.mu.Lock()
	content, found := s.files[id]
	s.mu.Unlock()
	if !found {
		fail(w, 400, "Bad Request: invalid file_id")
		return
	}
	ok(w, File{FileID: id, FileUniqueID: "u" + id, FileSize: int64(len(content)), FilePath: "files/" + id})
}

// serveFile serves /file/bot<token>/files/<id>.
func (s *Server) serveFile(w http.ResponseWriter, r *http.Request, rest string) {
	token, filePath, _ := strings.Cut(rest, "/")
	if !s.authorized(token) {
		http.Error(w, "Unauthorized", http.StatusUnauthorized)
		return
	}
	id := strings.TrimPrefix(filePath, "files/")
	s.mu.Lock()
	content, found := s.files[id]
	s.mu.Unlock()
	if !found || r.Method != http.MethodGet {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(content)))
	_, _ = w.Write(content)
}
