package whatsapp

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/clawdis/clawdis/bus/wire"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"
)

// fakeLIDs is a LID map.
type fakeLIDs map[types.JID]types.JID

func (f fakeLIDs) GetPNForLID(_ context.Context, lid types.JID) (types.JID, error) {
	if lid.User == "500" {
		return types.EmptyJID, errors.New("store closed")
	}
	return f[lid], nil // EmptyJID when unknown, as the store answers
}

// fakeMedia "downloads" into a path named after the kind, or fails for documents named
// "broken.pdf".
type fakeMedia struct{ saved []string }

func (f *fakeMedia) saveMedia(_ context.Context, kind string, att attachment) (string, error) {
	if att.fileName == "broken.pdf" {
		return "", errors.New("media server said 404")
	}
	p := "/media/" + kind + mediaExt(att.mimeType, att.fileName)
	f.saved = append(f.saved, p)
	return p, nil
}

func TestConvert(t *testing.T) {
	own := types.NewJID("436641234567", types.DefaultUserServer)
	ownLID := types.NewJID("11111", types.HiddenUserServer)
	peer := types.NewJID("4915112345678", types.DefaultUserServer)
	peerLID := types.NewJID("22222", types.HiddenUserServer)
	strangerLID := types.NewJID("33333", types.HiddenUserServer)
	group := types.NewJID("120363041234567890", types.GroupServer)
	ts := time.UnixMilli(1767225600123)

	dm := func(m *waE2E.Message) *events.Message {
		return &events.Message{Info: types.MessageInfo{
			MessageSource: types.MessageSource{Chat: peer, Sender: types.NewADJID(peer.User, 0, 3)},
			ID:            "ID1", PushName: "Peer", Timestamp: ts,
		}, Message: m}
	}
	inGroup := func(sender types.JID, m *waE2E.Message) *events.Message {
		return &events.Message{Info: types.MessageInfo{
			MessageSource: types.MessageSource{Chat: group, Sender: sender, IsGroup: true},
			ID:            "G1", PushName: "Member", Timestamp: ts,
		}, Message: m}
	}
	text := func(s string) *waE2E.Message { return &waE2E.Message{Conversation: proto.String(s)} }
	mention := func(s string, jids ...string) *waE2E.Message {
		return &waE2E.Message{ExtendedTextMessage: &waE2E.ExtendedTextMessage{
			Text: proto.String(s), ContextInfo: &waE2E.ContextInfo{MentionedJID: jids}}}
	}
	want := func(mod func(*wire.InboundMessage)) *wire.InboundMessage {
		m := wire.InboundMessage{MessageID: "ID1", ChatID: peer.String(), ChatType: "direct", From: "+4915112345678",
			FromName: "Peer", Self: "+436641234567", Ts: ts.UnixMilli()}
		mod(&m)
		return &m
	}
	wantGroup := func(mod func(*wire.InboundMessage)) *wire.InboundMessage {
		m := wire.InboundMessage{MessageID: "G1", ChatID: group.String(), ChatType: "group", From: "+4915112345678",
			FromName: "Member", Self: "+436641234567", Ts: ts.UnixMilli()}
		mod(&m)
		return &m
	}
	for _, tt := range []struct {
		name string
		evt  *events.Message
		want *wire.InboundMessage // nil: not reported
	}{
		{"text", dm(text(" hello ")), want(func(m *wire.InboundMessage) { m.Text = "hello" })},
		{"extended text", dm(&waE2E.Message{ExtendedTextMessage: &waE2E.ExtendedTextMessage{Text: proto.String("see https://x.y")}}),
			want(func(m *wire.InboundMessage) { m.Text = "see https://x.y" })},
		{"image with caption", dm(&waE2E.Message{ImageMessage: &waE2E.ImageMessage{Caption: proto.String("look"), Mimetype: proto.String("image/jpeg")}}),
			want(func(m *wire.InboundMessage) {
				m.Text = "look"
				m.Media = []wire.InboundMedia{{Type: "image", MimeType: "image/jpeg", Path: "/media/image.jpg"}}
			})},
		{"image without caption", dm(&waE2E.Message{ImageMessage: &waE2E.ImageMessage{Mimetype: proto.String("image/png")}}),
			want(func(m *wire.InboundMessage) {
				m.Text = "<media:image>"
				m.Media = []wire.InboundMedia{{Type: "image", MimeType: "image/png", Path: "/media/image.png"}}
			})},
		{"voice note", dm(&waE2E.Message{AudioMessage: &waE2E.AudioMessage{Mimetype: proto.String("audio/ogg; codecs=opus"), PTT: proto.Bool(true)}}),
			want(func(m *wire.InboundMessage) {
				m.Text = "<media:audio>"
				m.Media = []wire.InboundMedia{{Type: "audio", MimeType: "audio/ogg; codecs=opus", Path: "/media/audio.ogg"}}
			})},
		{"sticker", dm(&waE2E.Message{StickerMessage: &waE2E.StickerMessage{Mimetype: proto.String("image/webp")}}),
			want(func(m *wire.InboundMessage) {
				m.Text = "<media:sticker>"
				m.Media = []wire.InboundMedia{{Type: "sticker", MimeType: "image/webp", Path: "/media/sticker.webp"}}
			})},
		{"video with caption", dm(&waE2E.Message{VideoMessage: &waE2E.VideoMessage{Caption: proto.String("clip"), Mimetype: proto.String("video/mp4")}}),
			want(func(m *wire.InboundMessage) {
				m.Text = "clip"
				m.Media = []wire.InboundMedia{{Type: "video", MimeType: "video/mp4", Path: "/media/video.mp4"}}
			})},
		{"document download fails", dm(&waE2E.Message{DocumentMessage: &waE2E.DocumentMessage{
			FileName: proto.String("broken.pdf"), Mimetype: proto.String("application/pdf"), Caption: proto.String("report")}}),
			want(func(m *wire.InboundMessage) {
				m.Text = "report"
				m.Media = []wire.InboundMedia{{Type: "document", MimeType: "application/pdf"}}
			})},
		{"document keeps its extension", dm(&waE2E.Message{DocumentMessage: &waE2E.DocumentMessage{
			FileName: proto.String("notes.TXT"), Mimetype: proto.String("text/plain")}}),
			want(func(m *wire.InboundMessage) {
				m.Text = "<media:document>"
				m.Media = []wire.InboundMedia{{Type: "document", MimeType: "text/plain", Path: "/media/document.txt"}}
			})},
		{"from me to someone else", func() *events.Message {
			e := dm(text("sent from my phone"))
			e.Info.IsFromMe, e.Info.Sender = true, own
			return e
		}(), nil},
		{"from me to my own chat", func() *events.Message {
			e := dm(text("note to self"))
			e.Info.IsFromMe, e.Info.Chat, e.Info.Sender, e.Info.PushName = true, own, types.NewADJID(own.User, 0, 2), "Me"
			return e
		}(), want(func(m *wire.InboundMessage) {
			m.ChatID, m.From, m.FromName, m.ToSelf, m.Text = own.String(), "+436641234567", "Me", true, "note to self"
		})},
		{"from me to my own chat by LID", func() *events.Message {
			e := dm(text("lid note"))
			e.Info.IsFromMe, e.Info.Chat, e.Info.Sender, e.Info.PushName = true, ownLID, ownLID, "Me"
			return e
		}(), want(func(m *wire.InboundMessage) {
			m.ChatID, m.From, m.FromName, m.ToSelf, m.Text = own.String(), "+436641234567", "Me", true, "lid note"
		})},
		{"from me in a group", func() *events.Message {
			e := inGroup(own, text("hi all"))
			e.Info.IsFromMe = true
			return e
		}(), nil},
		{"group mention by number", inGroup(peer, mention("@bot hi", own.String())),
			wantGroup(func(m *wire.InboundMessage) { m.Text, m.Mentioned = "@bot hi", true })},
		{"group mention by LID", inGroup(peer, mention("@bot hi", "1@s.whatsapp.net", ownLID.String())),
			wantGroup(func(m *wire.InboundMessage) { m.Text, m.Mentioned = "@bot hi", true })},
		{"group mention in an image caption", inGroup(peer, &waE2E.Message{ImageMessage: &waE2E.ImageMessage{
			Caption: proto.String("@bot"), Mimetype: proto.String("image/jpeg"), ContextInfo: &waE2E.ContextInfo{MentionedJID: []string{own.String()}}}}),
			wantGroup(func(m *wire.InboundMessage) {
				m.Text, m.Mentioned = "@bot", true
				m.Media = []wire.InboundMedia{{Type: "image", MimeType: "image/jpeg", Path: "/media/image.jpg"}}
			})},
		{"group without mention", inGroup(peer, mention("@other hi", "4912345678@s.whatsapp.net")),
			wantGroup(func(m *wire.InboundMessage) { m.Text = "@other hi" })},
		{"group LID sender resolved", inGroup(peerLID, text("hi")),
			wantGroup(func(m *wire.InboundMessage) { m.Text = "hi" })},
		{"group LID sender with a phone alt", func() *events.Message {
			e := inGroup(strangerLID, text("hi"))
			e.Info.SenderAlt = types.NewADJID("4915199999999", 0, 1)
			return e
		}(), wantGroup(func(m *wire.InboundMessage) { m.Text, m.From = "hi", "+4915199999999" })},
		{"group LID sender unresolvable", inGroup(strangerLID, text("hi")),
			wantGroup(func(m *wire.InboundMessage) { m.Text, m.From = "hi", "33333@lid" })},
		{"LID lookup error", inGroup(types.NewJID("500", types.HiddenUserServer), text("hi")),
			wantGroup(func(m *wire.InboundMessage) { m.Text, m.From = "hi", "500@lid" })},
		{"direct chat addressed by LID", func() *events.Message {
			e := dm(text("hey"))
			e.Info.Chat, e.Info.Sender = peerLID, peerLID
			return e
		}(), want(func(m *wire.InboundMessage) { m.Text = "hey" })},
		{"status broadcast", func() *events.Message {
			e := dm(text("my status"))
			e.Info.Chat = types.StatusBroadcastJID
			return e
		}(), nil},
		{"edit", func() *events.Message { e := dm(text("edited")); e.IsEdit = true; return e }(), nil},
		{"reaction", dm(&waE2E.Message{ReactionMessage: &waE2E.ReactionMessage{Text: proto.String("👍")}}), nil},
		{"no message", dm(nil), nil},
		{"blank text", dm(text("   ")), nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var warned int
			c := &converter{
				self:  self{PN: own, LID: ownLID},
				lids:  fakeLIDs{peerLID: types.NewADJID(peer.User, 0, 4)},
				media: &fakeMedia{},
				warn:  func(string, ...any) { warned++ },
			}
			got, ok := c.convert(context.Background(), tt.evt)
			if tt.want == nil {
				if ok {
					t.Fatalf("reported %+v, want it ignored", got)
				}
				return
			}
			if !ok {
				t.Fatal("ignored, want it reported")
			}
			if !reflect.DeepEqual(got, *tt.want) {
				t.Fatalf("got  %+v\nwant %+v", got, *tt.want)
			}
			if wantWarn := tt.name == "document download fails" || tt.name == "LID lookup error"; wantWarn != (warned > 0) {
				t.Errorf("warnings %d", warned)
			}
		})
	}
}

func TestConvertWithoutOwnLIDResolvesSelfChat(t *testing.T) {
	own := types.NewJID("436641234567", types.DefaultUserServer)
	ownLID := types.NewJID("11111", types.HiddenUserServer)
	c := &converter{self: self{PN: own}, lids: fakeLIDs{ownLID: own}}
	got, ok := c.convert(context.Background(), &events.Message{
		Info: types.MessageInfo{
			MessageSource: types.MessageSource{Chat: ownLID, Sender: ownLID, IsFromMe: true},
			ID:            "S1", Timestamp: time.Unix(1, 0),
		},
		Message: &waE2E.Message{Conversation: proto.String("x")},
	})
	if !ok || !got.ToSelf || got.ChatID != own.String() {
		t.Fatalf("convert = %+v, %v; want a to-self message in %s", got, ok, own)
	}
}
