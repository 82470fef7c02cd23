package whatsapp

import "sync"

// queue is a FIFO that never blocks the producer: whatsmeow calls event handlers on its
// receive loop, so they may only enqueue. It holds at most max items; beyond that push drops
// the item and reports false (the consumer is stuck; the caller logs it).
type queue[T any] struct {
	mu    sync.Mutex
	items []T
	max   int
	ready chan struct{} // holds a token while items is not empty
}

func newQueue[T any](max int) *queue[T] {
	return &queue[T]{max: max, ready: make(chan struct{}, 1)}
}

// push appends v without blocking; false means the queue was full and v was dropped.
func (q *queue[T]) push(v T) bool {
	q.mu.Lock()
	if len(q.items) >= q.max {
		q.mu.Unlock()
		return false
	}
	q.items = append(q.items, v)
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
	return true
}

// wait is readable when items may be waiting; take them with drain.
func (q *queue[T]) wait() <-chan struct{} { return q.ready }

// drain removes and returns everything queued.
func (q *queue[T]) drain() []T {
	q.mu.Lock()
	defer q.mu.Unlock()
	items := q.items
	q.items = nil
	return items
}
