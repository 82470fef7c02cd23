package client

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/clawdis/clawdis/schemas"
)

func TestReconnectAfterRestart(t *testing.T) {
	s := newFakeServer(t, fakeConfig{})
	rec := newRecorder()
	c := dial(t, s, rec.options(Options{Reconnect: true, Backoff: Backoff{Initial: time.Millisecond, Max: 10 * time.Millisecond}}))
	fc1 := recv(t, s.connected, "first connection")
	for seq := int64(1); seq <= 5; seq++ {
		if err := fc1.event(schemas.EventTick, seq); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"connect conn-1", "event tick 1", "event tick 2", "event tick 3", "event tick 4", "event tick 5"}
	if got := rec.take(t, len(want)); !reflect.DeepEqual(got, want) {
		t.Fatalf("callbacks:\n got %q\nwant %q", got, want)
	}

	s.stop(websocket.StatusServiceRestart, "service restart")
	if got := rec.take(t, 1); got[0] != "disconnect" {
		t.Fatalf("callback after the stop = %q, want disconnect", got)
	}
	var ce *CloseError
	if cause := recv(t, rec.drops, "OnDisconnect"); !errors.As(cause, &ce) || ce.Code != 1012 {
		t.Errorf("drop cause = %v, want the 1012 close", cause)
	}
	if _, err := c.Request(context.Background(), schemas.MethodHealth, nil); !errors.Is(err, ErrDisconnected) || errors.Is(err, ErrClosed) {
		t.Errorf("request while reconnecting: %v, want ErrDisconnected", err)
	}
	select {
	case <-c.Done():
		t.Fatal("Done closed by a reconnectable drop")
	default:
	}

	s.restart()
	fc2 := recv(t, s.connected, "second connection")
	// Seq tracking restarts: 1 is no gap, 3 after 1 is.
	for _, seq := range []int64{1, 3} {
		if err := fc2.event(schemas.EventTick, seq); err != nil {
			t.Fatal(err)
		}
	}
	want = []string{"connect conn-2", "event tick 1", "gap 2 3", "event tick 3"}
	if got := rec.take(t, len(want)); !reflect.DeepEqual(got, want) {
		t.Errorf("callbacks after the reconnect:\n got %q\nwant %q", got, want)
	}
	if id := c.Hello().Server.ConnID; id != "conn-2" {
		t.Errorf("Hello().Server.ConnID = %q after the reconnect, want conn-2", id)
	}
	if _, err := c.Request(context.Background(), schemas.MethodHealth, nil); err != nil {
		t.Errorf("request after the reconnect: %v", err)
	}
	if n := len(rec.connects); n != 2 {
		t.Errorf("OnConnect called %d times, want 2", n)
	}
}

func TestTickWatchdog(t *testing.T) {
	for _, reconnect := range []bool{false, true} {
		t.Run(fmt.Sprintf("reconnect=%v", reconnect), func(t *testing.T) {
			// Window 2×150ms. The fake ticks every 25ms for 500ms (longer than the window, so
			// the ticks must keep resetting it), then stops.
			s := newFakeServer(t, fakeConfig{tickIntervalMs: 150})
			rec := newRecorder()
			c := dial(t, s, rec.options(Options{Reconnect: reconnect, Backoff: Backoff{Initial: time.Millisecond}}))
			fc := recv(t, s.connected, "connection")
			const ticks = 20
			ticker := time.NewTicker(25 * time.Millisecond)
			for seq := int64(1); seq <= ticks; seq++ {
				<-ticker.C
				if err := fc.event(schemas.EventTick, seq); err != nil {
					t.Fatalf("tick %d: %v (the client closed while ticks were flowing)", seq, err)
				}
			}
			ticker.Stop()

			closed(t, fc.gone, "the client to close the connection")
			var ce websocket.CloseError
			if !errors.As(fc.readErr, &ce) || ce.Code != CloseCodeTickTimeout || ce.Reason != "tick timeout" {
				t.Errorf("server saw %v, want close 4000 \"tick timeout\"", fc.readErr)
			}
			want := []string{"connect conn-1"}
			for seq := 1; seq <= ticks; seq++ {
				want = append(want, fmt.Sprintf("event tick %d", seq))
			}
			want = append(want, "disconnect")
			if got := rec.take(t, len(want)); !reflect.DeepEqual(got, want) {
				t.Errorf("callbacks:\n got %q\nwant %q", got, want)
			}
			if cause := recv(t, rec.drops, "OnDisconnect"); !errors.Is(cause, ErrTickTimeout) {
				t.Errorf("drop cause = %v, want ErrTickTimeout", cause)
			}
			if reconnect {
				recv(t, s.connected, "the reconnection")
				return
			}
			closed(t, c.Done(), "Done")
			if !errors.Is(c.Err(), ErrTickTimeout) {
				t.Errorf("Err() = %v, want ErrTickTimeout", c.Err())
			}
		})
	}
}

