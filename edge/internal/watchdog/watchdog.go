// Package watchdog bounds the writes of a WebSocket connection with one timer per connection,
// armed around each write (or batch of writes), instead of a context with a timer of its own
// per write: a write still under way past its deadline makes the watchdog call Expire
// (which closes the connection, failing the write as a cancelled write context would).
package watchdog

import (
	"sync/atomic"
	"time"
)

// Watchdog is one connection's write watchdog. Set Expire before the first Arm; Arm and
// Disarm are called by one writer at a time.
type Watchdog struct {
	// Expire is called when a write is still under way past its deadline.
	Expire func()

	timer    *time.Timer  // made by the first Arm
	deadline atomic.Int64 // of the write under way (Unix ns); 0 while none is
}

// Arm starts watching a write that must end within d.
func (w *Watchdog) Arm(d time.Duration) {
	w.deadline.Store(time.Now().Add(d).UnixNano())
	if w.timer == nil {
		w.timer = time.AfterFunc(d, w.fire)
		return
	}
	w.timer.Reset(d)
}

// Disarm ends the watch after the write.
func (w *Watchdog) Disarm() {
	w.deadline.Store(0)
	if w.timer != nil {
		w.timer.Stop()
	}
}

// fire expires a write that is still under way past its deadline; a late fire for a write
// that ended, or for one armed since (which has a fire of its own), does nothing.
func (w *Watchdog) fire() {
	dl := w.deadline.Load()
	if dl == 0 || time.Now().UnixNano() < dl {
		return
	}
	w.Expire()
}
