package health

import "time"

// schedule decides when a health event is published: a change is published at once when the
// previous event is at least min old, otherwise at the end of that min interval (changes in
// between are coalesced into one event); without any change an event still goes out once the
// previous one is max old. It holds no clock: callers pass the time, so it is tested with plain
// time values.
type schedule struct {
	min, max time.Duration
	last     time.Time // when the last event was published
	started  bool      // whether any event was published yet
}

// decide reports whether to publish now, given whether the state differs from the one last
// published. When it says no, wait is how long until decide should be asked again (it may say
// yes then); a later change may make an earlier answer yes, so callers ask again on every change.
func (s *schedule) decide(now time.Time, changed bool) (publish bool, wait time.Duration) {
	if !s.started {
		return true, 0
	}
	elapsed := now.Sub(s.last)
	if elapsed >= s.max || (changed && elapsed >= s.min) {
		return true, 0
	}
	if changed {
		return false, s.min - elapsed
	}
	return false, s.max - elapsed
}

// published records that an event went out at now.
func (s *schedule) published(now time.Time) {
	s.last = now
	s.started = true
}
