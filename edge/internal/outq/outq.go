// Package outq is the bounded per-connection outbound queue of the edge and the WebChat relay,
// measured in bytes: producers never block, one writer goroutine drains it.
package outq

import "sync"

// Queue is a connection's bounded outbound queue, measured in bytes. One writer goroutine
// drains it; producers never block.
type Queue struct {
	mu     sync.Mutex
	frames [][]byte
	bytes  int64
	max    int64
	closed bool
	// closeAfter, when set, is sent by the writer once the frames queued before it are written.
	closeAfter *CloseReq
	wake       chan struct{}
	shutCh     chan struct{} // closed by shut
}

type CloseReq struct {
	Code   int
	Reason string
}

type Result int

const (
	Pushed   Result = iota
	Dropped         // over the bound, droppable: skipped
	Overflow        // over the bound, not droppable: the connection must close
	Closing         // the queue no longer accepts frames
)

// New returns a queue holding at most max bytes.
func New(max int64) *Queue {
	return &Queue{max: max, wake: make(chan struct{}, 1), shutCh: make(chan struct{})}
}

// Push appends a frame unless that would put more than max bytes in the queue.
func (q *Queue) Push(frame []byte, droppable bool) Result {
	q.mu.Lock()
	defer q.mu.Unlock()
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
	q.signal()
	return Pushed
}

// CloseAfterFlush asks the writer to close the connection after what is queued now.
func (q *Queue) CloseAfterFlush(code int, reason string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed || q.closeAfter != nil {
		return
	}
	q.closeAfter = &CloseReq{Code: code, Reason: reason}
	q.signal()
}

// Shut stops the queue: nothing more is accepted and what is queued is dropped.
func (q *Queue) Shut() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.closed {
		close(q.shutCh)
	}
	q.closed = true
	q.frames = nil
	q.bytes = 0
	q.signal()
}

// Take removes every queued frame; their bytes stay counted until written reports them, so a
// client that stops reading fills the queue. cr is non-nil when the writer must close after
// writing them; done is true when the queue is shut.
func (q *Queue) Take(buf [][]byte) (frames [][]byte, cr *CloseReq, done bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	frames = append(buf[:0], q.frames...)
	clear(q.frames)
	q.frames = q.frames[:0]
	return frames, q.closeAfter, q.closed
}

// Written gives back the bytes of a frame the socket accepted.
func (q *Queue) Written(n int) {
	q.mu.Lock()
	q.bytes -= int64(n)
	q.mu.Unlock()
}

func (q *Queue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// Wake receives a value whenever there may be frames to take.
func (q *Queue) Wake() <-chan struct{} { return q.wake }

// Done is closed by Shut.
func (q *Queue) Done() <-chan struct{} { return q.shutCh }
