package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/coder/websocket"

	"github.com/clawdis/clawdis/schemas"
)

// fakeGateway speaks the gateway's wire protocol (SPEC §5) with canned behaviour, for
// browser tests of page controls whose server side is not on this branch (chat.abort,
// sessions.list, sessions.reset, web.login.*): a protocol peer at the network boundary,
// in front of which the real WebChat relay runs. Replies stream as chat events: a message
// containing "slow" streams a first delta and then waits until it is aborted; "fail" ends
// with an error after a delta; anything else gets "echo: <message>". web.login.start shows
// code 1, the first web.login.wait rotates to code 2, the next one waits for scan().
type fakeGateway struct {
	t        *testing.T
	url      string
	scan     chan struct{} // closed by scanned(): the code was "scanned"
	scanOnce sync.Once

	mu       sync.Mutex
	conns    []*fakeConn
	sessions map[string]*fakeSession
	runs     map[string]chan struct{} // running slow runs; closed to abort
	waits    int
}

type fakeSession struct {
	id       string
	updated  int64
	messages []schemas.ChatMessage
}

type fakeConn struct {
	ws  *websocket.Conn
	mu  sync.Mutex
	seq int64
}

// startFakeGateway serves the fake on a loopback port until the test ends.
func startFakeGateway(t *testing.T) *fakeGateway {
	t.Helper()
	g := &fakeGateway{t: t, scan: make(chan struct{}), sessions: map[string]*fakeSession{},
		runs: map[string]chan struct{}{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g.url = "ws://" + ln.Addr().String()
	srv := &http.Server{Handler: http.HandlerFunc(g.serve)}
	go srv.Serve(ln)
	t.Cleanup(func() {
		g.scanned() // a web.login.wait still waiting returns
		g.mu.Lock()
		for _, ch := range g.runs {
			close(ch)
		}
		g.runs = map[string]chan struct{}{}
		g.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		g.mu.Lock()
		for _, c := range g.conns {
			c.ws.CloseNow()
		}
		g.mu.Unlock()
	})
	return g
}

// scanned lets the waiting web.login.wait answer linked:true.
func (g *fakeGateway) scanned() { g.scanOnce.Do(func() { close(g.scan) }) }

// seed puts messages into a session's transcript.
func (g *fakeGateway) seed(key string, msgs ...schemas.ChatMessage) {
	g.mu.Lock()
	defer g.mu.Unlock()
	s := g.session(key)
	s.messages = append(s.messages, msgs...)
	s.updated = time.Now().UnixMilli()
}

// session returns the session of key, created on first use; g.mu is held.
func (g *fakeGateway) session(key string) *fakeSession {
	s := g.sessions[key]
	if s == nil {
		s = &fakeSession{id: "sess-" + key + "-1"}
		g.sessions[key] = s
	}
	return s
}

var fakeMethods = []string{schemas.MethodHealth, schemas.MethodChatHistory, schemas.MethodChatSend, schemas.MethodChatAbort,
	schemas.MethodSessionsList, schemas.MethodSessionsReset, schemas.MethodWebLoginStart, schemas.MethodWebLoginWait}

func fakeHealth() schemas.HealthSummary {
	return schemas.HealthSummary{OK: true, Ts: time.Now().UnixMilli(),
		Web:      schemas.WebHealth{State: schemas.WebUnlinked},
		Telegram: schemas.TelegramHealth{State: schemas.TelegramUnconfigured},
		Sessions: schemas.SessionsHealth{Path: "/fake/sessions.json", Recent: []schemas.SessionRecent{}},
		Services: []schemas.ServiceHealth{{Name: "fake", OK: true}}}
}

func (g *fakeGateway) serve(w http.ResponseWriter, r *http.Request) {
	ws, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	ws.SetReadLimit(1 << 20)
	c := &fakeConn{ws: ws}
	g.mu.Lock()
	g.conns = append(g.conns, c)
	g.mu.Unlock()
	ctx := r.Context()
	if _, _, err := ws.Read(ctx); err != nil { // the hello; its content is not checked here
		return
	}
	c.write(schemas.HelloOK{Type: schemas.TypeHelloOK, Protocol: schemas.ProtocolVersion,
		Server:   schemas.ServerInfo{Version: "fake", ConnID: "fake-1"},
		Features: schemas.Features{Methods: fakeMethods, Events: []string{schemas.EventTick, schemas.EventChat, schemas.EventHealth}},
		Snapshot: schemas.Snapshot{Presence: []schemas.PresenceEntry{}, Health: fakeHealth()},
		Policy:   schemas.Policy{MaxPayload: 1 << 20, MaxBufferedBytes: 1 << 22, TickIntervalMs: 3600_000}})
	for {
		_, b, err := ws.Read(ctx)
		if err != nil {
			return
		}
		var req schemas.Request
		if json.Unmarshal(b, &req) != nil {
			continue
		}
		go g.answer(c, req)
	}
}

func (c *fakeConn) write(v any) {
	b, _ := json.Marshal(v)
	c.mu.Lock()
	defer c.mu.Unlock()
	_ = c.ws.Write(context.Background(), websocket.MessageText, b)
}

func (c *fakeConn) ok(id string, payload any) {
	b, _ := json.Marshal(payload)
	c.write(schemas.Response{Type: schemas.TypeRes, ID: id, OK: true, Payload: b})
}

func (c *fakeConn) fail(id, code, msg string) {
	c.write(schemas.Response{Type: schemas.TypeRes, ID: id, Error: &schemas.ErrorShape{Code: code, Message: msg}})
}

func (c *fakeConn) event(name string, payload any) {
	b, _ := json.Marshal(payload)
	c.mu.Lock()
	c.seq++
	seq := c.seq
	c.mu.Unlock()
	c.write(schemas.Event{Type: schemas.TypeEvent, Event: name, Payload: b, Seq: &seq})
}

func textMessage(role, text string) schemas.ChatMessage {
	return schemas.ChatMessage{Role: role, Content: []schemas.ChatContent{{Type: "text", Text: text}}, Timestamp: time.Now().UnixMilli()}
}

func (g *fakeGateway) answer(c *fakeConn, req schemas.Request) {
	var p struct {
		SessionKey     string `json:"sessionKey"`
		Message        string `json:"message"`
		IdempotencyKey string `json:"idempotencyKey"`
		RunID          string `json:"runId"`
	}
	_ = json.Unmarshal(req.Params, &p)
	g.mu.Lock()
	defer g.mu.Unlock()
	switch req.Method {
	case schemas.MethodHealth:
		c.ok(req.ID, fakeHealth())
	case schemas.MethodChatHistory:
		s := g.session(p.SessionKey)
		c.ok(req.ID, schemas.ChatHistoryResult{SessionKey: p.SessionKey, SessionID: s.id,
			Messages: append([]schemas.ChatMessage{}, s.messages...), ThinkingLevel: "off"})
	case schemas.MethodChatSend:
		s := g.session(p.SessionKey)
		s.messages = append(s.messages, textMessage("user", p.Message))
		s.updated = time.Now().UnixMilli()
		c.ok(req.ID, schemas.ChatSendResult{RunID: p.IdempotencyKey, Status: "started"})
		stop := make(chan struct{})
		g.runs[p.IdempotencyKey] = stop
		go g.run(c, p.SessionKey, p.IdempotencyKey, p.Message, stop)
	case schemas.MethodChatAbort:
		aborted := []string{}
		if ch, ok := g.runs[p.RunID]; ok {
			close(ch)
			delete(g.runs, p.RunID)
			aborted = append(aborted, p.RunID)
		}
		c.ok(req.ID, schemas.ChatAbortResult{OK: true, Aborted: aborted})
	case schemas.MethodSessionsList:
		rows := []schemas.SessionRow{}
		for key, s := range g.sessions {
			if len(s.messages) == 0 {
				continue
			}
			last := s.messages[len(s.messages)-1]
			preview := ""
			if len(last.Content) > 0 {
				preview = schemas.Clip(last.Content[0].Text, 120)
			}
			rows = append(rows, schemas.SessionRow{Key: key, SessionID: s.id, UpdatedAt: s.updated, LastMessagePreview: preview})
		}
		slices.SortFunc(rows, func(a, b schemas.SessionRow) int { return int(b.UpdatedAt - a.UpdatedAt) })
		c.ok(req.ID, schemas.SessionsListResult{Sessions: rows})
	case schemas.MethodSessionsReset:
		s := g.session(p.SessionKey)
		n, _ := strconv.Atoi(s.id[strings.LastIndexByte(s.id, '-')+1:])
		s.id = "sess-" + p.SessionKey + "-" + strconv.Itoa(n+1)
		s.messages = nil
		s.updated = time.Now().UnixMilli()
		c.ok(req.ID, schemas.SessionsResetResult{SessionKey: p.SessionKey, SessionID: s.id})
	case schemas.MethodWebLoginStart:
		c.ok(req.ID, schemas.WebLoginStartResult{QR: "code-1", QRDataURL: qrPNG(g.t, color.RGBA{R: 200, A: 255}), ExpiresInMs: 60000})
	case schemas.MethodWebLoginWait:
		g.waits++
		if g.waits == 1 {
			c.ok(req.ID, schemas.WebLoginWaitResult{QR: "code-2", QRDataURL: qrPNG(g.t, color.RGBA{B: 200, A: 255}), ExpiresInMs: 60000})
			return
		}
		g.mu.Unlock()
		<-g.scan
		g.mu.Lock()
		c.ok(req.ID, schemas.WebLoginWaitResult{Linked: true, JID: "15550001234@s.whatsapp.net", Phone: "+15550001234"})
	default:
		c.fail(req.ID, "INVALID_REQUEST", "unknown method: "+req.Method)
	}
}

// run streams one reply as chat events.
func (g *fakeGateway) run(c *fakeConn, key, runID, msg string, stop chan struct{}) {
	ev := func(state, text, errMsg string) {
		p := schemas.ChatEventPayload{RunID: runID, SessionKey: key, State: state, ErrorMessage: errMsg}
		if text != "" {
			m := textMessage("assistant", text)
			p.Message = &m
		}
		c.event(schemas.EventChat, p)
	}
	finish := func(m schemas.ChatMessage) {
		g.mu.Lock()
		defer g.mu.Unlock()
		delete(g.runs, runID)
		s := g.session(key)
		s.messages = append(s.messages, m)
		s.updated = time.Now().UnixMilli()
	}
	switch {
	case strings.Contains(msg, "slow"):
		partial := "**Partial** reply, still"
		ev(schemas.ChatStateDelta, partial, "")
		<-stop
		m := textMessage("assistant", partial)
		m.Aborted = true
		finish(m)
		ev(schemas.ChatStateAborted, partial, "")
	case strings.Contains(msg, "fail"):
		partial := "Half an answer"
		ev(schemas.ChatStateDelta, partial, "")
		finish(textMessage("assistant", partial))
		ev(schemas.ChatStateError, "", "backend exploded")
	default:
		reply := "echo: " + msg
		ev(schemas.ChatStateDelta, reply, "")
		finish(textMessage("assistant", reply))
		ev(schemas.ChatStateFinal, reply, "")
	}
}

// qrPNG is a small solid PNG as a data URL, standing in for a QR code.
func qrPNG(t *testing.T, c color.RGBA) string {
	img := image.NewRGBA(image.Rect(0, 0, 29, 29))
	for y := range 29 {
		for x := range 29 {
			if (x/4+y/4)%2 == 0 {
				img.Set(x, y, c)
			} else {
				img.Set(x, y, color.White)
			}
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Error(err)
	}
	return "data:image/png;base64," + base64.StdEncoding.EncodeToString(buf.Bytes())
}

// TestWebChatNewMethods clicks through the controls of chat.abort, sessions.list,
// sessions.reset and web.login.* against the fake gateway (their server side is built on
// other branches), and the transcript's provider and aborted marks through chat.history.
func TestWebChatNewMethods(t *testing.T) {
	exe := chromePath()
	if exe == "" {
		t.Skip("no Chromium: install chromium-headless-shell or set CLAWDIS_CHROME")
	}
	t.Setenv("HOME", t.TempDir())
	g := startFakeGateway(t)
	tg := textMessage("user", "[Telegram 123456789 2026-12-06T11:12:19Z] are you there?")
	tg.Channel, tg.Sender = "telegram", "Ada"
	stopped := textMessage("assistant", "I was saying")
	stopped.Aborted = true
	g.seed("main", tg, textMessage("assistant", "Yes, *here*."), textMessage("user", "tell me more"), stopped)
	g.seed("work", textMessage("user", "the quarterly numbers"), textMessage("assistant", "They are up."))

	bctx := browser(t, exe)
	if err := chromedp.Do(bctx, desktop(), chromedp.Navigate(startWebChat(t, g.url))); err != nil {
		t.Fatal(err)
	}
	waitJS(t, bctx, "connected", `document.querySelector('#conn').dataset.state === 'connected'`)

	// The transcript: the Telegram message labelled, the aborted reply marked.
	waitJS(t, bctx, "the provider message from the history", `(() => { const li = document.querySelector('#log li.incoming');
		return !!li && li.querySelector('.from').textContent === 'Telegram · Ada' && li.querySelector('.text').textContent === 'are you there?'; })()`)
	waitJS(t, bctx, "the stopped reply from the history", `(() => { const li = [...document.querySelectorAll('#log li.assistant')].pop();
		return li.querySelector('.text').textContent === 'I was saying' && li.querySelector('.note[data-kind="stopped"]')?.textContent === 'stopped'; })()`)

	// The conversation list: both sessions, the current one marked; a click switches.
	waitJS(t, bctx, "the conversation list", `(() => { const b = [...document.querySelectorAll('#session-list button')];
		return !document.getElementById('sessions-panel').hidden && b.length === 2
			&& b.find((x) => x.dataset.key === 'main')?.getAttribute('aria-current') === 'true'
			&& b.find((x) => x.dataset.key === 'work')?.querySelector('.preview').textContent === 'They are up.'
			&& /ago$/.test(b.find((x) => x.dataset.key === 'work').querySelector('time').textContent); })()`)
	shoot(t, bctx, "methods-desktop-light")
	if err := chromedp.Do(bctx, chromedp.Click(chromedp.CSS(`#session-list button[data-key="work"]`))); err != nil {
		t.Fatal(err)
	}
	waitJS(t, bctx, "the other conversation", `new URLSearchParams(location.search).get('session') === 'work'
		&& document.getElementById('session').value === 'work'
		&& [...document.querySelectorAll('#log li .text')].map((e) => e.textContent).join('|') === 'the quarterly numbers|They are up.'
		&& document.querySelector('#session-list button[aria-current="true"]')?.dataset.key === 'work'`)

	// A new conversation under the same key clears the view.
	if err := chromedp.Do(bctx, chromedp.Click(chromedp.ID("new-session"))); err != nil {
		t.Fatal(err)
	}
	waitJS(t, bctx, "the new conversation", `document.querySelectorAll('#log li').length === 0 && !document.getElementById('empty').hidden
		&& !document.getElementById('empty-wa').hidden`)
	g.mu.Lock()
	id, n := g.sessions["work"].id, len(g.sessions["work"].messages)
	g.mu.Unlock()
	if id != "sess-work-2" || n != 0 {
		t.Errorf("after New conversation the session is %s with %d messages, want sess-work-2 and none", id, n)
	}
	shoot(t, bctx, "methods-new-conversation")

	// Stop while a reply streams: the partial reply stays, marked stopped.
	sendText(t, bctx, "a slow one")
	waitJS(t, bctx, "the streaming reply and Stop", `(() => { const li = [...document.querySelectorAll('#log li.assistant')].pop();
		return !!li && li.dataset.state === 'streaming' && li.querySelector('.text strong')?.textContent === 'Partial'
			&& !document.getElementById('stop').hidden; })()`)
	shoot(t, bctx, "methods-streaming")
	if err := chromedp.Do(bctx, phone()); err != nil {
		t.Fatal(err)
	}
	waitJS(t, bctx, "Stop and Send on screen at phone width", `(() => { const s = document.getElementById('stop').getBoundingClientRect(),
		b = document.getElementById('send').getBoundingClientRect(); return s.width > 0 && b.right <= innerWidth && s.right <= b.left; })()`)
	shoot(t, bctx, "methods-streaming-phone")
	if err := chromedp.Do(bctx, desktop()); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(bctx, chromedp.Click(chromedp.ID("stop"))); err != nil {
		t.Fatal(err)
	}
	waitJS(t, bctx, "the stopped reply", `(() => { const li = [...document.querySelectorAll('#log li.assistant')].pop();
		return li.dataset.state === 'aborted' && li.querySelector('.text').textContent === 'Partial reply, still'
			&& li.querySelector('.note[data-kind="stopped"]')?.textContent === 'stopped' && document.getElementById('stop').hidden; })()`)

	// A failed run keeps its partial text and shows the error under it.
	sendText(t, bctx, "this will fail")
	waitJS(t, bctx, "the failed reply", `(() => { const li = [...document.querySelectorAll('#log li.assistant')].pop();
		return li.dataset.state === 'error' && li.querySelector('.text').textContent === 'Half an answer'
			&& li.querySelector('.note[data-kind="error"]')?.textContent === 'The agent failed: backend exploded'; })()`)
	shoot(t, bctx, "methods-stopped-and-failed")

	// Linking WhatsApp: code 1, swapped for the rotated code 2, then "Linked as".
	must(t, bctx, chromedp.Evaluate[chromedp.Void](`window.__qr = [];
		new MutationObserver(() => { const s = document.getElementById('wa-qr').getAttribute('src'); if (s) window.__qr.push(s); })
			.observe(document.getElementById('wa-qr'), { attributes: true, attributeFilter: ['src'] })`))
	if err := chromedp.Do(bctx, chromedp.Click(chromedp.ID("wa-link"))); err != nil {
		t.Fatal(err)
	}
	code1, _ := json.Marshal(qrPNG(t, color.RGBA{R: 200, A: 255}))
	code2, _ := json.Marshal(qrPNG(t, color.RGBA{B: 200, A: 255}))
	waitJS(t, bctx, "the rotated QR code", `JSON.stringify(window.__qr) === JSON.stringify([`+string(code1)+`, `+string(code2)+`])
		&& !document.getElementById('wa-qr').hidden && document.getElementById('wa-qr').naturalWidth === 29
		&& document.getElementById('wa-link').hidden`)
	shoot(t, bctx, "methods-qr-desktop-light")
	if err := chromedp.Do(bctx, colorScheme("dark")); err != nil {
		t.Fatal(err)
	}
	shoot(t, bctx, "methods-qr-desktop-dark")
	if err := chromedp.Do(bctx, phone(), chromedp.Click(chromedp.ID("side-toggle"))); err != nil {
		t.Fatal(err)
	}
	waitJS(t, bctx, "the drawer with the code", `getComputedStyle(document.getElementById('side')).display !== 'none'`)
	shoot(t, bctx, "methods-qr-phone-dark")
	g.scanned()
	waitJS(t, bctx, "linked", `document.getElementById('wa-status').textContent === 'Linked as +15550001234'
		&& document.getElementById('wa-qr').hidden`)
	shoot(t, bctx, "methods-linked-phone-dark")
	if err := chromedp.Do(bctx, colorScheme("light"), chromedp.Click(chromedp.ID("side-close"))); err != nil {
		t.Fatal(err)
	}
	shoot(t, bctx, "methods-phone-light")
}
