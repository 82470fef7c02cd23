// Package jsstore declares the gateway's JetStream streams and buckets (SPEC §13) and
// creates or updates them idempotently, with the configured number of replicas, for the
// services that use them: every service ensures what it uses when it starts, so that split
// deployments work whichever service starts first. The definitions live here only.
//
// What is stored:
//   - InboundStream: inbound provider messages, deduplicated by message id; autoreply's
//     durable consumer acknowledges each one's final outcome. Messages are kept for
//     InboundMaxAge after that, because the server rebuilds its dedupe state from the
//     messages it still holds when it restarts: a message the network delivers again
//     after a restart (its acknowledgement upstream was lost in the crash) is then still
//     recognised.
//   - RunsStream: accepted agent runs and chat turns (a work queue), stored before the
//     request is acknowledged; the agent service's durable consumer removes a run by
//     acknowledging it once its outcome is final, so the stream holds exactly the runs
//     still to finish, and a run interrupted by a crash or a stop is delivered again.
//   - IdemBucket: the remembered results of idempotent requests (agent, chat.send, provider
//     send), one key per request, for IdemTTL.
//
// Consumers are their consumers' own business (autoreply declares its durable consumer of
// the inbound stream); InboundConsumer creates or updates one.
package jsstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/clawdis/clawdis/bus/subject"
	"github.com/clawdis/clawdis/services/internal/backoff"
)

// Names and limits of the inbound stream.
const (
	// InboundStream holds every inbound message a provider accepted from its network, on
	// subject.ProviderInboundAll.
	InboundStream = "CLAWDIS_INBOUND"
	// InboundDuplicates is the window in which a message id is stored at most once.
	InboundDuplicates = 24 * time.Hour
	// InboundMaxAge is how long a message is kept, answered or not: the longest a consumer
	// may be away without losing a message.
	InboundMaxAge = 7 * 24 * time.Hour
	// InboundMaxBytes bounds the stream; past it the oldest messages (answered ones, unless
	// autoreply has been away for long) are dropped first.
	InboundMaxBytes = 1 << 30
)

// Names and limits of the stream of accepted runs.
const (
	// RunsStream holds the accepted runs that have not finished, on
	// subject.RunsAcceptedAll, one subject per run (subject.RunsAccepted).
	RunsStream = "CLAWDIS_RUNS"
	// RunsDuplicates is the window in which a run's message id (method:idempotency key)
	// is stored at most once: twice the time a finished run is remembered.
	RunsDuplicates = 2 * IdemTTL
	// RunsMaxAge outlives the longest deadline a run may have (86400 s) with a margin: a
	// run still stored past it could only end with its timeout final.
	RunsMaxAge = 25 * time.Hour
	// RunsMaxBytes bounds the stream; when it is full a new run is refused (the request
	// fails UNAVAILABLE, retryable) rather than an accepted one dropped.
	RunsMaxBytes = 256 << 20
)

// Names and limits of the idempotency bucket.
const (
	// IdemBucket is the key-value bucket of remembered results.
	IdemBucket = "clawdis_idem"
	// IdemTTL is how long a result is remembered (SPEC §6.5).
	IdemTTL = 5 * time.Minute
)

// Config says how the gateway's streams and buckets are created.
type Config struct {
	// Replicas is the number of JetStream replicas (bus.replicas): 1 on one node, 3 on a
	// three-node cluster. Default 1.
	Replicas int
	// Log reports while JetStream is not ready yet. Default discards.
	Log *slog.Logger
}

func (c Config) replicas() int { return max(c.Replicas, 1) }

// InboundConfig is the configuration of the inbound stream.
func InboundConfig(c Config) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        InboundStream,
		Description: "inbound provider messages, deduplicated by <provider>:<chat>:<message id> (SPEC §13)",
		Subjects:    []string{subject.ProviderInboundAll},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    c.replicas(),
		Duplicates:  InboundDuplicates,
		MaxAge:      InboundMaxAge,
		MaxBytes:    InboundMaxBytes,
		Discard:     jetstream.DiscardOld,
	}
}

// RunsConfig is the configuration of the stream of accepted runs.
func RunsConfig(c Config) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        RunsStream,
		Description: "accepted runs still to finish, deduplicated by method:idempotency key (SPEC §13)",
		Subjects:    []string{subject.RunsAcceptedAll},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    c.replicas(),
		Duplicates:  RunsDuplicates,
		MaxAge:      RunsMaxAge,
		MaxBytes:    RunsMaxBytes,
		Discard:     jetstream.DiscardNew,
	}
}

// IdemConfig is the configuration of the idempotency bucket.
func IdemConfig(c Config) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:      IdemBucket,
		Description: "results of idempotent requests (SPEC §6.5)",
		History:     1,
		TTL:         IdemTTL,
		Storage:     jetstream.FileStorage,
		Replicas:    c.replicas(),
	}
}

// Inbound creates or updates the inbound stream on nc's JetStream and returns it.
func Inbound(ctx context.Context, nc *nats.Conn, c Config) (jetstream.Stream, error) {
	return ensureStream(ctx, nc, c, InboundConfig(c))
}

// InboundConsumer creates or updates the inbound stream and the durable consumer cc on it,
// and returns the consumer.
func InboundConsumer(ctx context.Context, nc *nats.Conn, c Config, cc jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	s, err := Inbound(ctx, nc, c)
	if err != nil {
		return nil, err
	}
	return ensureConsumer(ctx, c, s, cc)
}

