package health

import (
	"encoding/json"

	"github.com/clawdis/clawdis/schemas"
)

// DefaultMaxBytes is the default of Config.MaxBytes: gateway.maxPayload's default.
const DefaultMaxBytes = 524288

// statusReserve is the room a status answer leaves in a frame for the res envelope.
const statusReserve = 4 << 10

// healthBudget is the encoded size a HealthSummary may take out of a frame of maxBytes: a
// hello-ok carries it beside the presence list, which takes at most half.
func healthBudget(maxBytes int) int { return maxBytes / 4 }

// boundHealth leaves out the oldest recent sessions until sum, encoded, takes at most
// budget bytes (SPEC §5.4). Session keys come from clients and may be long.
func boundHealth(sum *schemas.HealthSummary, budget int) {
	size := encodedLen(sum)
	recent := sum.Sessions.Recent
	for size > budget && len(recent) > 0 {
		size -= encodedLen(recent[len(recent)-1]) + comma(len(recent))
		recent = recent[:len(recent)-1]
	}
	sum.Sessions.Recent = recent
}

// boundStatus leaves out the oldest queued system events, then the oldest recent sessions,
// until sum, encoded, takes at most budget bytes (SPEC §5.4).
func boundStatus(sum *schemas.StatusSummary, budget int) {
	size := encodedLen(sum)
	queued := sum.QueuedSystemEvents // oldest first
	for size > budget && len(queued) > 0 {
		size -= encodedLen(queued[0]) + comma(len(queued))
		queued = queued[1:]
	}
	recent := sum.Sessions.Recent // newest first
	for size > budget && len(recent) > 0 {
		size -= encodedLen(recent[len(recent)-1]) + comma(len(recent))
		recent = recent[:len(recent)-1]
	}
	sum.QueuedSystemEvents, sum.Sessions.Recent = queued, recent
}

// comma is the separator that goes with one of n array elements.
func comma(n int) int {
	if n > 1 {
		return 1
	}
	return 0
}

// encodedLen is the length of v encoded as JSON.
func encodedLen(v any) int {
	b, err := json.Marshal(v)
	if err != nil {
		return 0 // never happens: summaries are plain values
	}
	return len(b)
}
