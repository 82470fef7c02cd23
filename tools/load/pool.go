package main

import (
	"context"
	"errors"
	"fmt"
	"math"
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

// hold keeps the connections open until ctx ends, idle, or sending o.rate health requests
// per second round-robin over them, or with o.max as many as they answer. It returns after
// every request it started has finished.
func (p *pool) hold(ctx context.Context) {
	switch {
	case p.o.max:
		p.saturate(ctx)
	case p.o.rate > 0:
		p.pace(ctx)
	default:
		<-ctx.Done()
	}
}

// saturate has o.inflight workers per connection send health requests back to back until
// ctx ends or o.requests (when set) were sent in all. Each worker keeps its own latencies
// so that recording them costs no lock on the hot path.
func (p *pool) saturate(ctx context.Context) {
	var budget atomic.Int64
	budget.Store(math.MaxInt64)
	if p.o.requests > 0 {
		budget.Store(int64(p.o.requests))
	}
	var wg sync.WaitGroup
	for _, c := range p.clients {
		for range p.o.inflight {
			wg.Go(func() {
				var lat []time.Duration
				var errs errCounter
				for ctx.Err() == nil && budget.Add(-1) >= 0 {
					d, err := p.request(c)
					if err != nil {
						errs.add(err)
						continue
					}
					lat = append(lat, d)
				}
				p.mu.Lock()
				p.latencies = append(p.latencies, lat...)
				p.reqErrs.merge(&errs)
				p.mu.Unlock()
			})
		}
	}
	wg.Wait()
}

// pace sends o.rate health requests per second round-robin over the connections until ctx
// ends.
func (p *pool) pace(ctx context.Context) {
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
				wg.Go(func() {
					d, err := p.request(c)
					p.mu.Lock()
					defer p.mu.Unlock()
					if err != nil {
						p.reqErrs.add(err)
						return
					}
					p.latencies = append(p.latencies, d)
				})
			}
		}
	}
}

// request sends one health request on c and returns its round-trip time.
func (p *pool) request(c *client.Client) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), p.o.reqTimeout)
	defer cancel()
	t0 := time.Now()
	_, err := c.Request(ctx, schemas.MethodHealth, nil)
	return time.Since(t0), err
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
