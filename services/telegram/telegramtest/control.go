package telegramtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
)

// InjectMessage queues m as a "message" update for getUpdates (waking a waiting long poll)
// and returns it with MessageID and Date filled in when they were zero.
func (s *Server) InjectMessage(m Message) Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m.MessageID == 0 {
		m.MessageID = s.nextMessage
		s.nextMessage++
	}
	if m.Date == 0 {
		m.Date = now()
	}
	s.injectLocked(Update{Message: &m})
	return m
}

// InjectUpdate queues u (its UpdateID assigned when zero) and returns the update id.
func (s *Server) InjectUpdate(u Update) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.injectLocked(u)
}

func (s *Server) injectLocked(u Update) int {
	if u.UpdateID == 0 {
		u.UpdateID = s.nextUpdate
	}
	s.nextUpdate = max(s.nextUpdate, u.UpdateID) + 1
	s.updates = append(s.updates, u)
	close(s.wake)
	s.wake = make(chan struct{})
	return u.UpdateID
}

// WaitConfirmed waits until the bot confirmed every update injected so far (asked for
// updates from an offset past them), as a bot does once it has handled them, or ctx ends.
func (s *Server) WaitConfirmed(ctx context.Context) error {
	for {
		s.mu.Lock()
		done, wake := s.confirmed >= s.nextUpdate, s.confirmWake
		s.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return fmt.Errorf("telegramtest: updates not confirmed: %w", ctx.Err())
		}
	}
}

// DirectText builds a private text message from user id to the bot.
func DirectText(userID int64, text string) Message {
	return Message{
		From: &User{ID: userID, FirstName: "Ada", Username: "ada"},
		Chat: Chat{ID: userID, Type: "private", FirstName: "Ada"},
		Text: text,
	}
}

// GroupText builds a group text message from user id in group chatID.
func GroupText(chatID, userID int64, text string) Message {
	return Message{
		From: &User{ID: userID, FirstName: "Ada", Username: "ada"},
		Chat: Chat{ID: chatID, Type: "supergroup", Title: "Group"},
		Text: text,
	}
}

// AddFile registers content for getFile and the file download and returns its file id.
func (s *Server) AddFile(content []byte) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := fmt.Sprintf("file%d", len(s.files)+1)
	s.files[id] = content
	return id
}

// SetConflict makes getUpdates answer 409 as when another poller uses the token.
func (s *Server) SetConflict(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.conflict = on
}

// FailMarkdownOnce makes the next send with a Markdown parse_mode fail with "can't parse
// entities".
func (s *Server) FailMarkdownOnce() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failMarkdown++
}

// RateLimitOnce makes the next send answer 429 with parameters.retry_after seconds.
func (s *Server) RateLimitOnce(retryAfter int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.retryAfter = retryAfter
}

// Revoke makes every request answer 401 Unauthorized, as for a revoked token.
func (s *Server) Revoke() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.revoked = true
}

// Webhook is the registered webhook (zero when none).
func (s *Server) Webhook() Webhook {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.webhook
}

// Calls is the number of requests of method so far.
func (s *Server) Calls(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[method]
}

// Sent delivers every accepted send (buffer 1024; when full, sends are only logged).
func (s *Server) Sent() <-chan Sent { return s.sent }

// SentMessages is every accepted send so far, in order.
func (s *Server) SentMessages() []Sent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Sent(nil), s.sentLog...)
}

// Actions delivers every sendChatAction call.
func (s *Server) Actions() <-chan Action { return s.actions }

// Polls delivers the running count of getUpdates calls as each one arrives.
func (s *Server) Polls() <-chan int { return s.polls }

// WaitSent waits for the next accepted send until ctx ends.
func (s *Server) WaitSent(ctx context.Context) (Sent, error) {
	select {
	case m := <-s.sent:
		return m, nil
	case <-ctx.Done():
		return Sent{}, fmt.Errorf("telegramtest: no send: %w", ctx.Err())
	}
}

// PostWebhook delivers u to the registered webhook as Telegram does, with secret as the
// X-Telegram-Bot-Api-Secret-Token header (omitted when empty), and returns the status.
func (s *Server) PostWebhook(ctx context.Context, u Update, secret string) (int, error) {
	hook := s.Webhook()
	if hook.URL == "" {
		return 0, fmt.Errorf("telegramtest: no webhook registered")
	}
	if u.UpdateID == 0 {
		s.mu.Lock()
		u.UpdateID = s.nextUpdate
		s.nextUpdate++
		s.mu.Unlock()
	}
	body, err := json.Marshal(u)
	if err != nil {
		return 0, fmt.Errorf("telegramtest: encode update: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, hook.URL, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("telegramtest: webhook request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if secret != "" {
		req.Header.Set("X-Telegram-Bot-Api-Secret-Token", secret)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("telegramtest: post webhook: %w", err)
	}
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

// injectRequest is the body of POST /_fake/inject.
type injectRequest struct {
	ChatID   int64  `json:"chatId"`
	ChatType string `json:"chatType"` // private (default), group, supergroup
	FromID   int64  `json:"fromId"`   // default chatId
	Text     string `json:"text"`
}

// serveControl serves POST /_fake/inject (an injectRequest; answers the Message),
// GET /_fake/sent (every accepted send) and GET /_fake/confirmed (answers 204 once the bot
// confirmed every update injected so far, waiting as long as the request lasts) for a fake
// container.
func (s *Server) serveControl(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/_fake/inject" && r.Method == http.MethodPost:
		var in injectRequest
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.ChatID == 0 {
			http.Error(w, "body must be {chatId, chatType?, fromId?, text}", http.StatusBadRequest)
			return
		}
		from := in.FromID
		if from == 0 {
			from = in.ChatID
		}
		m := DirectText(from, in.Text)
		if in.ChatType != "" && in.ChatType != "private" {
			m = GroupText(in.ChatID, from, in.Text)
			m.Chat.Type = in.ChatType
		}
		reply(w, http.StatusOK, s.InjectMessage(m))
	case r.URL.Path == "/_fake/sent" && r.Method == http.MethodGet:
		reply(w, http.StatusOK, s.SentMessages())
	case r.URL.Path == "/_fake/confirmed" && r.Method == http.MethodGet:
		if err := s.WaitConfirmed(r.Context()); err != nil {
			return // the client gave up
		}
		w.WriteHeader(http.StatusNoContent)
	case r.URL.Path == "/_fake/conflict" && r.Method == http.MethodPost:
		on, _ := strconv.ParseBool(r.URL.Query().Get("on"))
		s.SetConflict(on)
		w.WriteHeader(http.StatusNoContent)
	default:
		http.NotFound(w, r)
	}
}
