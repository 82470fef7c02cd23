package edge

import (
	"context"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/clawdis/clawdis/edge/edgetest"
)

// closeSignal wraps a listener so that the test learns when the server closes a connection
// it accepted.
type closeSignal struct {
	net.Listener
	closed chan struct{} // closed when the first accepted connection is closed
	once   *sync.Once
}

func (l closeSignal) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return c, err
	}
	return signalConn{c, l}, nil
}

type signalConn struct {
	net.Conn
	l closeSignal
}

func (c signalConn) Close() error {
	c.l.once.Do(func() { close(c.l.closed) })
	return c.Conn.Close()
}

// TestStuckWriteClosesConnection: a client that stops reading while frames are written to
// it is closed once a write has waited WriteTimeout, although its queue has room left.
func TestStuckWriteClosesConnection(t *testing.T) {
	sig := closeSignal{closed: make(chan struct{}), once: new(sync.Once)}
	g := startEdge(t, func(c *Config) {
		sig.Listener = edgetest.SmallSendBuffer(c.Listener)
		c.Listener = sig
		c.MaxBufferedBytes = 64 << 20 // the queue never overflows here
		c.WriteTimeout = 100 * time.Millisecond
	})
	startFakeServices(t, g.nc)

	// A client with a small receive buffer, so that a few frames fill both socket buffers.
	dialer := &net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		if err != nil {
			return err
		}
		return serr
	}}
	hc := &http.Client{Transport: &http.Transport{DialContext: dialer.DialContext}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, g.url, &websocket.DialOptions{HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ws.CloseNow() })
	slow := edgetest.NewClient(t, ws)
	slow.Send(hello("cli"))
	if m := slow.Next(); m["type"] != "hello-ok" {
		t.Fatalf("want hello-ok, got %v", m)
	}

	// 2 MB of events, far beyond both socket buffers, far below the queue bound: the
	// writer gets stuck, and only its deadline ends it.
	text := strings.Repeat("p", 1000)
	for range 100 {
		publishPresence(t, g, 20, text)
	}
	<-sig.closed
	for {
		if _, err := slow.Read(); err != nil {
			return // the connection ended: the frames written before the deadline, then EOF
		}
	}
}
