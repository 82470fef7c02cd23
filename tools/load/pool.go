package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/clawdis/clawdis/edge/client"
	"github.com/clawdis/clawdis/schemas"
)

// pool is the set of client connections and what was measured on them.
type pool struct {
	o       options
	clients []*client.Client // after open; only the run goroutine touches it

	mu           sync.Mutex
	connectTimes []time.Duration
	latencies    []time.Duration
	dialErrs     errCounter
	reqErrs      errCounter
	drops        atomic.Int64 // connections lost other than by closeAll
}

func newPool(o options) *pool { return &pool{o: o} }

// open dials o.conns connections, o.parallel at a time, until all are tried or ctx ends.
func (p *pool) open(ctx context.Context) {
	slots := make([]*client.Client, p.o.conns)
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(p.o.parallel, p.o.conns) {
		wg.Go(func() {
			for i := range next {
				slots[i] = p.dial(ctx, i)
			}
		})
	}
feed:
	for i := range p.o.conns {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	for _, c := range slots {
		if c != nil {
			p.clients = append(p.clients, c)
		}
	}
}

func (p *pool) dial(ctx context.Context, i int) *client.Client {
	t0 := time.Now()
	c, err := client.Dial(ctx, client.Options{
		URL:   p.o.url,
		Token: p.o.token,
		Client: schemas.ClientInfo{Name: "clawdis-load", Version: "dev", Platform: runtime.GOOS, Mode: p.o.mode,
			InstanceID: fmt.Sprintf("load-%d-%d", os.Getpid(), i)},
		DialTimeout: p.o.dialTimeout,
		OnDisconnect: func(err error) {
			if !errors.Is(err, client.ErrClosed) {
				p.drops.Add(1)
			}
		},
	})
	d := time.Since(t0)
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		p.dialErrs.add(err)
		return nil
	}
	p.connectTimes = append(p.connectTimes, d)
	return c
}

// hold keeps the connections open until ctx ends, sending o.rate health requests per second
// round-robin over them. It returns after every request it started has finished.
func (p *pool) hold(ctx context.Context) {
	if p.o.rate <= 0 {
		<-ctx.Done()
		return
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	// A coarse ticker that sends whatever is due keeps any rate exact without a timer per
	// request.
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	start := time.Now()
	sent := 0
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			due := int(now.Sub(start).Seconds() * p.o.rate)
			for ; sent < due; sent++ {
				c := p.clients[sent%len(p.clients)]
				wg.Go(func() { p.request(c) })
			}
		}
	}
}

func (p *pool) request(c *client.Client) {
	ctx, cancel := context.WithTimeout(context.Background(), p.o.reqTimeout)
	defer cancel()
	t0 := time.Now()
	_, err := c.Request(ctx, schemas.MethodHealth, nil)
	d := time.Since(t0)
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		p.reqErrs.add(err)
		return
	}
	p.latencies = append(p.latencies, d)
}

// closeAll closes every connection, o.parallel at a time.
func (p *pool) closeAll() {
	next := make(chan *client.Client)
	var wg sync.WaitGroup
	for range min(p.o.parallel, max(len(p.clients), 1)) {
		wg.Go(func() {
			for c := range next {
				_ = c.Close()
			}
		})
	}
	for _, c := range p.clients {
		next <- c
	}
	close(next)
	wg.Wait()
	p.clients = nil
}
