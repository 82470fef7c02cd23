package provider_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clawdis/clawdis/bus/subject"
	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/schemas"
	"github.com/clawdis/clawdis/services/provider"
	"github.com/clawdis/clawdis/services/provider/providertest"
)

func TestSendCoalescesConcurrentDuplicates(t *testing.T) {
	h := newHarness(t)
	f := providertest.NewFake(netID)
	f.SetAutoConnect(true)
	h.start(h.config(f))
	h.waitConnected()

	release := f.HoldSends()
	params := schemas.SendParams{To: "+4366012345", Message: "only once", IdempotencyKey: "key-1"}
	const n = 5
	results := make([]schemas.SendResult, n)
	errs := make([]*wire.Error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { results[i], errs[i] = h.send(params) })
	}
	select {
	case <-f.SendStarted():
	case <-time.After(waitLimit):
		t.Fatal("no send started")
	}
	release()
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("send %d: %v", i, errs[i])
		}
		if results[i] != results[0] {
			t.Errorf("send %d got %+v, send 0 got %+v", i, results[i], results[0])
		}
	}
	want := schemas.SendResult{RunID: "key-1", MessageID: "fake-1", Provider: netID, ChatID: "+4366012345"}
	if results[0] != want {
		t.Errorf("result %+v, want %+v", results[0], want)
	}
	// A later repeat gets the remembered result and delivers nothing.
	if res, werr := h.send(params); werr != nil || res != want {
		t.Errorf("repeat: %+v %v", res, werr)
	}
	if c := f.SendCount(); c != 1 {
		t.Errorf("%d deliveries, want 1", c)
	}
}

func TestSendErrors(t *testing.T) {
	h := newHarness(t)
	f := providertest.NewFake(netID)
	h.start(h.config(f))
	waitRun(t, f, 1)

	// Linked but not connected: retryable, and not remembered.
	p := schemas.SendParams{To: "+4366012345", Message: "hi", IdempotencyKey: "while-reconnecting"}
	_, werr := h.send(p)
	if werr == nil || werr.Code != wire.CodeUnavailable || !werr.Retryable {
		t.Fatalf("send while not connected: %+v, want UNAVAILABLE retryable", werr)
	}
	f.Connect()
	h.waitConnected()
	if res, werr := h.send(p); werr != nil || res.MessageID == "" {
		t.Fatalf("retry after connecting: %+v %v", res, werr)
	}

	for _, tt := range []struct {
		name      string
		setup     func()
		params    schemas.SendParams
		code      string
		retryable bool
		contains  string
	}{
		{"missing key", nil, schemas.SendParams{To: "+1", Message: "x"}, wire.CodeInvalidRequest, false, "idempotencyKey"},
		{"missing to", nil, schemas.SendParams{Message: "x", IdempotencyKey: "a"}, wire.CodeInvalidRequest, false, "to required"},
		{"missing message", nil, schemas.SendParams{To: "+1", IdempotencyKey: "b"}, wire.CodeInvalidRequest, false, "message"},
		{"other provider", nil, schemas.SendParams{To: "+1", Message: "x", Provider: "telegram", IdempotencyKey: "c"},
			wire.CodeInvalidRequest, false, "telegram"},
		{"bad recipient", nil, schemas.SendParams{To: "not a number", Message: "x", IdempotencyKey: "d"},
			wire.CodeInvalidRequest, false, "not a number"},
		{"network rejects", func() { f.FailSends(errors.New("recipient blocked the account")) },
			schemas.SendParams{To: "+1", Message: "x", IdempotencyKey: "e"}, wire.CodeUnavailable, false, "recipient blocked"},
		{"not configured", func() { f.FailSends(provider.ErrNotConfigured) },
			schemas.SendParams{To: "+1", Message: "x", IdempotencyKey: "f"}, wire.CodeUnavailable, false, "not configured"},
		{"not connected", func() { f.FailSends(provider.ErrNotConnected) },
			schemas.SendParams{To: "+1", Message: "x", IdempotencyKey: "g"}, wire.CodeUnavailable, true, "not connected"},
		{"protocol error passes", func() { f.FailSends(wire.Invalid("media too large")) },
			schemas.SendParams{To: "+1", Message: "x", IdempotencyKey: "h"}, wire.CodeInvalidRequest, false, "media too large"},
		{"not linked", func() { f.FailSends(nil); f.SetLinked(false) },
			schemas.SendParams{To: "+1", Message: "x", IdempotencyKey: "i"}, wire.CodeNotLinked, false, "not linked"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.setup != nil {
				tt.setup()
			}
			_, werr := h.send(tt.params)
			if werr == nil {
				t.Fatal("send succeeded")
			}
			if werr.Code != tt.code || werr.Retryable != tt.retryable || !strings.Contains(werr.Message, tt.contains) {
				t.Errorf("error %+v, want code %s retryable %v containing %q", werr, tt.code, tt.retryable, tt.contains)
			}
		})
	}

	// A failure that is not retryable is remembered: the repeat does not reach the network.
	f.SetLinked(true)
	before := f.SendCount()
	if _, werr := h.send(schemas.SendParams{To: "+1", Message: "x", IdempotencyKey: "e"}); werr == nil ||
		!strings.Contains(werr.Message, "recipient blocked") {
		t.Errorf("repeat of a remembered failure: %+v", werr)
	}
	if f.SendCount() != before {
		t.Error("repeat of a remembered failure reached the network")
	}
}

