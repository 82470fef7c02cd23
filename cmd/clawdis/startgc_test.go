package main

import (
	"math"
	"runtime/debug"
	"testing"
)

// gcPercent reads the collector's GOGC setting.
func gcPercent() int {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p
}

// TestHoldGCNested: starts that overlap (tests run several gateways in one process) hold the
// collector off until the last one is done, and the settings found before the first are
// restored, not the held ones.
func TestHoldGCNested(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(150))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(math.MaxInt64))
	first := holdGC()
	second := holdGC()
	if p, l := gcPercent(), debug.SetMemoryLimit(-1); p != -1 || l != startupHeapLimit {
		t.Fatalf("while starting: GOGC %d, limit %d; want off, %d", p, l, startupHeapLimit)
	}
	first()
	first() // a second call does nothing
	if p := gcPercent(); p != -1 {
		t.Fatalf("one start still in progress: GOGC %d, want off", p)
	}
	second()
	if p, l := gcPercent(), debug.SetMemoryLimit(-1); p != 150 || l != math.MaxInt64 {
		t.Fatalf("after both: GOGC %d, limit %d; want 150 and no limit as before", p, l)
	}
}
