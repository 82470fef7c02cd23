package provider

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/clawdis/clawdis/bus/wire"
)

// errStopped is the failure of a Run that returned nil before its context ended.
var errStopped = errors.New("network stopped unexpectedly")

// superviseAgain supervises the network until ctx ends, starting again whenever a restart
// is requested after supervision stopped for good.
func (c *Core) superviseAgain(ctx context.Context) {
	for {
		c.supervise(ctx)
		select {
		case <-ctx.Done():
			return
		case <-c.restart:
			c.log.Debug("network restart requested")
		}
	}
}

// supervise calls Network.Run until ctx ends, a *TerminalError arrives or the policy's
// MaxAttempts consecutive failures happened, waiting the policy's backoff between runs.
func (c *Core) supervise(ctx context.Context) {
	p := c.reconnect
	failures := 0
	for run := 1; ; run++ {
		c.mu.Lock()
		c.connected = false
		c.mu.Unlock()
		select { // a Run starting now serves a pending restart request
		case <-c.restart:
		default:
		}
		started := c.cfg.Now()
		c.log.Debug("network run starting", "run", run)
		err := c.runOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		var term *TerminalError
		if errors.As(err, &term) {
			level := slog.LevelWarn
			if errors.Is(err, ErrNotConfigured) || errors.Is(err, ErrNotLinked) {
				level = slog.LevelDebug // the provider state line says it, with what to do
			}
			c.log.Log(ctx, level, "network stopped for good", "state", term.State, "err", err)
			why := term.State
			if term.Err != nil {
				why = term.Err.Error()
			}
			c.setState(func(st *wire.ProviderState) {
				st.State, st.Connected, st.LastError = term.State, false, why
			})
			return
		}
		if err == nil {
			err = errStopped
		}
		c.mu.Lock()
		stable := c.connected
		c.mu.Unlock()
		if stable || c.cfg.Now().Sub(started) >= stableRun {
			failures = 0
		}
		failures++
		if p.GiveUp(failures) {
			c.log.Error("network failed; giving up", "attempts", failures, "err", err)
			c.setState(func(st *wire.ProviderState) {
				st.State, st.Connected = c.retrying, false
				st.LastError = fmt.Sprintf("gave up after %d attempts: %s", failures, err.Error())
			})
			return
		}
		d := p.Delay(failures, c.cfg.Rand)
		c.log.Warn("network failed; restarting after backoff", "attempt", failures,
			"backoff_ms", d.Milliseconds(), "err", err)
		c.setState(func(st *wire.ProviderState) {
			st.State, st.Connected, st.LastError = c.retrying, false, err.Error()
		})
		if c.cfg.Sleep(ctx, d) != nil {
			return
		}
	}
}

// runOnce calls Network.Run, turning a panic into an error.
func (c *Core) runOnce(ctx context.Context) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("network run panicked: %v", p)
		}
	}()
	return c.cfg.Network.Run(ctx, sink{c})
}

// setState changes the latest state with fn, stamps it and publishes it.
func (c *Core) setState(fn func(*wire.ProviderState)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.state
	fn(&st)
	c.publishStateLocked(st)
}

// publishStateLocked keeps st as the latest state and publishes it; Ts never goes back.
func (c *Core) publishStateLocked(st wire.ProviderState) {
	st.Provider = c.id
	st.Ts = max(c.cfg.Now().UnixMilli(), c.state.Ts)
	if st.Connected {
		c.connected = true
	}
	switch {
	case st.State != c.state.State:
		c.log.Info("provider state", "state", st.State, "connected", st.Connected,
			"last_error", st.LastError)
	case st.LastError != c.state.LastError:
		c.log.Debug("provider state", "state", st.State, "connected", st.Connected,
			"last_error", st.LastError)
	}
	c.state = st
	data, err := json.Marshal(st)
	if err == nil {
		err = c.nc.Publish(c.subjState, data)
	}
	if err != nil {
		c.log.Warn("publishing provider state failed", "err", err)
	}
}

// sink is what the core hands to Network.Run.
type sink struct{ c *Core }

// State implements Sink.
func (s sink) State(st wire.ProviderState) {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	s.c.publishStateLocked(st)
}

// Inbound implements Sink: it publishes msg to the inbound stream, with its message id for
// the stream's dedupe, and returns once the stream acknowledged it.
func (s sink) Inbound(ctx context.Context, msg wire.InboundMessage) error {
	c := s.c
	msg.Provider = c.id
	if msg.Ts == 0 {
		msg.Ts = c.cfg.Now().UnixMilli()
	}
	data, err := json.Marshal(msg)
	if err != nil {
		return fmt.Errorf("%s inbound: encode: %w", c.id, err)
	}
	var opts []jetstream.PublishOpt
	if msg.ChatID != "" && msg.MessageID != "" { // without both it cannot be deduplicated
		opts = append(opts, jetstream.WithMsgID(wire.InboundMsgID(c.id, msg.ChatID, msg.MessageID)))
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.InboundTimeout)
	defer cancel()
	ack, err := c.js.Publish(ctx, c.subjInbound, data, opts...)
	if err != nil {
		c.log.Warn("inbound message not stored; the network is not acknowledged and delivers it again",
			"chat_id", msg.ChatID, "message_id", msg.MessageID, "err", err)
		return fmt.Errorf("%s inbound: store message %s: %w", c.id, msg.MessageID, err)
	}
	if ack.Duplicate {
		c.log.Debug("duplicate inbound message", "chat_id", msg.ChatID, "message_id", msg.MessageID)
		return nil
	}
	c.log.Debug("inbound message stored", "chat_id", msg.ChatID, "message_id", msg.MessageID, "seq", ack.Sequence)
	return nil
}
