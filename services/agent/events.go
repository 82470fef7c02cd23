package agent

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/schemas"
)

// chatDeltaInterval is the least time between two chat delta events of one run.
const chatDeltaInterval = 100 * time.Millisecond

// Agent event streams and chat event states.
const (
	streamJob       = "job"
	streamAssistant = "assistant"
	streamTool      = "tool"

	chatDelta = "delta"
	chatFinal = "final"
	chatError = "error"
)

// emitter publishes the events of one run. It is used by the run's goroutine only.
type emitter struct {
	s          *Service
	runID      string
	sessionKey string
	chat       bool   // also publish chat events
	subj       string // the run's events subject
	lastDelta  string // text of the last chat delta sent

	agentSeq int64
	chatSeq  int64
	// lastChat is the final or error chat event: what a chat turn remembers, so that a
	// repeat of it replays the event. It is published after the turn's final was stored.
	lastChat []byte
	text     strings.Builder // the whole assistant text so far
	throttle throttle
}

func (s *Service) newEmitter(j *job) *emitter {
	return &emitter{s: s, runID: j.runID, sessionKey: j.sessionKey, chat: j.kind == kindChat,
		subj: j.eventsSubject(), throttle: throttle{every: chatDeltaInterval}}
}

// agent publishes one agent event.
func (e *emitter) agent(stream string, data any) {
	raw, err := json.Marshal(data)
	if err != nil {
		e.s.log.Error("encode agent event", "run_id", e.runID, "err", err)
		return
	}
	e.agentSeq++
	e.publish(wire.RunEventAgent, schemas.AgentEventPayload{
		RunID:      e.runID,
		SessionKey: e.sessionKey,
		Seq:        e.agentSeq,
		Stream:     stream,
		Ts:         e.s.cfg.Now().UnixMilli(),
		Data:       raw,
	})
}

// Data of the agent event streams.
type (
	jobData struct {
		State      string `json:"state"`
		Error      string `json:"error,omitempty"`
		DurationMs *int64 `json:"durationMs,omitempty"`
	}
	assistantData struct {
		Text string `json:"text"`
	}
	toolData struct {
		Phase string `json:"phase"`
		Name  string `json:"name"`
	}
)

// jobStarted, jobDone and jobError publish the job stream; durations count from the
// run's acceptance.
func (e *emitter) jobStarted() { e.agent(streamJob, jobData{State: "started"}) }

func (e *emitter) jobDone(d time.Duration) {
	ms := d.Milliseconds()
	e.agent(streamJob, jobData{State: "done", DurationMs: &ms})
}

func (e *emitter) jobError(msg string, d time.Duration) {
	ms := d.Milliseconds()
	e.agent(streamJob, jobData{State: "error", Error: msg, DurationMs: &ms})
}

func (e *emitter) jobAborted(d time.Duration) {
	ms := d.Milliseconds()
	e.agent(streamJob, jobData{State: schemas.RunAborted, DurationMs: &ms})
}

// partial is the text the run produced so far, surrounding whitespace trimmed.
func (e *emitter) partial() string { return strings.TrimSpace(e.text.String()) }

// output publishes a backend's progress. It returns how long until a held-back chat delta
// may go out (0: nothing held back).
func (e *emitter) output(o output, now time.Time) time.Duration {
	if o.Tool != "" {
		e.agent(streamTool, toolData{Phase: "call", Name: o.Tool})
		return 0
	}
	if o.Text == "" {
		return 0
	}
	e.text.WriteString(o.Text)
	e.agent(streamAssistant, assistantData{Text: o.Text})
	if !e.chat {
		return 0
	}
	send, wait := e.throttle.offer(now)
	if send {
		e.chatDelta()
	}
	return wait
}

// flush publishes a held-back chat delta when its time has come; it returns the time
// still to wait, as output does.
func (e *emitter) flush(now time.Time) time.Duration {
	send, wait := e.throttle.due(now)
	if send {
		e.chatDelta()
	}
	return wait
}

// chatDelta publishes the text so far with surrounding whitespace trimmed, so that every
// delta is a prefix of the final text (which is trimmed too); an empty or unchanged text is
// not sent.
func (e *emitter) chatDelta() {
	text := strings.TrimSpace(e.text.String())
	if text == "" || text == e.lastDelta {
		return
	}
	e.lastDelta = text
	e.chatEvent(chatDelta, e.assistantMessage(text), "")
}

