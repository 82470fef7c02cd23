package bus

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"testing"
	"time"
)

// TestWaitConnectedForALateServer: a remote connection made before its server exists waits,
// then connects once the server starts on that address.
func TestWaitConnectedForALateServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	nc, err := NewRemote("nats://"+addr, "tok", slog.New(slog.DiscardHandler)).Connect("late")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if nc.IsConnected() {
		t.Fatal("connected with no server")
	}
	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := WaitConnected(short, nc); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitConnected without a server: %v", err)
	}
	startBus(t, Config{Listen: addr, Token: "tok"})
	ctx, cancel2 := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel2()
	if err := WaitConnected(ctx, nc); err != nil {
		t.Fatalf("WaitConnected after the server started: %v", err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	nc.Close()
	if err := WaitConnected(ctx, nc); err == nil {
		t.Fatal("WaitConnected on a closed connection succeeded")
	}
}
