package health

import (
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/clawdis/clawdis/bus/subject"
	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/schemas"
)

// Provider names as they appear in wire.ProviderState.Provider.
const (
	providerWhatsApp = subject.ServiceWhatsApp
	providerTelegram = subject.ServiceTelegram
)

// recentLimit is how many recent sessions the summaries list.
const recentLimit = 5

// defaultHeartbeatSeconds is reported until the WhatsApp provider said otherwise.
const defaultHeartbeatSeconds = 60

// serviceState is what the service knows about one watched service.
type serviceState struct {
	name    string
	listed  bool // in Config.Services: listed in the summary and counted in ok
	checked bool // a liveness check finished
	ok      bool
	// answered says the service answered a check at least once: its first answer (it
	// started) is not news, an answer after it stopped answering is.
	answered bool
	latency  time.Duration
	id       string            // micro instance id of the last answer
	meta     map[string]string // micro metadata, from the answer when it (re)appeared
}

// checkResult is the outcome of one liveness check ($SRV.PING) of a service.
type checkResult struct {
	ok      bool
	latency time.Duration
	id      string
	meta    map[string]string
}

// sessionsView is what the service knows about the session store.
type sessionsView struct {
	count  int
	recent []wire.SessionInfo // newest first (as sessions sends them), at most recentLimit
}

// snapshot is a consistent copy of the state, from which both summaries are built.
type snapshot struct {
	services     []serviceState // Config.Services order, then the unlisted ones
	web          wire.ProviderState
	telegram     wire.ProviderState
	telegramSeen bool // a telegram state arrived
	sessions     sessionsView
}

// state is the service's current knowledge, kept up to date by the liveness checks and
// the event subscriptions and read by the request handlers.
type state struct {
	mu          sync.Mutex
	snap        snapshot
	index       map[string]int // service name -> position in snap.services
	probed      bool           // every service was checked once
	sessionsGen uint64         // +1 on every sessions changed event
	version     uint64         // +1 on every change of snap or probed (changedLocked)
	// allAnswered is closed once every listed service has answered a check.
	allAnswered chan struct{}
	closedAll   bool
}

// newState starts with every watched service unchecked: listed are those of Config.Services,
// extra are watched for their facts only.
func newState(listed, extra []string) *state {
	st := &state{index: make(map[string]int, len(listed)+len(extra)), allAnswered: make(chan struct{})}
	for i, name := range append(slices.Clone(listed), extra...) {
		st.index[name] = i
		st.snap.services = append(st.snap.services, serviceState{name: name, listed: i < len(listed)})
	}
	st.snap.web = wire.ProviderState{Provider: providerWhatsApp, State: schemas.WebUnlinked}
	if !slices.Contains(listed, providerWhatsApp) {
		st.snap.web.State = schemas.WebDisabled
	}
	st.snap.telegram = wire.ProviderState{Provider: providerTelegram, State: schemas.TelegramUnconfigured}
	st.noteAnsweredLocked()
	return st
}

// noteAnsweredLocked closes allAnswered once every listed service has answered; st.mu is
// held (or st not yet shared).
func (st *state) noteAnsweredLocked() {
	if st.closedAll {
		return
	}
	for _, svc := range st.snap.services {
		if svc.listed && !svc.answered {
			return
		}
	}
	st.closedAll = true
	close(st.allAnswered)
}

// changedLocked notes a change of the state; st.mu is held.
func (st *state) changedLocked() { st.version++ }

// currentVersion is the number of changes so far: equal numbers, equal state.
func (st *state) currentVersion() uint64 {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.version
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

// watched reports whether name is a watched service.
func (st *state) watched(name string) bool {
	_, ok := st.index[name] // index is never written after newState
	return ok
}

// isProbed reports whether every service was checked once.
func (st *state) isProbed() bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.probed
}

// setProbed records that every service was checked once.
func (st *state) setProbed() {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.probed = true
	st.changedLocked()
}

// record applies a liveness check of name and returns what was known before. appeared is
// true when the service answered and had not before, or answers as another instance: then
// its metadata is taken from r, and whatever it publishes as events may have been missed.
func (st *state) record(name string, r checkResult) (prev serviceState, appeared bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	i, ok := st.index[name]
	if !ok {
		return serviceState{}, false
	}
	cur := &st.snap.services[i]
	prev = *cur
	appeared = r.ok && (!cur.ok || cur.id != r.id)
	cur.checked, cur.ok, cur.latency, cur.id = true, r.ok, r.latency, r.id
	cur.answered = cur.answered || r.ok
	if appeared {
		cur.meta = maps.Clone(r.meta)
	}
	st.noteAnsweredLocked()
	st.changedLocked()
	return prev, appeared
}

