package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/clawdis/clawdis/bus/subject"
	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/schemas"
)

// fakeSessions is a small in-memory sessions service on the real subjects.
type fakeSessions struct {
	mu          sync.Mutex
	sessions    map[string]wire.Session
	transcripts map[string][]schemas.ChatMessage
	runKeys     map[string][]string // parallel to transcripts: the run key of each message
	updates     []wire.SessionUpdate
	histories   []wire.HistoryRequest
	// failReplies, when set, fails every append of an assistant message with it (a full
	// disk).
	failReplies *wire.Error
}

func newFakeSessions() *fakeSessions {
	return &fakeSessions{sessions: map[string]wire.Session{}, transcripts: map[string][]schemas.ChatMessage{}, runKeys: map[string][]string{}}
}

func (f *fakeSessions) serve(t testing.TB, nc *nats.Conn) {
	serve(t, nc, "fake-sessions", map[string]wire.HandlerFunc{
		subject.SessionsResolve: f.resolve,
		subject.SessionsUpdate:  f.update,
		subject.SessionsAppend:  f.append,
		subject.SessionsHistory: f.history,
	})
}

// set stores a session as it is before a test.
func (f *fakeSessions) set(s wire.Session, transcript ...schemas.ChatMessage) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s.SessionID == "" {
		s.SessionID = "sid-" + s.SessionKey
	}
	f.sessions[s.SessionKey] = s
	f.transcripts[s.SessionKey] = transcript
	f.runKeys[s.SessionKey] = make([]string, len(transcript))
}

// setRun stores a session whose transcript holds msgs appended by the run key (what a run
// interrupted by a restart left).
func (f *fakeSessions) setRun(s wire.Session, key string, msgs ...schemas.ChatMessage) {
	f.set(s, msgs...)
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.runKeys[s.SessionKey] {
		f.runKeys[s.SessionKey][i] = key
	}
}

func (f *fakeSessions) get(key string) (wire.Session, []schemas.ChatMessage) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sessions[key], append([]schemas.ChatMessage(nil), f.transcripts[key]...)
}

// getLocked returns the session of key, creating it.
func (f *fakeSessions) getLocked(key, id string) wire.Session {
	s, ok := f.sessions[key]
	if !ok {
		s = wire.Session{SessionKey: key, SessionID: "sid-" + key, Created: true}
	}
	if id != "" {
		s.SessionID = id
	}
	f.sessions[key] = s
	return s
}