// chatFinal prepares the final chat event with the complete reply, trimmed, as lastChat;
// publishLastChat sends it once the turn's final is stored.
func (e *emitter) chatFinal(text string) {
	if e.chat {
		e.lastChat = e.chatPayload(chatFinal, e.assistantMessage(strings.TrimSpace(text)), "")
	}
}

// chatError prepares the chat error event as lastChat, as chatFinal does.
func (e *emitter) chatError(msg string) {
	if e.chat {
		e.lastChat = e.chatPayload(chatError, nil, msg)
	}
}

// chatAborted prepares the aborted chat event as lastChat, as chatFinal does: it carries
// the text so far, marked aborted, when there is any.
func (e *emitter) chatAborted(text string) {
	if !e.chat {
		return
	}
	var msg *schemas.ChatMessage
	if text != "" {
		msg = e.assistantMessage(text)
		msg.Aborted = true
	}
	e.lastChat = e.chatPayload(schemas.ChatStateAborted, msg, "")
}

// publishLastChat publishes the final or error chat event prepared last, if any.
func (e *emitter) publishLastChat() {
	if e.lastChat != nil {
		e.s.publishRun(e.subj, e.runID, wire.RunEventChat, e.lastChat)
	}
}

// chatEvent publishes a chat delta.
func (e *emitter) chatEvent(state string, msg *schemas.ChatMessage, errMsg string) {
	if data := e.chatPayload(state, msg, errMsg); data != nil {
		e.s.publishRun(e.subj, e.runID, wire.RunEventChatDelta, data)
	}
}

// chatPayload encodes the next chat event of the run (nil when it cannot be encoded).
func (e *emitter) chatPayload(state string, msg *schemas.ChatMessage, errMsg string) []byte {
	e.chatSeq++
	data, err := json.Marshal(schemas.ChatEventPayload{
		RunID:        e.runID,
		SessionKey:   e.sessionKey,
		Seq:          e.chatSeq,
		State:        state,
		Message:      msg,
		ErrorMessage: errMsg,
	})
	if err != nil {
		e.s.log.Error("encode chat event", "run_id", e.runID, "err", err)
		return nil
	}
	return data
}

func (e *emitter) assistantMessage(text string) *schemas.ChatMessage {
	m := assistantMessage(text, e.s.cfg.Now())
	return &m
}

// assistantMessage is a transcript message of the assistant; an empty text has no parts.
func assistantMessage(text string, now time.Time) schemas.ChatMessage {
	content := []schemas.ChatContent{}
	if text != "" {
		content = append(content, schemas.ChatContent{Type: "text", Text: text})
	}
	return schemas.ChatMessage{Role: "assistant", Content: content, Timestamp: now.UnixMilli()}
}

// publish sends one event of the run's lifecycle; v nil sends no data.
func (e *emitter) publish(kind string, v any) {
	var data []byte
	if v != nil {
		var err error
		if data, err = json.Marshal(v); err != nil {
			e.s.log.Error("encode run event", "kind", kind, "run_id", e.runID, "err", err)
			return
		}
	}
	e.s.publishRun(e.subj, e.runID, kind, data)
}

// publishRun sends one run event on subj.
func (s *Service) publishRun(subj, runID, kind string, data []byte) {
	msg := &nats.Msg{Subject: subj, Data: data, Header: nats.Header{wire.HeaderRunEvent: []string{kind}}}
	if err := s.nc.PublishMsg(msg); err != nil {
		s.log.Warn("publish run event", "kind", kind, "run_id", runID, "err", err)
	}
}

// throttle spaces chat deltas at least every apart: a delta offered too early is held
// back and sent when due (unless a later offer or the final makes it moot).
type throttle struct {
	every   time.Duration
	last    time.Time // when the last delta went out; zero before the first
	pending bool
}

// offer is called when the text changed. send reports whether a delta goes out now; wait,
// when positive, is how long until the held-back delta is due.
func (t *throttle) offer(now time.Time) (send bool, wait time.Duration) {
	t.pending = true
	return t.due(now)
}

// due sends a pending delta when at least every has passed since the last one.
func (t *throttle) due(now time.Time) (send bool, wait time.Duration) {
	if !t.pending {
		return false, 0
	}
	if !t.last.IsZero() {
		if since := now.Sub(t.last); since < t.every {
			return false, t.every - since
		}
	}
	t.last, t.pending = now, false
	return true, 0
}
