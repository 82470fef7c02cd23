package sessions

import (
	"context"
	"encoding/json"
	"reflect"
	"time"

	"github.com/clawdis/clawdis/bus/subject"
	"github.com/clawdis/clawdis/bus/wire"
)

// changed tells the publish loop that the store may have changed; it never blocks.
func (s *Service) changed() {
	select {
	case s.changes <- struct{}{}:
	default:
	}
}

// publishLoop publishes the summary on subject.SessionsChanged after each change until ctx
// ends: the first change at once, the changes made during the following EventInterval in
// one event at its end. A change still pending when ctx ends is published before it
// returns, so listeners see the last state.
func (s *Service) publishLoop(ctx context.Context) {
	var last wire.SessionsSummary
	timer := time.NewTimer(s.cfg.EventInterval)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			s.publishPending(&last)
			return
		case <-s.changes:
		}
		s.publishChange(&last)
		timer.Reset(s.cfg.EventInterval)
		select {
		case <-ctx.Done():
			s.publishPending(&last)
			return
		case <-timer.C:
		}
	}
}

// publishPending publishes a change not yet published.
func (s *Service) publishPending(last *wire.SessionsSummary) {
	select {
	case <-s.changes:
		s.publishChange(last)
	default:
	}
}

// publishChange publishes the current summary unless it equals last, which it then
// becomes. An unreadable store publishes nothing (requests report it).
func (s *Service) publishChange(last *wire.SessionsSummary) {
	sum, err := s.summary(DefaultSummaryLimit)
	if err != nil || reflect.DeepEqual(sum, *last) {
		return
	}
	data, err := json.Marshal(sum)
	if err != nil {
		s.log.Error("encode sessions changed event", "err", err)
		return
	}
	if err := s.nc.Publish(subject.SessionsChanged, data); err != nil {
		s.log.Warn("publish sessions changed event", "err", err)
		return
	}
	*last = sum
}
