package edge

import "sync"

// frameBufs recycles the buffers of written frames. Every frame in a connection's queue is
// the connection's own (a res, its hello-ok, or an event encoded for it with its seq), so
// once written its buffer can hold the next frame: a res or an event then costs no
// allocation. At most maxFrameBufs buffers of up to maxFrameBuf bytes wait, whatever the
// number of connections.
var frameBufs framePool

const (
	maxFrameBufs = 256
	maxFrameBuf  = 8 << 10
)

type framePool struct {
	mu   sync.Mutex
	free [][]byte
}

// get returns an empty buffer with room for n bytes.
func (p *framePool) get(n int) []byte {
	p.mu.Lock()
	if k := len(p.free); k > 0 && cap(p.free[k-1]) >= n {
		b := p.free[k-1]
		p.free[k-1] = nil
		p.free = p.free[:k-1]
		p.mu.Unlock()
		return b
	}
	p.mu.Unlock()
	return make([]byte, 0, n)
}

// put keeps b for a later frame; nothing may use b afterwards.
func (p *framePool) put(b []byte) {
	if cap(b) > maxFrameBuf || cap(b) == 0 {
		return
	}
	p.mu.Lock()
	if len(p.free) < maxFrameBufs {
		p.free = append(p.free, b[:0])
	}
	p.mu.Unlock()
}
