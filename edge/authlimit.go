package edge

import (
	"sync"
	"time"
)

// AuthRateLimit throttles failed authentication per client address (SPEC §5.2): after
// MaxFailures failures within Window, every hello from that address is refused for Lockout
// without its token being compared.
type AuthRateLimit struct {
	MaxFailures int           // default 10
	Window      time.Duration // default 60s
	Lockout     time.Duration // default 60s
}

func (l *AuthRateLimit) setDefaults() {
	if l.MaxFailures <= 0 {
		l.MaxFailures = 10
	}
	if l.Window <= 0 {
		l.Window = time.Minute
	}
	if l.Lockout <= 0 {
		l.Lockout = time.Minute
	}
}

// authTableSize bounds the addresses an AuthThrottle remembers; when full, the entry
// touched longest ago goes.
const authTableSize = 4096

// AuthThrottle counts failed authentications per client address in a bounded table. It is
// safe for concurrent use; one serves every connection of a protocol server.
type AuthThrottle struct {
	cfg     AuthRateLimit
	now     func() time.Time
	mu      sync.Mutex
	entries map[string]*authEntry
	max     int
}

// authEntry is one address's failures in the current window and its lockout.
type authEntry struct {
	windowStart time.Time
	failures    int
	lockedUntil time.Time
	touched     time.Time
}

// NewAuthThrottle returns an empty throttle; now is its clock (nil: time.Now).
func NewAuthThrottle(cfg AuthRateLimit, now func() time.Time) *AuthThrottle {
	cfg.setDefaults()
	if now == nil {
		now = time.Now
	}
	return &AuthThrottle{cfg: cfg, now: now, entries: map[string]*authEntry{}, max: authTableSize}
}

// Locked reports whether addr is locked out, and for how much longer.
func (t *AuthThrottle) Locked(addr string) (time.Duration, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.entries[addr]
	if e == nil {
		return 0, false
	}
	left := e.lockedUntil.Sub(t.now())
	return left, left > 0
}

// Fail records a failed authentication from addr. started is true for the failure that
// starts a lockout (then failures is the count that did); it is the one to log.
func (t *AuthThrottle) Fail(addr string) (started bool, failures int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	e := t.entries[addr]
	if e == nil {
		if len(t.entries) >= t.max {
			t.evictLocked(now)
		}
		e = &authEntry{windowStart: now}
		t.entries[addr] = e
	}
	e.touched = now
	if now.Before(e.lockedUntil) {
		return false, e.failures
	}
	if now.Sub(e.windowStart) >= t.cfg.Window {
		e.windowStart, e.failures = now, 0
	}
	e.failures++
	if e.failures < t.cfg.MaxFailures {
		return false, e.failures
	}
	failures = e.failures
	e.lockedUntil = now.Add(t.cfg.Lockout)
	e.windowStart, e.failures = e.lockedUntil, 0 // counting starts afresh after the lockout
	return true, failures
}

// evictLocked makes room: entries that no longer count go, and if none does, the one
// touched longest ago.
func (t *AuthThrottle) evictLocked(now time.Time) {
	var oldest string
	var oldestAt time.Time
	for addr, e := range t.entries {
		if !now.Before(e.lockedUntil) && now.Sub(e.windowStart) >= t.cfg.Window {
			delete(t.entries, addr)
			continue
		}
		if oldest == "" || e.touched.Before(oldestAt) {
			oldest, oldestAt = addr, e.touched
		}
	}
	if len(t.entries) >= t.max {
		delete(t.entries, oldest)
	}
}
