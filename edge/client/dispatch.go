package client

import (
	"sync"
	"sync/atomic"
)

// dispatcher runs the user's callbacks in order on one goroutine. Pushing never blocks (the
// queue is unbounded), so the connection's reader always keeps reading and callbacks may
// call Request or Close.
type dispatcher struct {
	mu      sync.Mutex
	queue   []func()
	stopped bool // no more pushes; run exits once the queue is empty

	wake       chan struct{} // capacity 1
	done       chan struct{} // closed when run returns
	inCallback atomic.Bool   // a callback is running right now
}

func newDispatcher() *dispatcher {
	return &dispatcher{wake: make(chan struct{}, 1), done: make(chan struct{})}
}

// push queues f; it is dropped once stop was called.
func (d *dispatcher) push(f func()) {
	d.mu.Lock()
	if d.stopped {
		d.mu.Unlock()
		return
	}
	d.queue = append(d.queue, f)
	d.mu.Unlock()
	d.signal()
}

// stop makes run return after it has run everything queued so far.
func (d *dispatcher) stop() {
	d.mu.Lock()
	d.stopped = true
	d.mu.Unlock()
	d.signal()
}

func (d *dispatcher) signal() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// run executes queued callbacks until stop; it closes done on return.
func (d *dispatcher) run() {
	defer close(d.done)
	for {
		d.mu.Lock()
		batch, stopped := d.queue, d.stopped
		d.queue = nil
		d.mu.Unlock()
		for i, f := range batch {
			batch[i] = nil
			d.inCallback.Store(true)
			f()
			d.inCallback.Store(false)
		}
		if len(batch) == 0 {
			if stopped {
				return
			}
			<-d.wake
		}
	}
}