func TestClose(t *testing.T) {
	t.Run("while connected", func(t *testing.T) {
		s := newFakeServer(t, fakeConfig{})
		rec := newRecorder()
		c := dial(t, s, rec.options(Options{Reconnect: true, Backoff: Backoff{Initial: time.Millisecond}}))
		fc := recv(t, s.connected, "connection")
		if err := c.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		closed(t, c.Done(), "Done")
		closed(t, fc.gone, "server side of the connection")
		if code := websocket.CloseStatus(fc.readErr); code != websocket.StatusNormalClosure {
			t.Errorf("server saw close status %v (%v), want 1000", code, fc.readErr)
		}
		if got, want := rec.take(t, 2), []string{"connect conn-1", "disconnect"}; !reflect.DeepEqual(got, want) {
			t.Errorf("callbacks = %q, want %q", got, want)
		}
		if cause := recv(t, rec.drops, "OnDisconnect"); !errors.Is(cause, ErrClosed) {
			t.Errorf("drop cause = %v, want ErrClosed", cause)
		}
		if !errors.Is(c.Err(), ErrClosed) {
			t.Errorf("Err() = %v, want ErrClosed", c.Err())
		}
		if _, err := c.Request(context.Background(), schemas.MethodHealth, nil); !errors.Is(err, ErrClosed) {
			t.Errorf("request after Close: %v, want ErrClosed", err)
		}
		// Close waited for every goroutine, so no reconnect can still happen.
		if n := s.connections(); n != 1 {
			t.Errorf("server saw %d connections, want 1", n)
		}
		if err := c.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
	})

	t.Run("while waiting to reconnect", func(t *testing.T) {
		s := newFakeServer(t, fakeConfig{})
		rec := newRecorder()
		c := dial(t, s, rec.options(Options{Reconnect: true, Backoff: Backoff{Initial: time.Hour, Max: time.Hour}}))
		s.stop(websocket.StatusServiceRestart, "service restart")
		recv(t, rec.drops, "OnDisconnect")
		done := make(chan error, 1)
		go func() { done <- c.Close() }()
		if err := recv(t, done, "Close during the backoff"); err != nil {
			t.Errorf("Close: %v", err)
		}
		closed(t, c.Done(), "Done")
		if !errors.Is(c.Err(), ErrClosed) {
			t.Errorf("Err() = %v, want ErrClosed", c.Err())
		}
	})

	t.Run("from a callback", func(t *testing.T) {
		s := newFakeServer(t, fakeConfig{})
		var client atomic.Pointer[Client]
		closeErr := make(chan error, 1)
		c := dial(t, s, Options{Reconnect: true, OnEvent: func(ev schemas.Event) {
			if ev.Event == schemas.EventShutdown {
				closeErr <- client.Load().Close()
			}
		}})
		client.Store(c)
		fc := recv(t, s.connected, "connection")
		if err := fc.event(schemas.EventShutdown, 1); err != nil {
			t.Fatal(err)
		}
		if err := recv(t, closeErr, "Close from OnEvent"); err != nil {
			t.Errorf("Close: %v", err)
		}
		closed(t, c.Done(), "Done")
		closed(t, fc.gone, "server side of the connection")
		if code := websocket.CloseStatus(fc.readErr); code != websocket.StatusNormalClosure {
			t.Errorf("server saw close status %v, want 1000", code)
		}
	})
}
