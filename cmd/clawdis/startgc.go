package main

import (
	"runtime/debug"
	"sync"
)

// startupHeapLimit bounds the heap while the collector is held off during start-up.
const startupHeapLimit = 256 << 20

// holdGC holds the garbage collector off while the gateway starts and returns the function
// that restores the settings it found (safe to call more than once). Start-up allocates
// some tens of MB that are garbage once the services run (the protocol schemas' compilation,
// JetStream's set-up of its store, the WhatsApp store's migrations); with a heap of a few MB
// the collector otherwise runs cycle after cycle over it, which on two cores cost about a
// third of the time to accepting connections. The memory limit keeps a start-up that
// allocates far more than that from growing without bound; a GOGC or GOMEMLIMIT the owner
// set is restored as it was.
func holdGC() (restore func()) {
	limit := debug.SetMemoryLimit(-1) // -1 reads the current limit
	if limit > startupHeapLimit {
		debug.SetMemoryLimit(startupHeapLimit)
	}
	percent := debug.SetGCPercent(-1)
	var once sync.Once
	return func() {
		once.Do(func() {
			debug.SetGCPercent(percent)
			debug.SetMemoryLimit(limit)
		})
	}
}
