// Package ttlmap is the services' one bounded map with expiry. Every entry carries the time
// it was stamped with and expires a fixed TTL later; the entries are kept in a list ordered
// by stamp, so expiry and eviction always take the oldest from the front and every
// operation is O(1) amortised (a stamp older than the newest one walks back from the end,
// which for a clock that moves forward is at most a few steps). It never scans the whole
// map. A Map is not safe for concurrent use; its owner guards it.
package ttlmap

import (
	"iter"
	"time"
)

// Map maps keys to values, each stamped with a time. The zero Map is not usable; call New.
type Map[K comparable, V any] struct {
	ttl   time.Duration
	max   int
	items map[K]*entry[K, V]
	root  entry[K, V] // sentinel of a circular list: root.next is the oldest, root.prev the newest
}

type entry[K comparable, V any] struct {
	key        K
	val        V
	at         time.Time
	prev, next *entry[K, V]
}

// New returns an empty Map whose entries expire ttl after their stamp (ttl <= 0: never) and
// that holds at most max entries, the oldest evicted first (max <= 0: no bound).
func New[K comparable, V any](ttl time.Duration, max int) *Map[K, V] {
	m := &Map[K, V]{ttl: ttl, max: max, items: make(map[K]*entry[K, V])}
	m.root.next, m.root.prev = &m.root, &m.root
	return m
}

// Len is the number of entries, expired ones not yet removed included.
func (m *Map[K, V]) Len() int { return len(m.items) }

// expired reports whether an entry stamped at has expired by now: more than the TTL passed.
func (m *Map[K, V]) expired(at, now time.Time) bool {
	return m.ttl > 0 && now.Sub(at) > m.ttl
}

// Put sets k to v stamped at (a key already present takes the new value and stamp and
// moves to its place in stamp order). Then it removes the entries expired by at and, beyond
// the bound, the oldest. Callers pass the current time as at.
func (m *Map[K, V]) Put(k K, v V, at time.Time) {
	e, ok := m.items[k]
	if ok {
		m.unlink(e)
	} else {
		e = &entry[K, V]{key: k}
		m.items[k] = e
	}
	e.val, e.at = v, at
	// Walk back from the newest to the last entry not after at: equal stamps keep the order
	// of their Puts.
	p := m.root.prev
	for p != &m.root && p.at.After(at) {
		p = p.prev
	}
	e.prev, e.next = p, p.next
	p.next.prev = e
	p.next = e
	m.Expire(at)
	for m.max > 0 && len(m.items) > m.max {
		m.remove(m.root.next)
	}
}

// Get returns the value of k unless it is absent or expired by now; an expired entry is
// removed.
func (m *Map[K, V]) Get(k K, now time.Time) (V, bool) {
	e, ok := m.items[k]
	if !ok {
		var zero V
		return zero, false
	}
	if m.expired(e.at, now) {
		m.remove(e)
		var zero V
		return zero, false
	}
	return e.val, true
}

// Delete removes k and reports whether it was present.
func (m *Map[K, V]) Delete(k K) bool {
	e, ok := m.items[k]
	if ok {
		m.remove(e)
	}
	return ok
}

// Expire removes the entries expired by now, oldest first, and returns how many it removed.
func (m *Map[K, V]) Expire(now time.Time) int {
	n := 0
	for e := m.root.next; e != &m.root && m.expired(e.at, now); e = m.root.next {
		m.remove(e)
		n++
	}
	return n
}

// NextExpiry is when the oldest entry expires; false when nothing is due to expire (an
// empty map or no TTL). A caller that removes expired entries arms its one timer for this.
func (m *Map[K, V]) NextExpiry() (time.Time, bool) {
	if m.ttl <= 0 || m.root.next == &m.root {
		return time.Time{}, false
	}
	// Expired means more than the TTL passed: the first instant after at+ttl.
	return m.root.next.at.Add(m.ttl + 1), true
}

// All yields the entries oldest first, expired ones not yet removed
// included. The map must not change during the iteration.
func (m *Map[K, V]) All() iter.Seq2[K, V] {
	return func(yield func(K, V) bool) {
		for e := m.root.next; e != &m.root; e = e.next {
			if !yield(e.key, e.val) {
				return
			}
		}
	}
}

// Backward yields the entries newest first, like All in reverse.
func (m *Map[K, V]) Backward() iter.Seq2[K, V] {
	return func(yield func(K, V) bool) {
		for e := m.root.prev; e != &m.root; e = e.prev {
			if !yield(e.key, e.val) {
				return
			}
		}
	}
}

// Stamp returns the stamp of k, expired or not.
func (m *Map[K, V]) Stamp(k K) (time.Time, bool) {
	e, ok := m.items[k]
	if !ok {
		return time.Time{}, false
	}
	return e.at, true
}

func (m *Map[K, V]) unlink(e *entry[K, V]) {
	e.prev.next = e.next
	e.next.prev = e.prev
	e.prev, e.next = nil, nil
}

func (m *Map[K, V]) remove(e *entry[K, V]) {
	m.unlink(e)
	delete(m.items, e.key)
}
