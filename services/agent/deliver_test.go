package agent

import (
	"cmp"
	"strings"
	"testing"

	"github.com/clawdis/clawdis/bus/subject"
	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/schemas"
)

// TestDeliver: deliver:true sends the reply through the provider of the run's route.
func TestDeliver(t *testing.T) {
	tests := []struct {
		name      string
		session   *wire.Session
		params    schemas.AgentParams
		fail      *wire.Error // the provider's answer
		wantTo    string      // "" = nothing sent
		wantVia   string
		wantErr   string // part of the final's error; "" = ok
		wantCode  string // the final's error code; "" = UNAVAILABLE
		wantRoute [2]string
	}{
		{
			name:      "explicit channel and recipient; the route is remembered",
			params:    schemas.AgentParams{Deliver: true, Channel: "telegram", To: "12345"},
			wantVia:   "telegram",
			wantTo:    "12345",
			wantRoute: [2]string{"telegram", "12345"},
		},
		{
			name:      "last route of the session",
			session:   &wire.Session{SessionKey: "main", LastChannel: "whatsapp", LastTo: "+4366111"},
			params:    schemas.AgentParams{Deliver: true},
			wantVia:   "whatsapp",
			wantTo:    "+4366111",
			wantRoute: [2]string{"whatsapp", "+4366111"},
		},
		{
			name:      "explicit recipient wins over the last one",
			session:   &wire.Session{SessionKey: "main", LastChannel: "whatsapp", LastTo: "+4366111"},
			params:    schemas.AgentParams{Deliver: true, Channel: "last", To: "+4366222"},
			wantVia:   "whatsapp",
			wantTo:    "+4366222",
			wantRoute: [2]string{"whatsapp", "+4366111"},
		},
		{
			name:      "webchat never delivers",
			session:   &wire.Session{SessionKey: "main", LastChannel: "webchat"},
			params:    schemas.AgentParams{Deliver: true},
			wantRoute: [2]string{"webchat", ""},
		},
		{
			name:   "nothing known never delivers",
			params: schemas.AgentParams{Deliver: true, To: "+4366333"},
		},
		{
			name:      "without deliver nothing is sent",
			params:    schemas.AgentParams{Channel: "telegram", To: "777"},
			wantRoute: [2]string{"telegram", "777"},
		},
		{
			name:      "a failed delivery fails the run",
			params:    schemas.AgentParams{Deliver: true, Channel: "telegram", To: "12345"},
			fail:      wire.Unavailable(false, "chat not found"),
			wantVia:   "telegram",
			wantTo:    "12345",
			wantErr:   "deliver via telegram: chat not found",
			wantRoute: [2]string{"telegram", "12345"},
		},
		{
			name:      "delivery to an unlinked WhatsApp fails NOT_LINKED",
			params:    schemas.AgentParams{Deliver: true, Channel: "whatsapp", To: "+4366444"},
			fail:      &wire.Error{Code: wire.CodeNotLinked, Message: "whatsapp not linked"},
			wantVia:   "whatsapp",
			wantTo:    "+4366444",
			wantErr:   "deliver via whatsapp: whatsapp not linked",
			wantCode:  wire.CodeNotLinked,
			wantRoute: [2]string{"whatsapp", "+4366444"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := start(t, commandConfig("sh", script(t, "args.sh"), "the reply"))
			if tt.session != nil {
				h.sessions.set(*tt.session)
			}
			providers := map[string]*fakeProvider{
				"whatsapp": serveProvider(t, h.bus.Conn("whatsapp"), "whatsapp", tt.fail),
				"telegram": serveProvider(t, h.bus.Conn("telegram"), "telegram", tt.fail),
			}
			tt.params.Message, tt.params.IdempotencyKey = "hi", "d1"
			h.run(tt.params)
			if tt.wantErr == "" {
				h.finalOK("d1")
			} else if werr, _ := h.finalErr("d1", cmp.Or(tt.wantCode, wire.CodeUnavailable)); !strings.Contains(werr.Message, tt.wantErr) {
				t.Fatalf("error %q does not contain %q", werr.Message, tt.wantErr)
			}
			// Delivery happens before the final, so whatever was sent is here now.
			for id, p := range providers {
				select {
				case sp := <-p.sent:
					want := schemas.SendParams{To: tt.wantTo, Message: "the reply", Provider: tt.wantVia, IdempotencyKey: "d1:deliver"}
					if id != tt.wantVia || sp != want {
						t.Errorf("%s got %+v, want %+v via %q", id, sp, want, tt.wantVia)
					}
				default:
					if id == tt.wantVia {
						t.Errorf("nothing sent via %s", id)
					}
				}
			}
			s, _ := h.sessions.get("main")
			if got := [2]string{s.LastChannel, s.LastTo}; got != tt.wantRoute {
				t.Errorf("session route = %v, want %v", got, tt.wantRoute)
			}
		})
	}
}

