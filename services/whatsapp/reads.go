package whatsapp

import (
	"sync"
	"time"

	"go.mau.fi/whatsmeow/types"

	"github.com/clawdis/clawdis/services/internal/ttlmap"
)

// Bounds of the read tracker.
const (
	maxUnreadPerChat = 50
	maxTrackedChats  = 1000
)

// readTracker remembers the inbound messages of each chat not yet marked read, so that
// Typing(on) can mark them read.
type readTracker struct {
	mu sync.Mutex
	// chats by reported ChatID, in the order of their first unread message; beyond
	// maxTrackedChats the oldest is forgotten. Nothing expires by time, so every chat is
	// stamped with the zero time and the order is the order of the Puts.
	chats *ttlmap.Map[string, *unread]
}

// unread is one chat's unread messages.
type unread struct {
	chat types.JID // the chat as whatsmeow addressed it
	msgs []unreadMsg
}

type unreadMsg struct {
	id     types.MessageID
	sender types.JID
}

// readBatch is what one read receipt covers: messages of one sender in one chat.
type readBatch struct {
	chat   types.JID
	sender types.JID
	ids    []types.MessageID
}

func newReadTracker() *readTracker {
	return &readTracker{chats: ttlmap.New[string, *unread](0, maxTrackedChats)}
}

// note records an inbound message.
func (t *readTracker) note(chatID string, chat, sender types.JID, id types.MessageID) {
	t.mu.Lock()
	defer t.mu.Unlock()
	u, ok := t.chats.Get(chatID, time.Time{})
	if !ok {
		u = &unread{}
		t.chats.Put(chatID, u, time.Time{})
	}
	u.chat = chat
	u.msgs = append(u.msgs, unreadMsg{id: id, sender: sender})
	if len(u.msgs) > maxUnreadPerChat {
		u.msgs = u.msgs[len(u.msgs)-maxUnreadPerChat:]
	}
}

// take removes a chat's unread messages and groups them into receipts, one per sender in
// order of first appearance.
func (t *readTracker) take(chatID string) []readBatch {
	t.mu.Lock()
	u, ok := t.chats.Get(chatID, time.Time{})
	if ok {
		t.chats.Delete(chatID)
	}
	t.mu.Unlock()
	if !ok {
		return nil
	}
	var batches []readBatch
	index := make(map[types.JID]int)
	for _, m := range u.msgs {
		i, seen := index[m.sender]
		if !seen {
			i = len(batches)
			index[m.sender] = i
			batches = append(batches, readBatch{chat: u.chat, sender: m.sender})
		}
		batches[i].ids = append(batches[i].ids, m.id)
	}
	return batches
}