func (f *fakeSessions) resolve(_ context.Context, data []byte, _ nats.Header) (any, error) {
	var r wire.SessionResolve
	if err := json.Unmarshal(data, &r); err != nil || r.SessionKey == "" {
		return nil, wire.Invalid("bad resolve %s", data)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.getLocked(r.SessionKey, r.SessionID), nil
}

func (f *fakeSessions) update(_ context.Context, data []byte, _ nats.Header) (any, error) {
	var u wire.SessionUpdate
	if err := json.Unmarshal(data, &u); err != nil || u.SessionKey == "" {
		return nil, wire.Invalid("bad update %s", data)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.updates = append(f.updates, u)
	s := f.getLocked(u.SessionKey, "")
	if u.ThinkingLevel != nil {
		s.ThinkingLevel = *u.ThinkingLevel
	}
	if u.LastChannel != nil {
		s.LastChannel = *u.LastChannel
	}
	if u.LastTo != nil {
		s.LastTo = *u.LastTo
	}
	f.sessions[u.SessionKey] = s
	return s, nil
}

func (f *fakeSessions) append(_ context.Context, data []byte, _ nats.Header) (any, error) {
	var a wire.TranscriptAppend
	if err := json.Unmarshal(data, &a); err != nil || a.SessionKey == "" {
		return nil, wire.Invalid("bad append %s", data)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failReplies != nil && len(a.Messages) > 0 && a.Messages[0].Role == "assistant" {
		return nil, f.failReplies
	}
	s := f.getLocked(a.SessionKey, a.SessionID)
	res := wire.TranscriptAppended{Session: s}
	for i, k := range f.runKeys[a.SessionKey] {
		if m := f.transcripts[a.SessionKey][i]; a.RunKey != "" && k == a.RunKey && m.Role == "assistant" {
			res.RunReply = &m
		}
	}
	for _, m := range a.Messages {
		if a.RunKey != "" && f.appendedLocked(a.SessionKey, a.RunKey, m.Role) {
			continue // as the sessions service: a run's message is appended once
		}
		f.transcripts[a.SessionKey] = append(f.transcripts[a.SessionKey], m)
		f.runKeys[a.SessionKey] = append(f.runKeys[a.SessionKey], a.RunKey)
	}
	return res, nil
}

// appendedLocked reports whether the run key appended a message of role to the session.
func (f *fakeSessions) appendedLocked(session, key, role string) bool {
	for i, k := range f.runKeys[session] {
		if k == key && f.transcripts[session][i].Role == role {
			return true
		}
	}
	return false
}

func (f *fakeSessions) history(_ context.Context, data []byte, _ nats.Header) (any, error) {
	var r wire.HistoryRequest
	if err := json.Unmarshal(data, &r); err != nil || r.SessionKey == "" {
		return nil, wire.Invalid("bad history request %s", data)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.histories = append(f.histories, r)
	var msgs []schemas.ChatMessage
	for i, m := range f.transcripts[r.SessionKey] {
		if r.ExceptRun == "" || i >= len(f.runKeys[r.SessionKey]) || f.runKeys[r.SessionKey][i] != r.ExceptRun {
			msgs = append(msgs, m)
		}
	}
	if r.Limit > 0 && len(msgs) > r.Limit {
		msgs = msgs[len(msgs)-r.Limit:]
	}
	s := f.sessions[r.SessionKey]
	return schemas.ChatHistoryResult{SessionKey: r.SessionKey, SessionID: s.SessionID,
		Messages: append([]schemas.ChatMessage{}, msgs...), ThinkingLevel: s.ThinkingLevel}, nil
}

// event is one agent or chat event as received, in arrival order.
type event struct {
	agent *schemas.AgentEventPayload
	chat  *schemas.ChatEventPayload
}

// collector records every agent and chat event, checking each against the event schema.
type collector struct {
	t       testing.TB
	mu      sync.Mutex
	all     []event
	bad     []string
	changed chan struct{} // closed and replaced on every event
}

func newCollector(t testing.TB, nc *nats.Conn) *collector {
	c := &collector{t: t, changed: make(chan struct{})}
	sub, err := nc.Subscribe(subject.AgentRunAll, c.onMsg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, b := range c.bad {
			t.Error(b)
		}
	})
	return c
}

// onMsg records the agent and chat events of every run; heartbeats and finals are checked
// for their subject only.
func (c *collector) onMsg(msg *nats.Msg) {
	name, ev := schemas.EventAgent, event{}
	var err error
	kind := msg.Header.Get(wire.HeaderRunEvent)
	switch kind {
	case wire.RunEventHeartbeat, wire.RunEventFinal:
		if !strings.HasPrefix(msg.Subject, subject.AgentRunEvents("")) {
			c.mu.Lock()
			c.bad = append(c.bad, fmt.Sprintf("%s event on %s, not an agent run's subject", kind, msg.Subject))
			c.mu.Unlock()
		}
		return
	case wire.RunEventAgent, wire.RunEventChat, wire.RunEventChatDelta:
	default:
		c.mu.Lock()
		c.bad = append(c.bad, fmt.Sprintf("run event of unknown kind %q on %s", kind, msg.Subject))
		c.mu.Unlock()
		return
	}
	if kind != wire.RunEventAgent {
		name, ev.chat = schemas.EventChat, &schemas.ChatEventPayload{}
		err = json.Unmarshal(msg.Data, ev.chat)
	} else {
		ev.agent = &schemas.AgentEventPayload{}
		err = json.Unmarshal(msg.Data, ev.agent)
	}
	frame := fmt.Sprintf(`{"type":"event","event":%q,"payload":%s}`, name, msg.Data)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		c.bad = append(c.bad, fmt.Sprintf("undecodable %s event %s: %v", name, msg.Data, err))
		return
	}
	if ev.chat != nil && (ev.chat.State == chatDelta) != (kind == wire.RunEventChatDelta) {
		c.bad = append(c.bad, fmt.Sprintf("chat event of state %s published as %s", ev.chat.State, kind))
	}
	if set, serr := loadSchemas(); serr != nil {
		c.bad = append(c.bad, serr.Error())
	} else if verr := set.ServerFrame([]byte(frame)); verr != nil {
		c.bad = append(c.bad, fmt.Sprintf("invalid %s event %s: %v", name, msg.Data, verr))
	}
	c.all = append(c.all, ev)
	close(c.changed)
	c.changed = make(chan struct{})
}

// waitFor waits until cond holds for the events received so far and returns them.
func (c *collector) waitFor(what string, cond func([]event) bool) []event {
	c.t.Helper()
	timeout := time.After(waitLimit)
	for {
		c.mu.Lock()
		all, changed := append([]event(nil), c.all...), c.changed
		c.mu.Unlock()
		if cond(all) {
			return all
		}
		select {
		case <-changed:
		case <-timeout:
			c.t.Fatalf("timed out waiting for %s; events: %s", what, describe(all))
		}
	}
}

// snapshot returns the events received so far.
func (c *collector) snapshot() []event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]event(nil), c.all...)
}

