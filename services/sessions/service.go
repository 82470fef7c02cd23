// Package sessions is the sessions service, the single owner of the session store
// (<state>/sessions/sessions.json) and of the transcripts (<state>/sessions/<sessionId>.jsonl):
// it resolves, updates, summarises, lists and resets sessions, appends transcript messages
// and reads chat history over the bus, serialising every change so concurrent callers never lose one
// (SPEC §3, §6.7, §8). It reads and keeps the earlier TypeScript gateway's files. When the
// store changes it publishes its summary on subject.SessionsChanged, so nobody else needs
// to read the file or ask on a timer.
package sessions

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/clawdis/clawdis/bus/subject"
	"github.com/clawdis/clawdis/bus/wire"
)

// Version is the version the service registers with nats micro.
const Version = "1.0.0"

// Defaults and bounds of requests and Config.
const (
	DefaultMainKey       = "main"
	DefaultSummaryLimit  = 5
	MaxSummaryLimit      = 1000
	DefaultHistoryLimit  = 200
	MaxHistoryLimit      = 1000
	DefaultThinkingLevel = "off" // reported by history when the session has none
	DefaultEventInterval = 250 * time.Millisecond
	DefaultMaxBytes      = 524288
)

// Config configures the sessions service.
type Config struct {
	// Dir is the sessions directory, <state>/sessions, holding sessions.json and the
	// transcripts. Required. It is created (0700) with the first write.
	Dir string
	// MainKey is the main session's key, reported in the start-up log. Default "main".
	MainKey string
	// Now is the clock for updatedAt and message timestamps. Default time.Now.
	Now func() time.Time
	// NewID returns the id of a new session; it must pass ValidateSessionID. Default a
	// random version 4 UUID.
	NewID func() string
	// EventInterval is the least time between two subject.SessionsChanged events: the
	// first change is published at once, further changes within the interval in one event
	// at its end. Default 250ms.
	EventInterval time.Duration
	// MaxBytes bounds the encoded summary (the sessions changed event and the summary
	// answer): the oldest of the sessions it lists are left out beyond it, as session
	// keys come from clients and may be long. Default 524288 (gateway.maxPayload).
	MaxBytes int
}

