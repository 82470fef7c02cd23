package edge

import (
	"strconv"
	"testing"
	"time"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func TestAuthThrottle(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	th := NewAuthThrottle(AuthRateLimit{MaxFailures: 3, Window: 10 * time.Second, Lockout: 30 * time.Second}, clk.now)
	fail := func(addr string) bool { started, _ := th.Fail(addr); return started }

	// Failures spread wider than the window never lock out.
	for range 5 {
		if fail("a") {
			t.Fatal("locked out by failures outside one window")
		}
		clk.t = clk.t.Add(6 * time.Second)
		fail("a")
		clk.t = clk.t.Add(6 * time.Second)
	}
	// Three within the window do, once; another address is not affected.
	clk.t = clk.t.Add(time.Minute)
	for i := 1; i <= 3; i++ {
		if started := fail("b"); started != (i == 3) {
			t.Fatalf("failure %d within the window: lockout started %v", i, started)
		}
	}
	if left, locked := th.Locked("b"); !locked || left != 30*time.Second {
		t.Fatalf("Locked = %v %v, want 30s true", left, locked)
	}
	if fail("b") {
		t.Fatal("a failure during the lockout started another")
	}
	if _, locked := th.Locked("c"); locked {
		t.Fatal("another address is locked out")
	}
	clk.t = clk.t.Add(29 * time.Second)
	if _, locked := th.Locked("b"); !locked {
		t.Fatal("lockout ended early")
	}
	clk.t = clk.t.Add(time.Second)
	if _, locked := th.Locked("b"); locked {
		t.Fatal("lockout did not end")
	}
	// After the lockout, counting starts afresh.
	for i := 1; i <= 3; i++ {
		if started := fail("b"); started != (i == 3) {
			t.Fatalf("failure %d after the lockout: lockout started %v", i, started)
		}
	}
}

// TestAuthThrottleBounded: the table keeps at most its size, evicting the address touched
// longest ago.
func TestAuthThrottleBounded(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	th := NewAuthThrottle(AuthRateLimit{MaxFailures: 1, Window: time.Hour, Lockout: time.Hour}, clk.now)
	th.max = 8
	th.Fail("locked")
	for i := range 100 {
		clk.t = clk.t.Add(time.Millisecond)
		th.Fail("addr-" + strconv.Itoa(i))
		if n := len(th.entries); n > th.max {
			t.Fatalf("table holds %d entries, bound %d", n, th.max)
		}
	}
	if _, locked := th.Locked("addr-99"); !locked {
		t.Fatal("the newest address was evicted")
	}
	if _, locked := th.Locked("addr-0"); locked {
		t.Fatal("the oldest address was kept")
	}
}