func describe(evs []event) string {
	s := ""
	for _, e := range evs {
		if e.agent != nil {
			s += fmt.Sprintf("\n  agent %s #%d %s %s", e.agent.RunID, e.agent.Seq, e.agent.Stream, e.agent.Data)
		} else {
			s += fmt.Sprintf("\n  chat %s #%d %s %q", e.chat.RunID, e.chat.Seq, e.chat.State, chatText(e.chat))
		}
	}
	return s
}

// agentOf returns the agent events of runID.
func agentOf(evs []event, runID string) []schemas.AgentEventPayload {
	var out []schemas.AgentEventPayload
	for _, e := range evs {
		if e.agent != nil && e.agent.RunID == runID {
			out = append(out, *e.agent)
		}
	}
	return out
}

// chatOf returns the chat events of runID.
func chatOf(evs []event, runID string) []schemas.ChatEventPayload {
	var out []schemas.ChatEventPayload
	for _, e := range evs {
		if e.chat != nil && e.chat.RunID == runID {
			out = append(out, *e.chat)
		}
	}
	return out
}

// jobState returns the state of a job event ("" for other streams).
func jobState(e schemas.AgentEventPayload) string {
	if e.Stream != streamJob {
		return ""
	}
	var d struct {
		State string `json:"state"`
	}
	_ = json.Unmarshal(e.Data, &d)
	return d.State
}

// assistantText returns the text of an assistant event.
func assistantText(e schemas.AgentEventPayload) string {
	var d struct {
		Text string `json:"text"`
	}
	_ = json.Unmarshal(e.Data, &d)
	return d.Text
}

func chatText(e *schemas.ChatEventPayload) string {
	if e.Message == nil {
		return ""
	}
	s := ""
	for _, c := range e.Message.Content {
		s += c.Text
	}
	return s
}

// index returns the position in evs of the first agent event of runID matching pred, or -1.
func index(evs []event, runID string, pred func(schemas.AgentEventPayload) bool) int {
	for i, e := range evs {
		if e.agent != nil && e.agent.RunID == runID && pred(*e.agent) {
			return i
		}
	}
	return -1
}

func isJob(state string) func(schemas.AgentEventPayload) bool {
	return func(e schemas.AgentEventPayload) bool { return jobState(e) == state }
}

// ended reports whether runID published its closing job event.
func ended(runID string) func([]event) bool {
	return func(evs []event) bool {
		return index(evs, runID, isJob("done")) >= 0 || index(evs, runID, isJob("error")) >= 0 ||
			index(evs, runID, isJob(schemas.RunAborted)) >= 0
	}
}

// chatEnded reports whether runID published its closing job event and its closing chat
// event (the two subjects arrive on separate subscriptions, in no order between them).
func chatEnded(runID string) func([]event) bool {
	return func(evs []event) bool {
		c := chatOf(evs, runID)
		return ended(runID)(evs) && len(c) > 0 && c[len(c)-1].State != chatDelta
	}
}

// checkSeq checks that the agent events of a run count 1, 2, 3….
func checkSeq(t testing.TB, evs []schemas.AgentEventPayload) {
	t.Helper()
	for i, e := range evs {
		if e.Seq != int64(i+1) {
			t.Fatalf("event %d of run %s has seq %d, want %d", i, e.RunID, e.Seq, i+1)
		}
	}
}
