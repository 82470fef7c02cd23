package presence

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/schemas"
	"github.com/clawdis/clawdis/services/internal/ttlmap"
)

// Reasons and modes the registry sets itself.
const (
	reasonSelf       = "self"
	reasonConnect    = "connect"
	reasonDisconnect = "disconnect"
	modeGateway      = "gateway"
)

// Client presence events (wire.ClientPresence.Event).
const (
	eventConnect    = wire.ClientConnect
	eventDisconnect = wire.ClientDisconnect
)

// registry is the presence list and the system-event queue. It is pure logic: every method
// takes the current time, nothing runs in the background, and it is not safe for concurrent
// use (Service guards it with a mutex).
type registry struct {
	maxQueue     int
	maxListBytes int // the encoded presence payload's bound

	selfKey string // lower-cased
	self    schemas.PresenceEntry

	// entries by lower-cased key, self not included, least recently updated first; they
	// expire the TTL after their last update and beyond MaxEntries the oldest goes.
	entries *ttlmap.Map[string, *schemas.PresenceEntry]
	queue   []string // system-event texts, oldest first
}

// newRegistry builds a registry from a Config whose defaults have been applied.
func newRegistry(cfg Config) *registry {
	self := schemas.PresenceEntry{
		Host:    cfg.Host,
		IP:      cfg.IP,
		Version: cfg.Version,
		Mode:    modeGateway,
		Reason:  reasonSelf,
		Text:    selfText(cfg.Host, cfg.IP, cfg.Version),
	}
	return &registry{
		maxQueue:     cfg.MaxQueue,
		maxListBytes: cfg.MaxBytes / 2,
		selfKey:      strings.ToLower(cfg.SelfKey),
		self:         self,
		entries:      ttlmap.New[string, *schemas.PresenceEntry](cfg.TTL, cfg.MaxEntries),
	}
}

// selfText describes the gateway in the same shape as a node beacon, leaving out what is
// unknown.
func selfText(host, ip, version string) string {
	var b strings.Builder
	b.WriteString("Gateway:")
	if host != "" {
		b.WriteString(" " + host)
	}
	if ip != "" {
		b.WriteString(" (" + ip + ")")
	}
	if version != "" {
		b.WriteString(" · app " + version)
	}
	b.WriteString(" · mode " + modeGateway + " · reason " + reasonSelf)
	return b.String()
}

// systemEvent applies a system-event: it validates the params, upserts the entry the event
// describes and queues its text. It returns a *wire.Error for invalid params.
func (r *registry) systemEvent(p schemas.SystemEventParams, now time.Time) error {
	text := strings.TrimSpace(p.Text)
	if err := checkSystemEvent(p, text); err != nil {
		return err
	}

	parsed := parseText(text)
	// Parsed values come from a text of up to MaxTextChars: keep them within the limit of
	// the explicit params.
	field := func(explicit, parsed string) string { return clipChars(firstNonEmpty(explicit, parsed), MaxFieldChars) }
	upd := schemas.PresenceEntry{
		Host:             field(p.Host, parsed.Host),
		IP:               field(p.IP, parsed.IP),
		Version:          field(p.Version, parsed.Version),
		Mode:             field(p.Mode, parsed.Mode),
		Reason:           field(p.Reason, parsed.Reason),
		LastInputSeconds: parsed.LastInputSeconds,
		Tags:             slices.Clone(p.Tags),
		Text:             text,
		InstanceID:       strings.TrimSpace(p.InstanceID),
	}
	if p.LastInputSeconds != nil {
		v := *p.LastInputSeconds
		upd.LastInputSeconds = &v
	}
	key := firstNonEmpty(upd.InstanceID, upd.Host, text)
	r.upsert(key, upd, now)
	r.enqueue(text)
	return nil
}