// Runs creates or updates the stream of accepted runs on nc's JetStream and returns it.
func Runs(ctx context.Context, nc *nats.Conn, c Config) (jetstream.Stream, error) {
	return ensureStream(ctx, nc, c, RunsConfig(c))
}

// RunsConsumer creates or updates the stream of accepted runs and the durable consumer cc
// on it, and returns the stream and the consumer.
func RunsConsumer(ctx context.Context, nc *nats.Conn, c Config, cc jetstream.ConsumerConfig) (jetstream.Stream, jetstream.Consumer, error) {
	s, err := Runs(ctx, nc, c)
	if err != nil {
		return nil, nil, err
	}
	cons, err := ensureConsumer(ctx, c, s, cc)
	return s, cons, err
}

// ensureStream creates or updates the stream want on nc's JetStream and returns it.
func ensureStream(ctx context.Context, nc *nats.Conn, c Config, want jetstream.StreamConfig) (jetstream.Stream, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	return ensure(ctx, c, "stream "+want.Name, func(ctx context.Context) (jetstream.Stream, error) {
		// Reading is cheaper than an update (which rewrites the stream's metadata); most
		// starts find the stream as declared.
		if s, err := js.Stream(ctx, want.Name); err == nil && sameStream(s.CachedInfo().Config, want) {
			return s, nil
		}
		return js.CreateOrUpdateStream(ctx, want)
	})
}

// ensureConsumer creates or updates the durable consumer cc on s and returns it.
func ensureConsumer(ctx context.Context, c Config, s jetstream.Stream, cc jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	return ensure(ctx, c, "consumer "+cc.Durable, func(ctx context.Context) (jetstream.Consumer, error) {
		if cons, err := s.Consumer(ctx, cc.Durable); err == nil && sameConsumer(cons.CachedInfo().Config, cc) {
			return cons, nil
		}
		return s.CreateOrUpdateConsumer(ctx, cc)
	})
}

// Idem creates or updates the idempotency bucket on nc's JetStream and returns it.
func Idem(ctx context.Context, nc *nats.Conn, c Config) (jetstream.KeyValue, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	want := IdemConfig(c)
	return ensure(ctx, c, "bucket "+IdemBucket, func(ctx context.Context) (jetstream.KeyValue, error) {
		if s, err := js.Stream(ctx, "KV_"+want.Bucket); err == nil {
			got := s.CachedInfo().Config
			if got.MaxAge == want.TTL && got.MaxMsgsPerSubject == int64(want.History) && got.Replicas == want.Replicas &&
				got.Storage == want.Storage && got.Description == want.Description {
				return js.KeyValue(ctx, want.Bucket)
			}
		}
		return js.CreateOrUpdateKeyValue(ctx, want)
	})
}

// sameStream reports whether got has what want declares.
func sameStream(got, want jetstream.StreamConfig) bool {
	return slices.Equal(got.Subjects, want.Subjects) && got.Description == want.Description &&
		got.Retention == want.Retention && got.Storage == want.Storage && got.Replicas == want.Replicas &&
		got.Duplicates == want.Duplicates && got.MaxAge == want.MaxAge && got.MaxBytes == want.MaxBytes &&
		got.Discard == want.Discard
}

// sameConsumer reports whether got has what want declares.
func sameConsumer(got, want jetstream.ConsumerConfig) bool {
	return got.Durable == want.Durable && got.Description == want.Description && got.AckPolicy == want.AckPolicy &&
		got.AckWait == want.AckWait && got.MaxDeliver == want.MaxDeliver && got.MaxAckPending == want.MaxAckPending &&
		slices.Equal(got.FilterSubjects, want.FilterSubjects) && got.FilterSubject == want.FilterSubject
}

// Bounds of ensure's attempts.
const (
	attemptTimeout = 5 * time.Second
	retryInitial   = 50 * time.Millisecond
	retryMax       = 2 * time.Second
)

// ensure runs create until it succeeds or ctx ends. JetStream may not be ready when a
// service starts (a cluster still electing its leader, a bus node not yet joined, peers
// for the replicas still missing); each failure is retried with backoff and logged when it
// changes.
func ensure[T any](ctx context.Context, c Config, what string, create func(context.Context) (T, error)) (T, error) {
	log := c.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	retry := backoff.Policy{Initial: retryInitial, Max: retryMax}
	var last string
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, attemptTimeout)
		v, err := create(actx)
		cancel()
		if err == nil {
			if last != "" {
				log.Info("jetstream ready", "what", what, "attempts", attempt)
			}
			return v, nil
		}
		if ctx.Err() != nil {
			return v, fmt.Errorf("create %s: %w (last error: %w)", what, ctx.Err(), err)
		}
		if !transient(err) {
			return v, fmt.Errorf("create %s: %w", what, err)
		}
		if msg := err.Error(); msg != last {
			log.Warn("waiting for jetstream", "what", what, "err", err)
			last = msg
		}
		if err := backoff.Sleep(ctx, retry.Delay(attempt, nil)); err != nil {
			return v, fmt.Errorf("create %s: %w", what, err)
		}
	}
}

// transient reports whether a failure to create a stream or bucket may go away by itself:
// anything but a configuration the server refuses outright.
func transient(err error) bool {
	var api *jetstream.APIError
	if !errors.As(err, &api) {
		return true // no answer yet, not enabled yet, a connection in between
	}
	switch api.ErrorCode {
	case jetstream.JSErrCodeBadRequest, jetstream.JSErrCodeStreamNameInUse:
		return false
	}
	return true
}
