package watchdog

import (
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// TestExpiresAWriteOverItsDeadline: a write still under way at its deadline expires, once;
// one disarmed in time does not, and neither does the fire of an earlier, disarmed write
// while a later one is still within its own deadline.
func TestExpiresAWriteOverItsDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var expired atomic.Int32
		w := &Watchdog{Expire: func() { expired.Add(1) }}

		w.Arm(time.Second) // a write that ends in time
		time.Sleep(500 * time.Millisecond)
		w.Disarm()
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if n := expired.Load(); n != 0 {
			t.Fatalf("a write that ended in time expired %d times", n)
		}

		w.Arm(time.Second) // a write that hangs
		time.Sleep(999 * time.Millisecond)
		synctest.Wait()
		if n := expired.Load(); n != 0 {
			t.Fatalf("expired %d times before the deadline", n)
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		if n := expired.Load(); n != 1 {
			t.Fatalf("a write past its deadline expired %d times, want once", n)
		}
		w.Disarm()

		w.Arm(time.Second) // re-armed with a longer deadline right after a shorter one
		w.Disarm()
		w.Arm(3 * time.Second)
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if n := expired.Load(); n != 1 {
			t.Fatalf("a write within its deadline expired (%d)", n)
		}
		w.Disarm()
	})
}