// forgetInstances makes the next answer of every service count as its reappearance: after
// health's own connection was lost it may have missed their events.
func (st *state) forgetInstances() {
	st.mu.Lock()
	defer st.mu.Unlock()
	for i := range st.snap.services {
		st.snap.services[i].id = ""
	}
	st.changedLocked()
}

// setProvider applies a provider state. It reports false for providers it does not track,
// for states older than the one it holds, and for the empty state of a provider that has
// not reported one yet.
func (st *state) setProvider(ps wire.ProviderState) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	var cur *wire.ProviderState
	switch ps.Provider {
	case providerWhatsApp:
		cur = &st.snap.web
	case providerTelegram:
		cur = &st.snap.telegram
	default:
		return false
	}
	if ps.State == "" || (ps.Ts > 0 && cur.Ts > ps.Ts) {
		return false
	}
	if ps.Provider == providerTelegram {
		st.snap.telegramSeen = true
	}
	*cur = ps
	st.changedLocked()
	return true
}

// sessionsGeneration is the number of sessions changed events applied so far.
func (st *state) sessionsGeneration() uint64 {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.sessionsGen
}

// setSessions applies a sessions changed event.
func (st *state) setSessions(sum wire.SessionsSummary) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.snap.sessions = sessionsOf(sum)
	st.sessionsGen++
	st.changedLocked()
}

// catchUpSessions applies the answer to a summary request sent at generation gen, unless
// an event arrived since: that event is at least as new, and every later change brings
// another. It reports whether it applied the answer.
func (st *state) catchUpSessions(sum wire.SessionsSummary, gen uint64) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.sessionsGen != gen {
		return false
	}
	st.snap.sessions = sessionsOf(sum)
	st.changedLocked()
	return true
}

// sessionsOf is the view of a summary, whose sessions are newest first.
func sessionsOf(sum wire.SessionsSummary) sessionsView {
	return sessionsView{count: sum.Count, recent: slices.Clone(sum.Sessions[:min(len(sum.Sessions), recentLimit)])}
}

// service returns the state of the named service, the zero value when it is not watched.
func (s snapshot) service(name string) serviceState {
	for _, svc := range s.services {
		if svc.name == name {
			return svc
		}
	}
	return serviceState{}
}

// listed reports whether name is one of Config.Services.
func (s snapshot) listed(name string) bool { return s.service(name).listed }

// meta is the metadata value key of the named service, "" when unknown.
func (s snapshot) meta(name, key string) string { return s.service(name).meta[key] }

// heartbeatSeconds is the WhatsApp provider's heartbeat interval, or the default.
func (s snapshot) heartbeatSeconds() int64 {
	v := s.meta(providerWhatsApp, wire.MetaHeartbeatSeconds)
	if v == "" { // WhatsApp off or not seen yet: no failed parse (and its error) per request
		return defaultHeartbeatSeconds
	}
	if n, err := strconv.Atoi(v); err == nil && n > 0 {
		return int64(n)
	}
	return defaultHeartbeatSeconds
}

// telegramConfigured reports whether Telegram has a bot token: said by its metadata or by
// its state.
func (s snapshot) telegramConfigured() bool {
	return s.telegram.Configured || s.meta(providerTelegram, wire.MetaConfigured) == "true"
}

// allOK reports whether every listed service answered its last check.
func (s snapshot) allOK() bool {
	for _, svc := range s.services {
		if svc.listed && !svc.ok {
			return false
		}
	}
	return true
}

// health builds the HealthSummary at now. Ts and DurationMs are left to the caller.
func (s snapshot) health(now time.Time) schemas.HealthSummary {
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
			Configured: s.telegramConfigured(),
			State:      s.telegram.State,
			Probe:      s.telegram.Probe,
		},
		HeartbeatSeconds: s.heartbeatSeconds(),
		Sessions: schemas.SessionsHealth{
			Path:   s.meta(subject.ServiceSessions, wire.MetaStorePath),
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
		if svc.listed {
			sum.Services = append(sum.Services, schemas.ServiceHealth{
				Name:      svc.name,
				OK:        svc.ok,
				LatencyMs: svc.latency.Milliseconds(),
			})
		}
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
	servicesOK         string // one '1' or '0' per listed service, in Config order
	heartbeat          int64
	sessionsPath       string
	sessionCount       int
	sessionKeys        string // recent keys, newest first, NUL-separated
}

func (s snapshot) fingerprint() fingerprint {
	var ok, keys strings.Builder
	for _, svc := range s.services {
		switch {
		case !svc.listed:
		case svc.ok:
			ok.WriteByte('1')
		default:
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
		tgConfigured: s.telegramConfigured(),
		tgState:      s.telegram.State,
		servicesOK:   ok.String(),
		heartbeat:    s.heartbeatSeconds(),
		sessionsPath: s.meta(subject.ServiceSessions, wire.MetaStorePath),
		sessionCount: s.sessions.count,
		sessionKeys:  keys.String(),
	}
}
