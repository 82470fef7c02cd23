package wire

import "encoding/json"

// AgentWait asks the agent service for the final result of a run, waiting up to WaitMs
// (long poll). The edge repeats it until Done.
type AgentWait struct {
	RunID  string `json:"runId"`
	WaitMs int64  `json:"waitMs"`
}

// AgentFinal answers AgentWait. Done is false while the run is still going after WaitMs.
// When Done, OK/Payload/Error are the second res of the agent method (SPEC §6.6): on
// failure both Payload ({runId, status, summary}) and Error are set. A run the service does
// not know (never started, or lost in a restart of the service) is Done with an
// UNAVAILABLE error saying so.
type AgentFinal struct {
	Done    bool            `json:"done"`
	OK      bool            `json:"ok,omitempty"`
	Payload json.RawMessage `json:"payload,omitempty"`
	Error   *Error          `json:"error,omitempty"`
}
