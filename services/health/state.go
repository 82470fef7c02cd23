package health

import (
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/schemas"
)

// Provider names as they appear in wire.ProviderState.Provider.
const (
	providerWhatsApp = "whatsapp"
	providerTelegram = "telegram"
)

// recentLimit is how many recent sessions the summaries list.
const recentLimit = 5

// serviceState is the outcome of the last liveness ping of one service.
type serviceState struct {
	name    string
	probed  bool // false until the first ping finished
	ok      bool
	latency time.Duration
}

// sessionsView is what the service knows about the session store.
type sessionsView struct {
	count  int
	recent []wire.SessionInfo // newest first, at most recentLimit
}

// snapshot is a consistent copy of the state, from which both summaries are built.
type snapshot struct {
	services     []serviceState
	web          wire.ProviderState
	telegram     wire.ProviderState
	telegramSeen bool // a telegram state event arrived
	sessions     sessionsView
}

// state is the service's current knowledge, kept up to date by the prober and the provider
// state subscription and read by the request handlers.
type state struct {
	mu     sync.Mutex
	snap   snapshot
	probed bool // the first probe round finished
}

func newState(cfg Config) *state {
	st := &state{}
	st.snap.services = make([]serviceState, len(cfg.Services))
	for i, name := range cfg.Services {
		st.snap.services[i] = serviceState{name: name}
	}
	st.snap.web = wire.ProviderState{Provider: providerWhatsApp, State: schemas.WebUnlinked}
	if cfg.ProvidersDisabled {
		st.snap.web.State = schemas.WebDisabled
	}
	st.snap.telegram = wire.ProviderState{
		Provider:   providerTelegram,
		Configured: cfg.TelegramConfigured,
		State:      schemas.TelegramUnconfigured,
	}
	if cfg.TelegramConfigured && !cfg.ProvidersDisabled {
		st.snap.telegram.State = schemas.TelegramStarting
	}
	return st
}

// get returns a copy of the current state.
func (st *state) get() snapshot {
	st.mu.Lock()
	defer st.mu.Unlock()
	s := st.snap
	s.services = slices.Clone(st.snap.services)
	s.sessions.recent = slices.Clone(st.snap.sessions.recent)
	return s
}

// isProbed reports whether the first probe round finished.
func (st *state) isProbed() bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.probed
}

// setRound records the results of one probe round; results are in Config.Services order.
// It returns the services whose ok flag changed.
func (st *state) setRound(results []serviceState, sessions sessionsView) (flipped []serviceState) {
	st.mu.Lock()
	defer st.mu.Unlock()
	for i, r := range results {
		prev := st.snap.services[i]
		if !prev.probed || prev.ok != r.ok {
			flipped = append(flipped, r)
		}
		st.snap.services[i] = r
	}
	st.snap.sessions = sessions
	st.probed = true
	return flipped
}

// setProvider applies a provider state event. It reports false for providers it does not track
// and for events older than the state it holds.
func (st *state) setProvider(ps wire.ProviderState) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	var cur *wire.ProviderState
	switch ps.Provider {
	case providerWhatsApp:
		cur = &st.snap.web
	case providerTelegram:
		cur = &st.snap.telegram
		st.snap.telegramSeen = true
	default:
		return false
	}
	if ps.Ts > 0 && cur.Ts > ps.Ts {
		return false
	}
	*cur = ps
	return true
}

// allOK reports whether every listed service answered its last ping.
func (s snapshot) allOK() bool {
	for _, svc := range s.services {
		if !svc.ok {
			return false
		}
	}
	return true
}

// health builds the HealthSummary at now. Ts and DurationMs are left to the caller.
func (s snapshot) health(cfg Config, now time.Time) schemas.HealthSummary {
	nowMs := now.UnixMilli()
	sum := schemas.HealthSummary{
		OK: s.allOK(),
		Web: schemas.WebHealth{
			Linked:    s.web.Linked,
			Connected: s.web.Connected,
			State:     s.web.State,
			AuthAgeMs: authAge(s.web.AuthAtMs, nowMs),
			LastError: s.web.LastError,
		},
		Telegram: schemas.TelegramHealth{
			Configured: s.telegram.Configured,
			State:      s.telegram.State,
			Probe:      s.telegram.Probe,
		},
		HeartbeatSeconds: int64(cfg.HeartbeatSeconds),
		Sessions: schemas.SessionsHealth{
			Path:   cfg.SessionsPath,
			Count:  s.sessions.count,
			Recent: make([]schemas.SessionRecent, 0, len(s.sessions.recent)),
		},
		Services: make([]schemas.ServiceHealth, 0, len(s.services)),
	}
	for _, r := range s.sessions.recent {
		e := schemas.SessionRecent{Key: r.Key}
		if r.UpdatedAt > 0 {
			updated, age := r.UpdatedAt, max(nowMs-r.UpdatedAt, 0)
			e.UpdatedAt, e.Age = &updated, &age
		}
		sum.Sessions.Recent = append(sum.Sessions.Recent, e)
	}
	for _, svc := range s.services {
		sum.Services = append(sum.Services, schemas.ServiceHealth{
			Name:      svc.name,
			OK:        svc.ok,
			LatencyMs: svc.latency.Milliseconds(),
		})
	}
	return sum
}

// authAge is now-authAt in ms, or nil when authAt is unknown (0).
func authAge(authAtMs, nowMs int64) *int64 {
	if authAtMs <= 0 {
		return nil
	}
	age := max(nowMs-authAtMs, 0)
	return &age
}

// fingerprint is the part of the state whose change makes a health event: everything but
// timestamps, durations, latencies and ages.
type fingerprint struct {
	ok                 bool
	webLinked, webConn bool
	webState, webError string
	webAuthAt          int64
	tgConfigured       bool
	tgState            string
	servicesOK         string // one '1' or '0' per service, in Config order
	sessionCount       int
	sessionKeys        string // recent keys, newest first, NUL-separated
}

func (s snapshot) fingerprint() fingerprint {
	var ok, keys strings.Builder
	for _, svc := range s.services {
		if svc.ok {
			ok.WriteByte('1')
		} else {
			ok.WriteByte('0')
		}
	}
	for _, r := range s.sessions.recent {
		keys.WriteString(r.Key)
		keys.WriteByte(0)
	}
	return fingerprint{
		ok:           s.allOK(),
		webLinked:    s.web.Linked,
		webConn:      s.web.Connected,
		webState:     s.web.State,
		webError:     s.web.LastError,
		webAuthAt:    s.web.AuthAtMs,
		tgConfigured: s.telegram.Configured,
		tgState:      s.telegram.State,
		servicesOK:   ok.String(),
		sessionCount: s.sessions.count,
		sessionKeys:  keys.String(),
	}
}
