package autoreply

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/clawdis/clawdis/bus/subject"
	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/services/internal/statefile"
)

// legacyJournal is the file an earlier version kept its accepted, unanswered messages in.
type legacyJournal struct {
	Version int `json:"version"`
	Pending []struct {
		Msg wire.InboundMessage `json:"msg"`
	} `json:"pending"`
}

// migratedSuffix is appended to the earlier version's journal once its messages are in the
// inbound stream.
const migratedSuffix = ".migrated"

// migrate puts the messages of the earlier version's journal into the inbound stream, with
// their message ids (so one the provider stored meanwhile is not stored twice), and renames
// the file *.migrated; they are then answered like any other. A failure leaves the file to
// the next start.
func (s *Service) migrate(ctx context.Context) {
	path := s.cfg.LegacyJournalPath
	n, err := s.migrateJournal(ctx, path)
	switch {
	case errors.Is(err, statefile.ErrCorrupt):
		s.log.Error("pending messages of the earlier version lost: its journal is unreadable", "err", err)
	case err != nil:
		s.log.Warn("pending messages of the earlier version not migrated; trying again at the next start", "err", err)
	case n > 0:
		s.log.Info("pending messages of the earlier version put into the inbound stream", "count", n, "from", path)
	}
}

func (s *Service) migrateJournal(ctx context.Context, path string) (int, error) {
	if _, err := os.Stat(path); os.IsNotExist(err) {
		return 0, nil
	}
	var j legacyJournal
	if err := statefile.ReadJSON(path, &j, s.cfg.Now(), nil); err != nil {
		return 0, fmt.Errorf("read %s: %w", path, err)
	}
	js, err := jetstream.New(s.nc)
	if err != nil {
		return 0, fmt.Errorf("jetstream: %w", err)
	}
	n := 0
	for _, e := range j.Pending {
		m := e.Msg
		subj, err := subject.ProviderInbound(m.Provider)
		if err != nil || m.ChatID == "" || m.MessageID == "" {
			s.log.Warn("pending message of the earlier version skipped", "provider", m.Provider, "message_id", m.MessageID)
			continue
		}
		data, err := json.Marshal(m)
		if err != nil {
			return n, fmt.Errorf("encode pending message %s: %w", m.MessageID, err)
		}
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err = js.Publish(pctx, subj, data, jetstream.WithMsgID(wire.InboundMsgID(m.Provider, m.ChatID, m.MessageID)))
		cancel()
		if err != nil {
			return n, fmt.Errorf("store pending message %s: %w", m.MessageID, err)
		}
		n++
	}
	if err := os.Rename(path, path+migratedSuffix); err != nil {
		return n, fmt.Errorf("rename %s: %w", path, err)
	}
	return n, nil
}
