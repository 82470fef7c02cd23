package webchat

import "sync"

// outQueue is a tab's bounded outbound queue, measured in bytes (the edge's design, copied
// because the edge keeps it unexported). One writer goroutine drains it; producers never block.
type outQueue struct {
	mu     sync.Mutex
	frames [][]byte
	bytes  int64
	max    int64
	closed bool
	// closeAfter, when set, is sent by the writer once the frames queued before it are written.
	closeAfter *closeReq
	wake       chan struct{}
	shutCh     chan struct{} // closed by shut
}

type closeReq struct {
	code   int
	reason string
}

type pushResult int

const (
	pushed   pushResult = iota
	dropped             // over the bound, droppable: skipped
	overflow            // over the bound, not droppable: the connection must close
	closing             // the queue no longer accepts frames
)

func newOutQueue(max int64) *outQueue {
	return &outQueue{max: max, wake: make(chan struct{}, 1), shutCh: make(chan struct{})}
}

// push appends a frame unless that would put more than max bytes in the queue.
func (q *outQueue) push(frame []byte, droppable bool) pushResult {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed || q.closeAfter != nil {
		return closing
	}
	n := int64(len(frame))
	if q.bytes+n > q.max {
		if droppable {
			return dropped
		}
		return overflow
	}
	q.frames = append(q.frames, frame)
	q.bytes += n
	q.signal()
	return pushed
}

// closeAfterFlush asks the writer to close the connection after what is queued now.
func (q *outQueue) closeAfterFlush(code int, reason string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed || q.closeAfter != nil {
		return
	}
	q.closeAfter = &closeReq{code: code, reason: reason}
	q.signal()
}

// shut stops the queue: nothing more is accepted and what is queued is dropped.
func (q *outQueue) shut() {
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

// take removes every queued frame; their bytes stay counted until written reports them, so a
// client that stops reading fills the queue. cr is non-nil when the writer must close after
// writing them; done is true when the queue is shut.
func (q *outQueue) take(buf [][]byte) (frames [][]byte, cr *closeReq, done bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	frames = append(buf[:0], q.frames...)
	clear(q.frames)
	q.frames = q.frames[:0]
	return frames, q.closeAfter, q.closed
}

// written gives back the bytes of a frame the socket accepted.
func (q *outQueue) written(n int) {
	q.mu.Lock()
	q.bytes -= int64(n)
	q.mu.Unlock()
}

func (q *outQueue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}
