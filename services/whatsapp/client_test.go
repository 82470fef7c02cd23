package whatsapp

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/clawdis/clawdis/services/provider"
	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/types"
)

func TestNewValidates(t *testing.T) {
	if _, err := New(Config{MediaFetchTimeout: -1}); err == nil {
		t.Error("negative MediaFetchTimeout accepted")
	}
	c, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	if c.ID() != "whatsapp" || c.cfg.MediaFetchTimeout <= 0 || c.cfg.Now == nil || c.cfg.HTTPClient == nil {
		t.Errorf("defaults not applied: %+v", c.cfg)
	}
}

func TestSendAndTypingRejectBadRecipients(t *testing.T) {
	c, err := New(Config{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	var re *provider.RecipientError
	if _, err := c.Send(context.Background(), provider.Outbound{To: "not a number", Text: "x"}); !errors.As(err, &re) {
		t.Errorf("Send = %v, want a RecipientError", err)
	}
	if err := c.Typing(context.Background(), "nobody@example.com", true); !errors.As(err, &re) {
		t.Errorf("Typing = %v, want a RecipientError", err)
	}
	if _, err := c.Send(context.Background(), provider.Outbound{To: "+436641234567"}); err == nil {
		t.Error("empty message accepted")
	}
}

func TestSendErrorMapping(t *testing.T) {
	for _, tt := range []struct {
		err          error
		notConnected bool
	}{
		{fmt.Errorf("send: %w", whatsmeow.ErrNotConnected), true},
		{whatsmeow.ErrNotLoggedIn, true},
		{errors.New("server returned error 479"), false},
	} {
		got := sendError(tt.err)
		if errors.Is(got, provider.ErrNotConnected) != tt.notConnected || !errors.Is(got, tt.err) {
			t.Errorf("sendError(%v) = %v", tt.err, got)
		}
	}
}

func TestTypingPresenceTransitions(t *testing.T) {
	c, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	type step struct {
		chat   string
		on     bool
		change bool
		want   types.Presence
	}
	for i, s := range []step{
		{"a", true, true, types.PresenceAvailable},
		{"b", true, false, ""},
		{"a", true, false, ""},
		{"a", false, false, ""},
		{"b", false, true, types.PresenceUnavailable},
		{"b", false, false, ""}, // already off
		{"c", true, true, types.PresenceAvailable},
	} {
		got, change := c.typingChange(s.chat, s.on)
		if change != s.change || got != s.want {
			t.Errorf("step %d %+v: got %q %v", i, s, got, change)
		}
	}
}

func TestReadTracker(t *testing.T) {
	tr := newReadTracker()
	chat := types.NewJID("120363041234567890", types.GroupServer)
	alice := types.NewJID("4911111111", types.DefaultUserServer)
	bob := types.NewJID("4922222222", types.DefaultUserServer)
	tr.note(chat.String(), chat, alice, "A1")
	tr.note(chat.String(), chat, bob, "B1")
	tr.note(chat.String(), chat, alice, "A2")
	got := tr.take(chat.String())
	if len(got) != 2 || got[0].sender != alice || len(got[0].ids) != 2 || got[0].ids[1] != "A2" ||
		got[1].sender != bob || got[1].ids[0] != "B1" || got[0].chat != chat {
		t.Fatalf("take = %+v", got)
	}
	if again := tr.take(chat.String()); again != nil {
		t.Errorf("second take = %+v, want nothing", again)
	}
	// Bounds: messages per chat and chats.
	for i := range maxUnreadPerChat + 5 {
		tr.note("x", alice, alice, types.MessageID(fmt.Sprint(i)))
	}
	if b := tr.take("x"); len(b) != 1 || len(b[0].ids) != maxUnreadPerChat || b[0].ids[0] != "5" {
		t.Errorf("per-chat bound: %d ids, first %v", len(b[0].ids), b[0].ids[0])
	}
	for i := range maxTrackedChats + 1 {
		tr.note(fmt.Sprint("chat", i), alice, alice, "m")
	}
	if tr.take("chat0") != nil || tr.take(fmt.Sprint("chat", maxTrackedChats)) == nil || tr.chats.Len() != maxTrackedChats-1 {
		t.Errorf("chat bound not kept: %d chats", tr.chats.Len())
	}
}

func TestQueueNeverBlocks(t *testing.T) {
	q := newQueue[int](3)
	for i := range 3 {
		if !q.push(i) {
			t.Fatalf("push %d refused below the bound", i)
		}
	}
	if q.push(99) {
		t.Error("push beyond the bound accepted")
	}
	select {
	case <-q.wait():
	default:
		t.Fatal("no wake-up token after pushes")
	}
	if got := q.drain(); len(got) != 3 || got[0] != 0 || got[2] != 2 {
		t.Errorf("drain = %v", got)
	}
	if got := q.drain(); got != nil {
		t.Errorf("second drain = %v", got)
	}
	if !q.push(4) {
		t.Error("push after drain refused")
	}
}