// client applies a client connect or disconnect reported by the edge. It returns a
// *wire.Error for an invalid report.
func (r *registry) client(cp wire.ClientPresence, now time.Time) error {
	var reason string
	switch cp.Event {
	case eventConnect:
		reason = reasonConnect
	case eventDisconnect:
		reason = reasonDisconnect
	default:
		return wire.Invalid("event must be %q or %q, got %q", eventConnect, eventDisconnect, wire.Clip(cp.Event))
	}
	key := firstNonEmpty(strings.TrimSpace(cp.Key), strings.TrimSpace(cp.InstanceID))
	if key == "" {
		return wire.Invalid("key required")
	}
	r.upsert(clipChars(key, MaxFieldChars), schemas.PresenceEntry{
		Host:       clipChars(cp.Host, MaxFieldChars),
		IP:         clipChars(cp.IP, MaxFieldChars),
		Version:    clipChars(cp.Version, MaxFieldChars),
		Mode:       clipChars(cp.Mode, MaxFieldChars),
		Reason:     reason,
		InstanceID: clipChars(strings.TrimSpace(cp.InstanceID), MaxFieldChars),
	}, now)
	return nil
}

// upsert merges upd into the entry under key (case-insensitive), stamps it with now, and
// drops the expired entries and the oldest beyond the cap. Empty fields of upd keep the
// known values; an entry already expired is not merged into. An update for the gateway's
// own key only refreshes the fields that do not identify the gateway (text, tags,
// lastInputSeconds, instanceId): the self entry stays the gateway's.
func (r *registry) upsert(key string, upd schemas.PresenceEntry, now time.Time) {
	k := strings.ToLower(key)
	upd.Ts = now.UnixMilli()
	if k == r.selfKey {
		upd.Host, upd.IP, upd.Version, upd.Mode, upd.Reason = "", "", "", "", ""
		merge(&r.self, upd)
		return
	}
	e, ok := r.entries.Get(k, now)
	if !ok {
		e = &schemas.PresenceEntry{}
	}
	merge(e, upd)
	r.entries.Put(k, e, now)
}

// merge copies the set fields of src over dst; ts always.
func merge(dst *schemas.PresenceEntry, src schemas.PresenceEntry) {
	set := func(d *string, s string) {
		if s != "" {
			*d = s
		}
	}
	set(&dst.Host, src.Host)
	set(&dst.IP, src.IP)
	set(&dst.Version, src.Version)
	set(&dst.Mode, src.Mode)
	set(&dst.Reason, src.Reason)
	set(&dst.Text, src.Text)
	set(&dst.InstanceID, src.InstanceID)
	if src.LastInputSeconds != nil {
		v := *src.LastInputSeconds
		dst.LastInputSeconds = &v
	}
	if len(src.Tags) > 0 {
		dst.Tags = slices.Clone(src.Tags)
	}
	dst.Ts = src.Ts
}

// expire removes the entries last updated more than the TTL before now and reports whether
// it removed any. The self entry never expires.
func (r *registry) expire(now time.Time) bool {
	return r.entries.Expire(now) > 0
}

// nextExpiry is when the oldest entry expires; false when none will.
func (r *registry) nextExpiry() (time.Time, bool) { return r.entries.NextExpiry() }

// list returns copies of the entries, newest first (the most recently updated first among
// equal ts), the self entry stamped with now (the gateway is present right now) and placed
// before every entry not newer. The oldest entries that do not fit in maxListBytes, once
// encoded as the presence event's payload, are left out (SPEC §5.4); the self entry is
// always there. Callers expire first.
func (r *registry) list(now time.Time) []schemas.PresenceEntry {
	self := r.self
	self.Ts = now.UnixMilli()
	budget := r.maxListBytes - len(`{"presence":[]}`) - encodedSize(self)
	out := make([]schemas.PresenceEntry, 0, r.entries.Len()+1)
	placed := false
	for _, e := range r.entries.Backward() {
		if !placed && e.Ts <= self.Ts {
			out, placed = append(out, clone(self)), true
		}
		if budget -= encodedSize(*e) + 1; budget < 0 { // the entry and its comma
			break // this one and every older one do not fit
		}
		out = append(out, clone(*e))
	}
	if !placed {
		out = append(out, clone(self))
	}
	return out
}

// encodedSize is the length of e encoded as JSON.
func encodedSize(e schemas.PresenceEntry) int {
	b, err := json.Marshal(e)
	if err != nil {
		return 0 // never happens: an entry is strings and numbers
	}
	return len(b)
}

func clone(e schemas.PresenceEntry) schemas.PresenceEntry {
	if e.LastInputSeconds != nil {
		v := *e.LastInputSeconds
		e.LastInputSeconds = &v
	}
	e.Tags = slices.Clone(e.Tags)
	return e
}

