package edge

import "sync/atomic"

// workerPool runs jobs on goroutines that wait for the next job when done. At most maxIdle
// wait at once (parked, they cost no CPU and hold no timer); a worker that finds that many
// waiting ends after its job.
type workerPool[T any] struct {
	jobs    chan T // unbuffered: a send succeeds only to a waiting worker
	idle    atomic.Int32
	maxIdle int32
	do      func(T)
}

func newWorkerPool[T any](maxIdle int32, do func(T)) *workerPool[T] {
	return &workerPool[T]{jobs: make(chan T), maxIdle: maxIdle, do: do}
}

// run hands job to a waiting worker, or to a new one when none waits.
func (p *workerPool[T]) run(job T) {
	select {
	case p.jobs <- job:
	default:
		go p.work(job)
	}
}

// work does job, then waits for the next one unless enough workers wait already.
func (p *workerPool[T]) work(job T) {
	for {
		p.do(job)
		if p.idle.Add(1) > p.maxIdle {
			p.idle.Add(-1)
			return
		}
		var ok bool
		job, ok = <-p.jobs
		p.idle.Add(-1)
		if !ok {
			return // closed: only tests end a pool
		}
	}
}
