package autoreply

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/clawdis/clawdis/bus/subject"
	"github.com/clawdis/clawdis/bus/wire"
)

// streamAckTimeout bounds the wait for the stream to confirm an acknowledgement.
const streamAckTimeout = 5 * time.Second

// handBackDelay is how long after a stopping service handed a message back it can be
// delivered again.
const handBackDelay = 250 * time.Millisecond

// outcome is what working on a message came to.
type outcome int

const (
	answered    outcome = iota // the reply was sent: final
	notAnswered                // decided not to answer (the reason logged): final
	retryLater                 // the agent or provider was unavailable: deliver again later
	interrupted                // the service stops: deliver again (to the next consumer) soon
)

// handle works one delivery of the inbound stream to its outcome and tells the stream: a
// final outcome is acknowledged (then logged at info with its reason), any other hands the
// message back for another delivery. A delivery past MaxDeliveries is only logged as given
// up, so a message that keeps failing, or crashes the service, cannot do so forever.
func (s *Service) handle(ctx context.Context, m jetstream.Msg) {
	deliveries := uint64(1)
	if meta, err := m.Metadata(); err == nil {
		deliveries = meta.NumDelivered
	}
	id := s.inbound[m.Subject()]
	var msg wire.InboundMessage
	if err := json.Unmarshal(m.Data(), &msg); err != nil {
		s.log.Warn("inbound message not answered", "reason", "malformed", "subject", m.Subject(), "err", err)
		s.finish(m, s.log)
		s.tell(id, wire.InboundNotAnswered, "malformed")
		return
	}
	if msg.Provider != id {
		if msg.Provider != "" {
			s.log.Warn("inbound message names another provider than its subject",
				"subject", m.Subject(), "provider", msg.Provider)
		}
		msg.Provider = id
	}
	log := s.log.With("provider", id, "chat_id", msg.ChatID, "message_id", msg.MessageID)
	if deliveries > uint64(s.cfg.MaxDeliveries) {
		log.Error("inbound message given up: no final outcome in its deliveries", "deliveries", deliveries-1)
		s.finish(m, log)
		s.tell(id, wire.InboundGivenUp, "")
		return
	}
	if why := s.skip(msg); why != "" {
		s.finish(m, log)
		log.Info("inbound not answered", "reason", why, "chat_type", msg.ChatType)
		s.tell(id, wire.InboundNotAnswered, why)
		return
	}
	key := runKey(msg)
	if !s.claim(key) {
		log.Debug("message already being answered; this delivery is left to that one")
		return
	}
	defer s.release(key)
	log = log.With("run_id", key)
	log.Debug("message accepted", "deliveries", deliveries)
	stop := s.inProgress(m, log)
	out, why := s.process(ctx, log, msg, key, deliveries == 1)
	stop()
	switch out {
	case answered:
		s.finish(m, log)
		log.Info("inbound answered")
		s.tell(id, wire.InboundAnswered, "")
	case notAnswered:
		s.finish(m, log)
		log.Info("inbound not answered", "reason", why)
		s.tell(id, wire.InboundNotAnswered, why)
	case retryLater:
		log.Warn("inbound message not answered yet; the stream delivers it again", "reason", why,
			"deliveries", deliveries, "retry_in", s.cfg.RetryMax)
		s.tell(id, wire.InboundRetry, why)
		if err := m.NakWithDelay(s.cfg.RetryMax); err != nil {
			log.Warn("handing the message back failed; it comes again after its ack wait", "err", err)
		}
	case interrupted:
		// Not at once: the pull this service had waiting is cancelled as it stops, but its
		// end may reach the server after this hand-back, which would then deliver the
		// message to that dead pull (and so only after AckWait).
		log.Debug("stopping; the message goes back to the stream")
		if err := m.NakWithDelay(handBackDelay); err != nil {
			log.Debug("handing the message back failed; it comes again after its ack wait", "err", err)
		}
	}
}

// tell publishes what became of a delivery of provider's inbound message, for the metrics.
// Best effort: a lost event costs one count, never a message.
func (s *Service) tell(provider, outcome, reason string) {
	data, err := json.Marshal(wire.InboundOutcome{Provider: provider, Outcome: outcome, Reason: reason})
	if err == nil {
		_ = s.nc.Publish(subject.InboundOutcome, data)
	}
}

// skip is why msg gets no answer, or "".
func (s *Service) skip(msg wire.InboundMessage) string {
	switch {
	case msg.ChatID == "" || msg.MessageID == "":
		return "no chat or message id"
	case s.echo.isEcho(msg):
		return "own reply echoed back"
	}
	return s.cfg.allow(msg)
}

// finish acknowledges m's final outcome and waits for the stream to confirm it. A lost
// acknowledgement means one more delivery, which the idempotency keys make harmless.
func (s *Service) finish(m jetstream.Msg, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), streamAckTimeout)
	defer cancel()
	if err := m.DoubleAck(ctx); err != nil {
		log.Warn("acknowledging the message failed; it may be delivered once more", "err", err)
	}
}