// enqueue appends text to the system-event queue unless it equals the last queued text,
// dropping the oldest texts beyond the cap.
func (r *registry) enqueue(text string) {
	if n := len(r.queue); n > 0 && r.queue[n-1] == text {
		return
	}
	r.queue = append(r.queue, text)
	if over := len(r.queue) - r.maxQueue; over > 0 {
		r.queue = slices.Delete(r.queue, 0, over)
	}
}

// requeue puts drained texts back at the front of the queue, oldest first, ahead of the
// texts queued since; beyond the cap the oldest are dropped. Blank and over-long texts are
// skipped.
func (r *registry) requeue(texts []string) {
	var front []string
	for _, t := range texts {
		if t = strings.TrimSpace(t); t != "" && utf8.RuneCountInString(t) <= MaxTextChars {
			front = append(front, t)
		}
	}
	r.queue = append(front, r.queue...)
	if over := len(r.queue) - r.maxQueue; over > 0 {
		r.queue = slices.Delete(r.queue, 0, over)
	}
}

// peekQueue returns a copy of the queued texts, oldest first (never nil).
func (r *registry) peekQueue() []string {
	return append([]string{}, r.queue...)
}

// drainQueue returns the queued texts, oldest first (never nil), and empties the queue.
func (r *registry) drainQueue() []string {
	out := r.peekQueue()
	r.queue = nil
	return out
}

// parsedText is what parseText recognised in a system-event text.
type parsedText struct {
	Host, IP, Version, Mode, Reason string
	LastInputSeconds                *int64
}

// textSep separates the parts of a node beacon text.
const textSep = "·"

// parseText reads a node beacon of the form
//
//	Node: <host> (<ip>) · app <version> · last input <N>s ago · mode <mode> · reason <reason>
//
// leniently: any subset of the parts in any order, the "(<ip>)" optional, keywords matched
// case-insensitively, surrounding whitespace ignored. Parts that do not match are skipped.
// A text is read as a beacon only when it starts with "Node:" or contains the "·"
// separator, so plain sentences ("reason unknown") are never mistaken for one.
func parseText(text string) parsedText {
	var p parsedText
	text = strings.TrimSpace(text)
	if !hasPrefixFold(text, "node:") && !strings.Contains(text, textSep) {
		return p
	}
	for part := range strings.SplitSeq(text, textSep) {
		part = strings.TrimSpace(part)
		switch {
		case hasPrefixFold(part, "node:"):
			p.Host, p.IP = parseNode(strings.TrimSpace(part[len("node:"):]))
		case hasPrefixFold(part, "app "):
			p.Version = strings.TrimSpace(part[len("app "):])
		case hasPrefixFold(part, "last input "):
			if n, ok := parseLastInput(part[len("last input "):]); ok {
				p.LastInputSeconds = &n
			}
		case hasPrefixFold(part, "mode "):
			p.Mode = strings.TrimSpace(part[len("mode "):])
		case hasPrefixFold(part, "reason "):
			p.Reason = strings.TrimSpace(part[len("reason "):])
		}
	}
	return p
}

// parseNode splits "<host> (<ip>)" or "<host>".
func parseNode(s string) (host, ip string) {
	if strings.HasSuffix(s, ")") {
		if open := strings.LastIndex(s, "("); open >= 0 {
			return strings.TrimSpace(s[:open]), strings.TrimSpace(s[open+1 : len(s)-1])
		}
	}
	return s, ""
}

// parseLastInput reads "<N>s ago", "<N>s", "<N> s ago" or "<N>".
func parseLastInput(s string) (int64, bool) {
	s = strings.TrimSpace(s)
	end := 0
	for end < len(s) && s[end] >= '0' && s[end] <= '9' {
		end++
	}
	if end == 0 {
		return 0, false
	}
	n, err := strconv.ParseInt(s[:end], 10, 64)
	if err != nil {
		return 0, false
	}
	rest := strings.ToLower(strings.TrimSpace(s[end:]))
	switch rest {
	case "", "s", "s ago", "ago":
		return n, true
	}
	return 0, false
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if v = strings.TrimSpace(v); v != "" {
			return v
		}
	}
	return ""
}
