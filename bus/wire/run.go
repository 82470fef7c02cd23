package wire

import (
	"encoding/json"
	"time"

	"github.com/clawdis/clawdis/schemas"
)

// Run lifecycle events (DESIGN "Events, not polling"). An agent run publishes every event of
// its life on subject.AgentRunEvents(runID), a chat.send turn on subject.ChatRunEvents(runID);
// the header HeaderRunEvent names the kind of each, so that the edge forwards the data to
// clients without decoding it.
const (
	HeaderRunEvent = "Clawdis-Run-Event"

	// RunEventAgent carries a schemas.AgentEventPayload, broadcast to clients as "agent"
	// (job started, assistant text, tool use, job done or error).
	RunEventAgent = "agent"
	// RunEventChat carries a final or error schemas.ChatEventPayload, broadcast as "chat".
	RunEventChat = "chat"
	// RunEventChatDelta carries a delta schemas.ChatEventPayload, broadcast as "chat";
	// droppable for a slow client, since the next delta or the final carries the whole text.
	RunEventChatDelta = "chat.delta"
	// RunEventHeartbeat carries a RunHeartbeatData: the run is queued, running, or stored
	// to run again. Agent runs only.
	RunEventHeartbeat = "heartbeat"
	// RunEventFinal carries the RunFinal of an agent run; it is the run's last event.
	RunEventFinal = "final"
)

// RunHeartbeat is how often an agent run publishes RunEventHeartbeat while it is queued or
// running. A waiter that hears nothing of a run for RunQuietBeats of them asks the agent
// service (subject.AgentStatus) whether it still knows the run.
const (
	RunHeartbeat  = 5 * time.Second
	RunQuietBeats = 3
)

// RunFinishGrace is how long past a run's deadline a waiter still waits for its final
// (SPEC §13): then it gives up with UNAVAILABLE "the run did not finish by its deadline".
const RunFinishGrace = 10 * time.Second

// RunHeartbeatData is the data of a heartbeat: the run's deadline, so that a waiter knows
// how long to wait through a restart of the agent service.
type RunHeartbeatData struct {
	Deadline int64 `json:"deadline"` // unix ms: acceptance plus the run's timeout
}

// HeaderRunFinal, set on the reply to an agent.run request, says that the run of that
// idempotency key had already finished: the body is its RunFinal, which the caller answers
// with once, and no acknowledgement follows (SPEC §6.5).
const HeaderRunFinal = "Clawdis-Run-Final"

// RunFinal is the outcome of an agent run: the agent method's second res (SPEC §6.6). On
// failure both Payload ({runId, status, summary}) and Error are set.
type RunFinal struct {
	OK      bool            `json:"ok"`
	Payload json.RawMessage `json:"payload,omitempty"`
	Error   *Error          `json:"error,omitempty"`
}

// RunStatusRequest asks the agent service about one agent run (subject.AgentStatus).
type RunStatusRequest struct {
	RunID string `json:"runId"`
}

// Run states of RunStatus.
const (
	RunRunning = "running" // queued, running, or stored to run again
	RunDone    = "done"    // finished; Final is set
	RunUnknown = "unknown" // never accepted, or forgotten (a restart of the service)
)

// RunStatus answers RunStatusRequest.
type RunStatus struct {
	State    string    `json:"state"`
	Final    *RunFinal `json:"final,omitempty"`
	Deadline int64     `json:"deadline,omitempty"` // unix ms, of a running run
}

// SessionBusyRequest asks the agent service whether runs of one session are in progress
// (subject.AgentBusy). The sessions service asks it before sessions.reset: the agent owns
// run state (DESIGN "State lives with its owner").
type SessionBusyRequest struct {
	SessionKey string `json:"sessionKey"`
}

// SessionBusy answers SessionBusyRequest: the runs of the session that are running or
// queued, oldest first (empty when none).
type SessionBusy struct {
	RunIDs []string `json:"runIds"`
}

// AgentRunRequest is the body of an agent.run request on the bus: the agent method's params
// and, from services that turn provider messages into runs (autoreply), where the prompt
// came from. Clients cannot set Origin: the edge validates their params against the
// AgentParams schema, which allows no other field.
type AgentRunRequest struct {
	schemas.AgentParams
	Origin *RunOrigin `json:"origin,omitempty"`
}

// RunOrigin is the provider message a run answers: it is kept with the user message in the
// transcript (schemas.ChatMessage Channel and Sender).
type RunOrigin struct {
	Channel string `json:"channel"`          // whatsapp or telegram
	Sender  string `json:"sender,omitempty"` // the sender's name, else number or user id
}