// TestReplyNotStoredFailsTheRun: when the reply cannot be added to the transcript (the
// sessions service's disk is full) the run fails UNAVAILABLE retryable, delivers nothing and
// is not remembered: a retry once the disk has room runs and delivers.
func TestReplyNotStoredFailsTheRun(t *testing.T) {
	h := start(t, commandConfig("sh", script(t, "args.sh"), "the reply"))
	wa := serveProvider(t, h.bus.Conn("whatsapp"), "whatsapp", nil)
	h.sessions.mu.Lock()
	h.sessions.failReplies = wire.Unavailable(true, "session \"main\": append to transcript: no space left on device")
	h.sessions.mu.Unlock()
	p := schemas.AgentParams{Message: "hi", IdempotencyKey: "full", Deliver: true, Channel: "whatsapp", To: "+4366555"}
	h.run(p)
	werr, res := h.finalErr("full", wire.CodeUnavailable)
	if !werr.Retryable || res.Status != "error" || !strings.Contains(werr.Message, "no space left") {
		t.Fatalf("final = %+v %+v, want UNAVAILABLE retryable naming the disk", werr, res)
	}
	select {
	case sp := <-wa.sent:
		t.Fatalf("delivered %+v although the reply was not stored", sp)
	default:
	}
	h.sessions.mu.Lock()
	h.sessions.failReplies = nil
	h.sessions.mu.Unlock()
	h.run(p)
	if r := h.finalOK("full"); r.Text != "the reply" {
		t.Fatalf("retry = %+v", r)
	}
	if sp := <-wa.sent; sp.To != "+4366555" {
		t.Fatalf("retry delivered %+v", sp)
	}
}

// TestInvalidRequests: bad params are rejected before the ack, and nothing runs.
func TestInvalidRequests(t *testing.T) {
	zero, huge, dayPlus, dayPlusMs := int64(0), int64(1e10), int64(86401), int64(86400001)
	png := "iVBORw0KGgo="
	tests := []struct {
		name string
		subj string
		req  any
		want string
	}{
		{"thinking", subject.AgentRun, schemas.AgentParams{Message: "m", Thinking: "extreme"}, `invalid thinking level "extreme"`},
		{"channel", subject.AgentRun, schemas.AgentParams{Message: "m", Channel: "sms"}, `invalid channel "sms"`},
		{"timeout", subject.AgentRun, schemas.AgentParams{Message: "m", Timeout: &zero}, "timeout must be between 1 and 86400 seconds"},
		{"timeout overflowing a duration", subject.AgentRun, schemas.AgentParams{Message: "m", Timeout: &huge}, "timeout must be between 1 and 86400 seconds"},
		{"timeout a second too long", subject.AgentRun, schemas.AgentParams{Message: "m", Timeout: &dayPlus}, "timeout must be between 1 and 86400 seconds"},
		{"chat timeoutMs too long", subject.ChatSend, schemas.ChatSendParams{SessionKey: "main", Message: "m", TimeoutMs: &dayPlusMs}, "timeoutMs must be between 1 and 86400000"},
		{"blank message", subject.AgentRun, schemas.AgentParams{Message: "  "}, "message required"},
		{"chat thinking", subject.ChatSend, schemas.ChatSendParams{SessionKey: "main", Message: "m", Thinking: "lots"}, `invalid thinking level "lots"`},
		{"pdf", subject.ChatSend, schemas.ChatSendParams{SessionKey: "main", Message: "m", Attachments: []schemas.ChatAttachment{
			{Type: "file", MimeType: "application/pdf", FileName: "cat.pdf", Content: "JVBERi0="}}},
			"attachment 1 (cat.pdf): only images are supported"},
		{"image type with a pdf", subject.ChatSend, schemas.ChatSendParams{SessionKey: "main", Message: "m", Attachments: []schemas.ChatAttachment{
			{Type: "image", MimeType: "image/png", Content: png}, {Type: "image", MimeType: "application/pdf", Content: "JVBERi0="}}},
			"attachment 2: only images are supported"},
		{"bad base64", subject.ChatSend, schemas.ChatSendParams{SessionKey: "main", Message: "m", Attachments: []schemas.ChatAttachment{
			{Type: "image", MimeType: "image/png", FileName: "x.png", Content: "not base64!"}}},
			"attachment 1 (x.png): content is not valid base64"},
		{"chat nothing to send", subject.ChatSend, schemas.ChatSendParams{SessionKey: "main", Message: " "}, "message or an attachment required"},
	}
	h := start(t, commandConfig("sh", script(t, "args.sh"), "x"))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var key string
			switch p := tt.req.(type) {
			case schemas.AgentParams:
				p.IdempotencyKey = "bad-" + tt.name
				key, tt.req = p.IdempotencyKey, p
			case schemas.ChatSendParams:
				p.IdempotencyKey = "bad-" + tt.name
				key, tt.req = p.IdempotencyKey, p
			}
			werr := h.requestErr(tt.subj, tt.req)
			if werr.Code != wire.CodeInvalidRequest || !strings.Contains(werr.Message, tt.want) {
				t.Fatalf("error = %+v, want INVALID_REQUEST containing %q", werr, tt.want)
			}
			if st := h.status(key); st.State != wire.RunUnknown {
				t.Fatalf("a rejected run is known: %+v", st)
			}
		})
	}
	if evs := h.events.snapshot(); len(evs) != 0 {
		t.Fatalf("rejected requests published events: %s", describe(evs))
	}
}
