package main

import (
	"context"
	"runtime"

	"github.com/clawdis/clawdis/edge/client"
	"github.com/clawdis/clawdis/schemas"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// daemon is a gateway run in-process by runGateway, as `clawdis gateway` runs it.
type daemon struct {
	t      testing.TB
	url    string
	state  string
	logs   *syncBuf
	cancel context.CancelFunc
	done   chan error
}

// startDaemon runs a gateway on a free loopback port with state dir state, writing config
// (JSON5 text, may be empty) to its config file first. It is stopped at cleanup.
func startDaemon(t testing.TB, state, config string, mod func(*daemonFlags)) *daemon {
	t.Helper()
	if config != "" {
		if err := os.WriteFile(filepath.Join(state, "clawdis.json"), []byte(config), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	d := &daemon{t: t, url: "ws://127.0.0.1:" + strconv.Itoa(port), state: state, logs: &syncBuf{},
		cancel: cancel, done: make(chan error, 1)}
	log, _ := newLogger(d.logs, "json", false)
	listening := make(chan string, 1)
	df := daemonFlags{port: port, stateDir: state, noProviders: true, noWebchat: true,
		listening: func(addr string) { listening <- addr }}
	if mod != nil {
		mod(&df)
	}
	go func() { d.done <- runGateway(ctx, df, log) }()
	select {
	case <-listening:
	case err := <-d.done:
		t.Fatalf("gateway exited: %v\nlogs: %s", err, d.logs.String())
	}
	t.Cleanup(d.stop)
	return d
}

// stop ends the gateway and checks that it stopped cleanly; calling it twice is harmless.
func (d *daemon) stop() {
	d.t.Helper()
	if d.done == nil {
		return
	}
	d.cancel()
	select {
	case err := <-d.done:
		if err != nil {
			d.t.Errorf("runGateway: %v\nlogs: %s", err, d.logs.String())
		}
	case <-time.After(30 * time.Second):
		d.t.Fatal("gateway did not stop")
	}
	d.done = nil
}

// dialTest connects a validating client that records every event.
func dialTest(t testing.TB, url, mode string, events chan<- schemas.Event) *client.Client {
	t.Helper()
	opts := client.Options{URL: url, Client: schemas.ClientInfo{Name: "e2e", Version: "1", Platform: runtime.GOOS, Mode: mode}}
	if events != nil {
		opts.OnEvent = func(ev schemas.Event) { events <- ev }
	}
	return dialClient(t, opts)
}
