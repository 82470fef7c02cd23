package health

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/clawdis/clawdis/bus/subject"
	"github.com/clawdis/clawdis/bus/wire"
	"github.com/nats-io/nats.go"
)

// sessionsTimeout bounds the request to the sessions service in each probe round.
const sessionsTimeout = 250 * time.Millisecond

// sessionsRequest is the body of a subject.SessionsSummary request.
type sessionsRequest struct {
	Limit int `json:"limit"`
}

// prober runs probe rounds: a liveness ping of every configured service and a refresh of the
// session summary. Only the prober goroutine uses it.
type prober struct {
	nc          *nats.Conn
	log         *slog.Logger
	names       []string // service names, Config order
	pingSubj    []string // $SRV.PING.<name>, same order
	pingTimeout time.Duration
	statusSubj  []string // the providers' status subjects
	file        *sessionsFile
	fromFile    bool // the last sessions refresh fell back to the file
}

// round pings every service concurrently and meanwhile fetches the sessions summary and the
// providers' current states. Asking for the states, not only listening to their change
// events, is what lets a health service that restarted, or missed events while the bus was
// down, see a provider that has not changed since.
func (p *prober) round(ctx context.Context) ([]serviceState, sessionsView, []wire.ProviderState) {
	results := make([]serviceState, len(p.names))
	states := make([]*wire.ProviderState, len(p.statusSubj))
	var sessions sessionsView
	var wg sync.WaitGroup
	for i := range p.names {
		wg.Go(func() {
			ok, latency := p.ping(ctx, p.pingSubj[i])
			results[i] = serviceState{name: p.names[i], probed: true, ok: ok, latency: latency}
		})
	}
	for i := range p.statusSubj {
		wg.Go(func() { states[i] = p.providerState(ctx, p.statusSubj[i]) })
	}
	wg.Go(func() { sessions = p.sessions(ctx) })
	wg.Wait()
	var providers []wire.ProviderState
	for _, st := range states {
		if st != nil {
			providers = append(providers, *st)
		}
	}
	return results, sessions, providers
}

// providerState asks a provider for its latest state; nil when it does not answer or has
// not reported one yet.
func (p *prober) providerState(ctx context.Context, subj string) *wire.ProviderState {
	ctx, cancel := context.WithTimeout(ctx, p.pingTimeout)
	defer cancel()
	var st wire.ProviderState
	if err := wire.RequestJSON(ctx, p.nc, subj, nil, &st); err != nil || st.Provider == "" {
		return nil
	}
	return &st
}

// ping asks one service for its micro PING reply; any reply within the timeout counts as alive.
func (p *prober) ping(ctx context.Context, subj string) (bool, time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, p.pingTimeout)
	defer cancel()
	start := time.Now()
	_, err := p.nc.RequestWithContext(ctx, subj, nil)
	return err == nil, time.Since(start)
}

// sessions asks the sessions service for its summary and reads the store file itself when the
// service does not answer.
func (p *prober) sessions(ctx context.Context) sessionsView {
	ctx, cancel := context.WithTimeout(ctx, sessionsTimeout)
	defer cancel()
	var sum wire.SessionsSummary
	err := wire.RequestJSON(ctx, p.nc, subject.SessionsSummary, sessionsRequest{Limit: recentLimit}, &sum)
	if err == nil {
		p.fromFile = false
		return sessionsView{count: sum.Count, recent: topRecent(sum.Sessions)}
	}
	if !p.fromFile {
		p.fromFile = true
		p.log.Debug("sessions service unavailable, reading the store file", "path", p.file.path, "err", err)
	}
	return p.file.read()
}

// topRecent returns the recentLimit most recently updated sessions, newest first (ties by key).
func topRecent(all []wire.SessionInfo) []wire.SessionInfo {
	out := slices.Clone(all)
	slices.SortFunc(out, func(a, b wire.SessionInfo) int {
		if c := cmp.Compare(b.UpdatedAt, a.UpdatedAt); c != 0 {
			return c
		}
		return cmp.Compare(a.Key, b.Key)
	})
	if len(out) > recentLimit {
		out = out[:recentLimit]
	}
	return slices.Clip(out)
}

// sessionEntry is the part of one session store entry the summaries use.
type sessionEntry struct {
	SessionID     string  `json:"sessionId"`
	UpdatedAt     float64 `json:"updatedAt"`
	ThinkingLevel string  `json:"thinkingLevel"`
}

// sessionsFile reads the session store file (JSON object sessionKey -> entry). It re-parses the
// file only when its size or modification time changed, and warns once per broken file.
type sessionsFile struct {
	path string
	log  *slog.Logger

	modTime time.Time
	size    int64
	view    sessionsView
	valid   bool // view matches modTime/size
	warned  bool // the current file is broken and that was logged
}

// read returns the store's summary: count 0 when there is no path, no file, or a broken file.
func (f *sessionsFile) read() sessionsView {
	if f.path == "" {
		return sessionsView{}
	}
	fi, err := os.Stat(f.path)
	if err != nil {
		f.valid = false
		if !errors.Is(err, fs.ErrNotExist) {
			f.warnOnce(fmt.Errorf("stat session store: %w", err))
		}
		return sessionsView{}
	}
	if f.valid && fi.ModTime().Equal(f.modTime) && fi.Size() == f.size {
		return f.view
	}
	view, err := parseSessions(f.path)
	if err != nil {
		f.valid = false
		f.warnOnce(err)
		return sessionsView{}
	}
	f.modTime, f.size, f.view, f.valid, f.warned = fi.ModTime(), fi.Size(), view, true, false
	return view
}

func (f *sessionsFile) warnOnce(err error) {
	if f.warned {
		return
	}
	f.warned = true
	f.log.Warn("session store unreadable, counting no sessions", "path", f.path, "err", err)
}

// parseSessions reads and decodes the store file at path.
func parseSessions(path string) (sessionsView, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return sessionsView{}, nil
		}
		return sessionsView{}, fmt.Errorf("read session store: %w", err)
	}
	var store map[string]sessionEntry
	if err := json.Unmarshal(data, &store); err != nil {
		return sessionsView{}, fmt.Errorf("decode session store: %w", err)
	}
	all := make([]wire.SessionInfo, 0, len(store))
	for key, e := range store {
		all = append(all, wire.SessionInfo{
			Key:           key,
			SessionID:     e.SessionID,
			UpdatedAt:     int64(e.UpdatedAt),
			ThinkingLevel: e.ThinkingLevel,
		})
	}
	return sessionsView{count: len(store), recent: topRecent(all)}, nil
}
