package autoreply

import (
	"strings"
	"sync"
	"time"

	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/services/internal/ttlmap"
)

// Echo guard bounds.
const (
	echoTTL     = 10 * time.Minute
	echoMaxKeys = 2000
)

// echoGuard recognises the service's own replies coming back as inbound messages. A reply
// to the owner's own WhatsApp chat ("message yourself") is seen by the owner's other devices
// and may be reported again as a message to yourself; answering it would loop forever. The
// guard remembers the message ids the provider returned for the replies and, for chats to
// yourself, the reply texts (registered before the send, so an echo racing the send's
// answer is caught too).
type echoGuard struct {
	now  func() time.Time
	mu   sync.Mutex
	keys *ttlmap.Map[string, struct{}] // "id\x00provider\x00chat\x00messageId" or "text\x00…\x00text"
}

func newEchoGuard(now func() time.Time) *echoGuard {
	return &echoGuard{now: now, keys: ttlmap.New[string, struct{}](echoTTL, echoMaxKeys)}
}

func echoIDKey(provider, chat, id string) string {
	return "id\x00" + provider + "\x00" + chat + "\x00" + id
}

func echoTextKey(provider, chat, text string) string {
	return "text\x00" + provider + "\x00" + chat + "\x00" + strings.TrimSpace(text)
}

// expectText registers a reply text about to be sent to a chat to yourself.
func (g *echoGuard) expectText(provider, chat, text string) {
	g.add(echoTextKey(provider, chat, text))
}

// sent registers the message id of a delivered reply.
func (g *echoGuard) sent(provider, chat, id string) {
	if id != "" {
		g.add(echoIDKey(provider, chat, id))
	}
}

func (g *echoGuard) add(key string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.keys.Put(key, struct{}{}, g.now())
}

// isEcho reports whether msg is one of the service's own replies.
func (g *echoGuard) isEcho(msg wire.InboundMessage) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	if _, ok := g.keys.Get(echoIDKey(msg.Provider, msg.ChatID, msg.MessageID), now); ok {
		return true
	}
	if !msg.ToSelf {
		return false
	}
	k := echoTextKey(msg.Provider, msg.ChatID, msg.Text)
	if _, ok := g.keys.Get(k, now); !ok {
		return false
	}
	g.keys.Delete(k) // one echo per reply: the owner may write the same text later
	return true
}
