package main

import (
	"runtime/debug"
	"sync"
)

// startupHeapLimit bounds the heap while the collector is held off during start-up.
const startupHeapLimit = 256 << 20

// gcHold counts the starts in progress (tests run several gateways in one process): the
// first saves the collector's settings, the last restores them.
var gcHold struct {
	sync.Mutex
	n            int
	percent      int
	limit        int64
	limitLowered bool
}

// holdGC holds the garbage collector off while the gateway starts and returns the function
// that restores the settings it found (safe to call more than once). Start-up allocates
// some tens of MB that are garbage once the services run (the protocol schemas'
// compilation, JetStream's set-up of its store, the WhatsApp store's migrations); with a
// heap of a few MB the collector otherwise runs cycle after cycle over it, on two cores
// several milliseconds of the time to accepting connections. The memory limit keeps a
// start-up that allocates far more than that from growing without bound; a GOGC or
// GOMEMLIMIT the owner set is restored as it was.
func holdGC() (restore func()) {
	gcHold.Lock()
	if gcHold.n == 0 {
		gcHold.limit = debug.SetMemoryLimit(-1) // -1 reads the current limit
		gcHold.limitLowered = gcHold.limit > startupHeapLimit
		if gcHold.limitLowered {
			debug.SetMemoryLimit(startupHeapLimit)
		}
		gcHold.percent = debug.SetGCPercent(-1)
	}
	gcHold.n++
	gcHold.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			gcHold.Lock()
			defer gcHold.Unlock()
			if gcHold.n--; gcHold.n > 0 {
				return
			}
			debug.SetGCPercent(gcHold.percent)
			if gcHold.limitLowered {
				debug.SetMemoryLimit(gcHold.limit)
			}
		})
	}
}
