package sessions

import (
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/clawdis/clawdis/bus/bustest"
	"github.com/clawdis/clawdis/bus/subject"
	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/schemas"
)

// TestHammer: many concurrent callers mixing resolve, update and append on a few shared keys
// (plus one key of their own each) lose nothing: a fresh service on the same directory sees
// every key with the one session id every caller was given, the last update of each key,
// and every transcript message, each request's lines together and each caller's in order.
func TestHammer(t *testing.T) {
	const (
		callers = 40
		ops     = 25
		keys    = 4
	)
	b := bustest.New(t)
	dir := filepath.Join(t.TempDir(), "sessions")
	clock := &tickClock{} // each change gets a later updatedAt, in the order it was made
	h := startOn(t, b, Config{Dir: dir, Now: clock.Now})

	type update struct {
		at     int64 // the updatedAt the update returned: its place in the service's order
		lastTo string
	}
	var (
		mu      sync.Mutex
		ids     = map[string]map[string]bool{} // key -> session ids returned
		updates = map[string][]update{}        // key -> updates made
		maxAt   = map[string]int64{}           // key -> newest updatedAt returned
		appends = map[string]int{}             // key -> messages appended
	)
	record := func(s wire.Session) {
		mu.Lock()
		defer mu.Unlock()
		if ids[s.SessionKey] == nil {
			ids[s.SessionKey] = map[string]bool{}
		}
		ids[s.SessionKey][s.SessionID] = true
		maxAt[s.SessionKey] = max(maxAt[s.SessionKey], s.UpdatedAt)
	}
	var wg sync.WaitGroup
	for g := range callers {
		wg.Go(func() {
			own := fmt.Sprintf("own-%d", g)
			for j := range ops {
				key := fmt.Sprintf("k%d", (g+j)%keys)
				if j == 0 {
					key = own
				}
				var (
					s   wire.Session
					err error
				)
				switch j % 3 {
				case 0:
					to := fmt.Sprintf("to-%d-%d", g, j)
					s, err = call[wire.Session](h, subject.SessionsUpdate, wire.SessionUpdate{SessionKey: key, LastTo: &to})
					if err == nil {
						mu.Lock()
						updates[key] = append(updates[key], update{at: s.UpdatedAt, lastTo: to})
						mu.Unlock()
					}
				case 1:
					s, err = call[wire.Session](h, subject.SessionsResolve, wire.SessionResolve{SessionKey: key})
				case 2:
					s, err = call[wire.Session](h, subject.SessionsAppend, wire.TranscriptAppend{SessionKey: key,
						Messages: []schemas.ChatMessage{
							text("user", fmt.Sprintf("q %d %d", g, j), 1),
							text("assistant", fmt.Sprintf("a %d %d", g, j), 2),
						}})
					if err == nil {
						mu.Lock()
						appends[key] += 2
						mu.Unlock()
					}
				}
				if err != nil {
					t.Errorf("caller %d op %d on %s: %v", g, j, key, err)
					return
				}
				record(s)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	h.stop()

	fresh := startOn(t, b, Config{Dir: dir})
	sum := mustCall[wire.SessionsSummary](t, fresh, subject.SessionsSummary, map[string]int{"limit": MaxSummaryLimit})
	if sum.Count != callers+keys {
		t.Errorf("fresh service counts %d sessions, want %d", sum.Count, callers+keys)
	}
	for _, info := range sum.Sessions {
		key := info.Key
		if len(ids[key]) != 1 || !ids[key][info.SessionID] {
			t.Errorf("%s: stored id %s, ids handed out %v (want exactly that one)", key, info.SessionID, ids[key])
		}
		if info.UpdatedAt != maxAt[key] {
			t.Errorf("%s: updatedAt %d, want the newest returned %d", key, info.UpdatedAt, maxAt[key])
		}
		s := mustCall[wire.Session](t, fresh, subject.SessionsResolve, wire.SessionResolve{SessionKey: key})
		last := slices.MaxFunc(updates[key], func(a, b update) int { return int(a.at - b.at) })
		if s.LastTo != last.lastTo {
			t.Errorf("%s: lastTo %q, want %q of the last update", key, s.LastTo, last.lastTo)
		}
		hist := mustCall[schemas.ChatHistoryResult](t, fresh, subject.SessionsHistory,
			wire.HistoryRequest{SessionKey: key, Limit: MaxHistoryLimit})
		checkTranscript(t, key, hist.Messages, appends[key])
	}
}

// checkTranscript checks that msgs holds want messages, each question directly followed by
// its answer, and each caller's appends in the order it made them.
func checkTranscript(t *testing.T, key string, msgs []schemas.ChatMessage, want int) {
	t.Helper()
	if len(msgs) != want {
		t.Errorf("%s: %d transcript messages, want %d", key, len(msgs), want)
		return
	}
	lastOp := map[int]int{}
	for i := 0; i+1 < len(msgs); i += 2 {
		var g, j, g2, j2 int
		q, a := msgs[i].Content[0].Text, msgs[i+1].Content[0].Text
		if _, err := fmt.Sscanf(q, "q %d %d", &g, &j); err != nil {
			t.Fatalf("%s: message %d = %q, want a question", key, i, q)
		}
		if _, err := fmt.Sscanf(a, "a %d %d", &g2, &j2); err != nil || g2 != g || j2 != j {
			t.Fatalf("%s: question %q followed by %q", key, q, a)
		}
		if prev, ok := lastOp[g]; ok && j <= prev {
			t.Errorf("%s: caller %d op %d after op %d", key, g, j, prev)
		}
		lastOp[g] = j
	}
}
