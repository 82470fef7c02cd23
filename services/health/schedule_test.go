package health

import (
	"testing"
	"time"
)

func TestScheduleDecide(t *testing.T) {
	type step struct {
		at          time.Duration // since the test's epoch
		changed     bool
		wantPublish bool
		wantWait    time.Duration // only checked when no publish
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"first decision publishes at once", []step{
			{at: 0, changed: false, wantPublish: true},
		}},
		{"change within the second waits for its end", []step{
			{at: 0, wantPublish: true},
			{at: 300 * time.Millisecond, changed: true, wantWait: 700 * time.Millisecond},
			{at: 999 * time.Millisecond, changed: true, wantWait: time.Millisecond},
			{at: time.Second, changed: true, wantPublish: true},
		}},
		{"change after the second publishes at once", []step{
			{at: 0, wantPublish: true},
			{at: 1500 * time.Millisecond, changed: true, wantPublish: true},
			{at: 1600 * time.Millisecond, changed: true, wantWait: 900 * time.Millisecond},
		}},
		{"no change waits for the max interval", []step{
			{at: 0, wantPublish: true},
			{at: 10 * time.Millisecond, wantWait: 60*time.Second - 10*time.Millisecond},
			{at: 30 * time.Second, wantWait: 30 * time.Second},
			{at: 60 * time.Second, wantPublish: true},
			{at: 61 * time.Second, wantWait: 59 * time.Second},
			{at: 125 * time.Second, wantPublish: true},
		}},
		{"a coalesced change restarts both intervals", []step{
			{at: 0, wantPublish: true},
			{at: 100 * time.Millisecond, changed: true, wantWait: 900 * time.Millisecond},
			{at: 1100 * time.Millisecond, changed: true, wantPublish: true},
			{at: 1200 * time.Millisecond, wantWait: 59900 * time.Millisecond},
			{at: 1300 * time.Millisecond, changed: true, wantWait: 800 * time.Millisecond},
		}},
	}
	epoch := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := schedule{min: time.Second, max: 60 * time.Second}
			for i, st := range tt.steps {
				now := epoch.Add(st.at)
				publish, wait := s.decide(now, st.changed)
				if publish != st.wantPublish {
					t.Fatalf("step %d (at %s, changed %v): publish = %v, want %v", i, st.at, st.changed, publish, st.wantPublish)
				}
				if publish {
					s.published(now)
					continue
				}
				if wait != st.wantWait {
					t.Fatalf("step %d (at %s, changed %v): wait = %s, want %s", i, st.at, st.changed, wait, st.wantWait)
				}
			}
		})
	}
}
