package edge

import (
	"sync"
	"testing"
	"testing/synctest"
)

// TestWorkerPoolReusesWorkers: jobs run on goroutines that wait for the next job, at most
// maxIdle of them; a job handed over while one waits starts no goroutine.
func TestWorkerPoolReusesWorkers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		ran := map[int]bool{}
		release := make(chan struct{})
		p := newWorkerPool(2, func(n int) {
			<-release
			mu.Lock()
			ran[n] = true
			mu.Unlock()
		})
		for n := range 5 { // five at once: five workers
			p.run(n)
		}
		close(release)
		synctest.Wait() // all done; two wait for work, three ended
		if len(ran) != 5 {
			t.Fatalf("ran %v, want 5 jobs", ran)
		}
		if n := p.idle.Load(); n != 2 {
			t.Fatalf("%d workers wait, want maxIdle 2", n)
		}
		// The next two jobs go to the waiting workers: no goroutine starts (a send to a
		// worker that waits succeeds, run's default case is not taken).
		for n := 5; n < 7; n++ {
			select {
			case p.jobs <- n:
			default:
				t.Fatalf("job %d: no worker waited", n)
			}
		}
		synctest.Wait()
		if !ran[5] || !ran[6] || p.idle.Load() != 2 {
			t.Fatalf("ran %v, %d waiting", ran, p.idle.Load())
		}
		close(p.jobs) // the waiting workers end
		synctest.Wait()
		if n := p.idle.Load(); n != 0 {
			t.Fatalf("%d workers still wait after close", n)
		}
	})
}