// TestSendResultsSurviveRestart: a send's result is in the idempotency bucket, so a repeat
// after a restart of the provider is answered from it without a second delivery.
func TestSendResultsSurviveRestart(t *testing.T) {
	h := newHarness(t)
	f := providertest.NewFake(netID)
	f.SetAutoConnect(true)
	cfg := h.config(f)
	stop := h.start(cfg)
	h.waitConnected()
	p := schemas.SendParams{To: "+4366012345", Message: "persisted", IdempotencyKey: "restart-key"}
	first, werr := h.send(p)
	if werr != nil {
		t.Fatalf("send: %v", werr)
	}
	stop()

	h.start(cfg)
	h.waitConnected()
	again, werr := h.send(p)
	if werr != nil || again != first {
		t.Errorf("repeat after restart: %+v %v, want %+v", again, werr, first)
	}
	if c := f.SendCount(); c != 1 {
		t.Errorf("%d deliveries, want 1", c)
	}
}

// TestLegacySendRecordsMigrated: the earlier version's <id>-send.json is read into the
// bucket at start and renamed *.migrated; a repeat of a send it remembers is not delivered.
func TestLegacySendRecordsMigrated(t *testing.T) {
	h := newHarness(t)
	dir := t.TempDir()
	legacy := filepath.Join(dir, netID+"-send.json")
	payload := `{"runId":"old-key","messageId":"m-old","provider":"` + netID + `"}`
	old := `{"old-key":{"ok":true,"payload":` + payload + `,"at":` + strconv.FormatInt(h.clock.Now().UnixMilli(), 10) + `}}`
	if err := os.WriteFile(legacy, []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	f := providertest.NewFake(netID)
	f.SetAutoConnect(true)
	cfg := h.config(f)
	cfg.DedupeDir = dir
	h.start(cfg)
	h.waitConnected()
	got, werr := h.send(schemas.SendParams{To: "+4366012345", Message: "again", IdempotencyKey: "old-key"})
	if werr != nil || got.MessageID != "m-old" {
		t.Fatalf("repeat of a migrated send: %+v %v", got, werr)
	}
	if c := f.SendCount(); c != 0 {
		t.Errorf("%d deliveries, want none", c)
	}
	if _, err := os.Stat(legacy + ".migrated"); err != nil {
		t.Errorf("records file not renamed: %v", err)
	}
}

func TestTyping(t *testing.T) {
	h := newHarness(t)
	f := providertest.NewFake(netID)
	f.SetAutoConnect(true)
	h.start(h.config(f))
	h.waitConnected()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	reply, err := wire.Request(ctx, h.nc, must(subject.ProviderTyping(netID)),
		[]byte(`{"chatId":"+4366012345","on":true}`), nil)
	if err != nil {
		t.Fatalf("typing: %v", err)
	}
	var ok struct{ OK bool }
	if json.Unmarshal(reply, &ok) != nil || !ok.OK {
		t.Errorf("typing reply %s", reply)
	}
	select {
	case got := <-f.Typings():
		if got != (providertest.Typing{ChatID: "+4366012345", On: true}) {
			t.Errorf("typing call %+v", got)
		}
	case <-time.After(waitLimit):
		t.Fatal("typing never reached the network")
	}
	_, err = wire.Request(ctx, h.nc, must(subject.ProviderTyping(netID)), []byte(`{"on":true}`), nil)
	var werr *wire.Error
	if !errors.As(err, &werr) || werr.Code != wire.CodeInvalidRequest {
		t.Errorf("typing without chat: %v", err)
	}
}
