// Package outq is the bounded per-connection outbound queue of the protocol servers,
// measured in bytes: producers never block, and a writer goroutine drains it. The writer
// runs only while there is something to write (an idle connection holds no writer
// goroutine and no stack for it).
package outq

import "sync"

// Queue is a connection's bounded outbound queue, measured in bytes.
type Queue struct {
	mu      sync.Mutex
	frames  [][]byte
	bytes   int64
	max     int64
	closed  bool
	running bool // a writer is draining
	// closeAfter, when set, is sent by the writer once the frames queued before it are written.
	closeAfter *CloseReq
	spawn      func() // starts a writer (go w.run()); called with mu held
}

// CloseReq asks the writer to close the connection with a code and reason.
type CloseReq struct {
	Code   int
	Reason string
}

// Result is what Push did with a frame.
type Result int

// Results of Push.
const (
	Pushed   Result = iota
	Dropped         // over the bound, droppable: skipped
	Overflow        // over the bound, not droppable: the connection must close
	Closing         // the queue no longer accepts frames
)

// New returns a queue holding at most max bytes; spawn starts a writer goroutine when there
// is work and none runs. The writer calls Take until it reports stop.
func New(max int64, spawn func()) *Queue {
	return &Queue{max: max, spawn: spawn}
}

// Push appends a frame unless that would put more than max bytes in the queue.
func (q *Queue) Push(frame []byte, droppable bool) Result {
	q.mu.Lock()
	defer q.mu.Unlock()
	r := q.appendLocked(frame, droppable)
	if r == Pushed {
		q.wakeLocked()
	}
	return r
}

// appendLocked appends a frame unless the queue is closing or that would put more than max
// bytes in it; q.mu is held.
func (q *Queue) appendLocked(frame []byte, droppable bool) Result {
	if q.closed || q.closeAfter != nil {
		return Closing
	}
	n := int64(len(frame))
	if q.bytes+n > q.max {
		if droppable {
			return Dropped
		}
		return Overflow
	}
	q.frames = append(q.frames, frame)
	q.bytes += n
	return Pushed
}

// PushClaim is Push for a producer that can write the frame itself: when no writer runs,
// it takes the writer's role instead of starting one (claimed), and must then call Take,
// write, and Handoff. A full queue is Overflow.
func (q *Queue) PushClaim(frame []byte) (r Result, claimed bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if r = q.appendLocked(frame, false); r != Pushed || q.running {
		return r, false
	}
	q.running = true
	return Pushed, true
}

// Handoff ends a claimed writer's turn after one Take: when frames or a close request
// wait, a writer is started for them; otherwise no writer runs any more.
func (q *Queue) Handoff() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.closed && (len(q.frames) > 0 || q.closeAfter != nil) {
		q.spawn() // running stays true: the new writer takes over
		return
	}
	q.running = false
}

// CloseAfterFlush asks the writer to close the connection after what is queued now.
func (q *Queue) CloseAfterFlush(code int, reason string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed || q.closeAfter != nil {
		return
	}
	q.closeAfter = &CloseReq{Code: code, Reason: reason}
	q.wakeLocked()
}

// Shut stops the queue: nothing more is accepted and what is queued is dropped.
func (q *Queue) Shut() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	q.frames = nil
	q.bytes = 0
}

// Take removes every queued frame for the writer; their bytes stay counted until Written
// reports them, so a client that stops reading fills the queue. cr is non-nil when the
// writer must close after writing them; done is true when the queue is shut. stop is true
// when there is nothing to do: the writer must return (a later Push starts a new one).
func (q *Queue) Take(buf [][]byte) (frames [][]byte, cr *CloseReq, done, stop bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		q.running = false
		return buf[:0], nil, true, false
	}
	if len(q.frames) == 0 && q.closeAfter == nil {
		q.running = false
		return buf[:0], nil, false, true
	}
	frames = append(buf[:0], q.frames...)
	clear(q.frames)
	q.frames = q.frames[:0]
	if cap(q.frames) > 64 {
		q.frames = nil // do not keep a burst's backing array for an idle connection
	}
	return frames, q.closeAfter, false, false
}

// Written gives back the bytes of a frame the socket accepted.
func (q *Queue) Written(n int) {
	q.mu.Lock()
	q.bytes -= int64(n)
	q.mu.Unlock()
}

func (q *Queue) wakeLocked() {
	if !q.running && !q.closed {
		q.running = true
		q.spawn()
	}
}