// withDefaults validates cfg and applies its defaults.
func (cfg Config) withDefaults() (Config, error) {
	if strings.TrimSpace(cfg.Dir) == "" {
		return cfg, errors.New("sessions: Dir is required")
	}
	cfg.Dir = filepath.Clean(cfg.Dir)
	if cfg.MainKey == "" {
		cfg.MainKey = DefaultMainKey
	}
	if strings.TrimSpace(cfg.MainKey) != cfg.MainKey || cfg.MainKey == "" {
		return cfg, fmt.Errorf("sessions: MainKey %q must be non-blank without surrounding spaces", cfg.MainKey)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.NewID == nil {
		cfg.NewID = newUUID
	}
	if cfg.EventInterval < 0 {
		return cfg, fmt.Errorf("sessions: EventInterval %s is negative", cfg.EventInterval)
	}
	if cfg.EventInterval == 0 {
		cfg.EventInterval = DefaultEventInterval
	}
	if cfg.MaxBytes < 0 {
		return cfg, fmt.Errorf("sessions: MaxBytes %d is negative", cfg.MaxBytes)
	}
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	return cfg, nil
}

// errStopping answers requests that are still draining while the service stops.
var errStopping = wire.Unavailable(true, "sessions service stopping")

// storageError is UNAVAILABLE for a failure of err: retryable when the file system failed
// (a full disk, a read-only mount, too many open files: SPEC §13, storage errors are
// retryable), not when the data itself is bad (a store that does not decode).
func storageError(err error, format string, args ...any) *wire.Error {
	var errno syscall.Errno
	return wire.Unavailable(errors.As(err, &errno), format, args...)
}

// Service is the sessions service. Create it with New and serve with Run.
type Service struct {
	cfg     Config
	nc      *nats.Conn
	log     *slog.Logger
	ready   chan struct{} // closed once the endpoints are subscribed on the server
	changes chan struct{} // poked (never blocking) when the store may have changed

	mu         sync.Mutex // serialises every use of st, the files, and stopped
	st         *store
	stopped    bool
	unreadable string // the store error last logged, "" when the store is readable

	stats statCache // message counts and previews of transcripts, for sessions.list
}

// New validates cfg and returns a service ready to Run. It does no I/O. A nil log discards.
func New(cfg Config, nc *nats.Conn, log *slog.Logger) (*Service, error) {
	if nc == nil {
		return nil, errors.New("sessions: nil bus connection")
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{
		cfg:     cfg,
		nc:      nc,
		log:     log.With("component", subject.ServiceSessions),
		ready:   make(chan struct{}),
		changes: make(chan struct{}, 1),
		st:      newStore(cfg.Dir),
	}, nil
}

// Ready is closed once Run has subscribed every endpoint on the server, so that a request
// sent after it is answered.
func (s *Service) Ready() <-chan struct{} { return s.ready }

// StorePath is the session store file, <Dir>/sessions.json.
func (s *Service) StorePath() string { return s.st.path }

// Run registers the endpoints and serves, publishing the store's summary when it changes,
// until ctx ends; then it publishes a change still pending, stops the micro service, makes
// requests still draining answer UNAVAILABLE without touching the files, and returns nil.
// It returns an error only when the service cannot be set up. Run must not be called twice.
func (s *Service) Run(ctx context.Context) error {
	h := func(name string, fn wire.HandlerFunc) micro.Handler { return wire.Handler("sessions."+name, fn) }
	svc, err := wire.AddService(s.nc, micro.Config{
		Name:        subject.ServiceSessions,
		Version:     Version,
		Description: "session store and transcripts",
		Metadata:    map[string]string{wire.MetaStorePath: s.st.path},
	},
		wire.Endpoint{Name: "summary", Subject: subject.SessionsSummary, Handler: h("summary", s.handleSummary)},
		wire.Endpoint{Name: "resolve", Subject: subject.SessionsResolve, Handler: h("resolve", s.handleResolve)},
		wire.Endpoint{Name: "update", Subject: subject.SessionsUpdate, Handler: h("update", s.handleUpdate)},
		wire.Endpoint{Name: "append", Subject: subject.SessionsAppend, Handler: h("append", s.handleAppend)},
		wire.Endpoint{Name: "history", Subject: subject.SessionsHistory, Handler: h("history", s.handleHistory)},
		wire.Endpoint{Name: "list", Subject: subject.SessionsList, Handler: h("list", s.handleList)},
		wire.Endpoint{Name: "reset", Subject: subject.SessionsReset, Handler: h("reset", s.handleReset)},
	)
	if err != nil {
		s.mu.Lock()
		s.stopped = true
		s.mu.Unlock()
		return err
	}
	close(s.ready)
	s.log.Info("sessions service started", "path", s.st.path, "main_key", s.cfg.MainKey)
	s.publishLoop(ctx)
	s.stop(svc)
	s.log.Info("sessions service stopped")
	return nil
}

// stop stops the micro service; handlers still draining then answer errStopping.
func (s *Service) stop(svc micro.Service) {
	if err := svc.Stop(); err != nil {
		s.log.Warn("stopping micro service failed", "err", err)
	}
	s.mu.Lock()
	s.stopped = true
	s.mu.Unlock()
}

// loadLocked makes the store current. It logs an unreadable store once per distinct reason
// and its recovery. s.mu must be held.
func (s *Service) loadLocked() error {
	if s.stopped {
		return errStopping
	}
	prev, had := s.st.stamp, s.st.loaded
	if err := s.st.load(); err != nil {
		if msg := err.Error(); msg != s.unreadable {
			s.unreadable = msg
			s.log.Error("session store unreadable; requests fail until it is fixed or moved",
				"path", s.st.path, "err", err)
		}
		return storageError(err, "%s", err.Error())
	}
	if s.unreadable != "" {
		s.unreadable = ""
		s.log.Info("session store readable again", "path", s.st.path)
	}
	if had && !prev.equal(s.st.stamp) {
		s.changed() // someone else changed the file
	}
	return nil
}

// lockLoaded locks the store and makes it current; the caller calls unlock when done. On an
// error nothing stays locked.
func (s *Service) lockLoaded() (unlock func(), err error) {
	s.mu.Lock()
	if err := s.loadLocked(); err != nil {
		s.mu.Unlock()
		return nil, err
	}
	return s.mu.Unlock, nil
}

// lockKey validates raw as a session key (sessionKey), then locks the store and makes it
// current (lockLoaded).
func (s *Service) lockKey(raw string) (key string, unlock func(), err error) {
	if key, err = sessionKey(raw); err != nil {
		return "", nil, err
	}
	if unlock, err = s.lockLoaded(); err != nil {
		return "", nil, err
	}
	return key, unlock, nil
}

// mutate applies fn to the entry of key (a new one when missing), and when the entry is new
// or fn reports a change, bumps its updatedAt and saves the store. On a failed save the
// entry is left as it was. s.mu must be held and the store loaded.
func (s *Service) mutate(key string, fn func(e *entry) (changed bool, err error)) (*entry, bool, error) {
	old := s.st.entries[key]
	created := old == nil
	e := &entry{}
	if !created {
		e = old.clone()
	}
	changed, err := fn(e)
	if err != nil {
		return nil, false, err
	}
	if !created && !changed {
		return e, false, nil
	}
	e.UpdatedAt = max(e.UpdatedAt, s.cfg.Now().UnixMilli())
	s.st.entries[key] = e
	if err := s.st.save(); err != nil {
		if created {
			delete(s.st.entries, key)
		} else {
			s.st.entries[key] = old
		}
		s.log.Error("saving session store failed", "path", s.st.path, "err", err)
		return nil, false, storageError(err, "session store %s: %s", s.st.path, err.Error())
	}
	s.changed()
	if created {
		s.log.Info("session created", "session_key", key, "session_id", e.SessionID)
	}
	return e, created, nil
}

// assignID gives e the session id want, or a new one when want is "" and e has none. It
// reports whether e changed.
func (s *Service) assignID(e *entry, want string) (bool, error) {
	switch {
	case want != "" && want != e.SessionID:
		e.SessionID = want
		return true, nil
	case e.SessionID == "":
		id := s.cfg.NewID()
		if err := ValidateSessionID(id); err != nil {
			return false, wire.Unavailable(false, "sessions: NewID returned an unusable id: %s", err.Error())
		}
		e.SessionID = id
		return true, nil
	}
	return false, nil
}

// decode unmarshals a request body; an empty body leaves v as is.
func decode(data []byte, v any) error {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	return wire.DecodeParams(data, v, "request body")
}

// sessionKey returns the key without surrounding white space, INVALID_REQUEST when blank.
func sessionKey(raw string) (string, error) {
	key := strings.TrimSpace(raw)
	if key == "" {
		return "", wire.Invalid("sessionKey required")
	}
	return key, nil
}

// requestedID validates an optional session id from a request.
func requestedID(id string) error {
	if id == "" {
		return nil
	}
	if err := ValidateSessionID(id); err != nil {
		return wire.Invalid("sessionId: %s", err.Error())
	}
	return nil
}

// usableID checks the session id of a stored entry before it names a file.
func usableID(key string, e *entry) error {
	if err := ValidateSessionID(e.SessionID); err != nil {
		return wire.Unavailable(false, "session %q in %s has an unusable session id: %s",
			wire.Clip(key), StoreFile, err.Error())
	}
	return nil
}
