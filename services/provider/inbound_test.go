package provider_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/services/internal/jsstore"
	"github.com/clawdis/clawdis/services/provider/providertest"
)

func inbound(id string) wire.InboundMessage {
	return wire.InboundMessage{MessageID: id, ChatID: "4366012345@s.whatsapp.net", ChatType: "direct",
		From: "+4366012345", Text: "text of " + id}
}

// TestInboundStoredOnceAcrossRestart: a delivered message is in the inbound stream when the
// sink returns; a second delivery of it (the network redelivering), also to a restarted
// core, is acknowledged and not stored again; the same id in another chat is another
// message.
func TestInboundStoredOnceAcrossRestart(t *testing.T) {
	h := newHarness(t)
	f := providertest.NewFake(netID)
	f.SetAutoConnect(true)
	cfg := h.config(f)
	stop := h.start(cfg)
	h.waitConnected()

	deliver := func(msg wire.InboundMessage) {
		t.Helper()
		if err := f.Deliver(msg); err != nil {
			t.Fatalf("deliver %s: %v", msg.MessageID, err)
		}
	}
	deliver(inbound("m1"))
	got := h.stored()
	if len(got) != 1 || got[0].MessageID != "m1" || got[0].Provider != netID || got[0].Ts <= 0 || got[0].Text != "text of m1" {
		t.Fatalf("stored after the first delivery: %+v", got)
	}
	deliver(inbound("m1")) // a redelivery: acknowledged, dropped by the stream
	deliver(inbound("m2"))
	stop()

	h.start(cfg)
	h.waitConnected()
	deliver(inbound("m1"))
	deliver(inbound("m2"))
	deliver(inbound("m3"))
	other := inbound("m1")
	other.ChatID = "120363@g.us"
	deliver(other)
	var ids []string
	for _, m := range h.stored() {
		ids = append(ids, m.ChatID+"/"+m.MessageID)
	}
	want := []string{"4366012345@s.whatsapp.net/m1", "4366012345@s.whatsapp.net/m2", "4366012345@s.whatsapp.net/m3", "120363@g.us/m1"}
	if len(ids) != len(want) {
		t.Fatalf("stored %v, want %v", ids, want)
	}
	for i := range want {
		if ids[i] != want[i] {
			t.Fatalf("stored %v, want %v", ids, want)
		}
	}
}

// TestInboundNotStoredIsAnError: while the inbound stream cannot take a message the sink
// returns an error (so the adapter does not acknowledge it upstream); once the stream is
// back the redelivery is stored.
func TestInboundNotStoredIsAnError(t *testing.T) {
	h := newHarness(t)
	f := providertest.NewFake(netID)
	f.SetAutoConnect(true)
	h.start(h.config(f))
	h.waitConnected()
	js, err := jetstream.New(h.nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := js.DeleteStream(t.Context(), jsstore.InboundStream); err != nil {
		t.Fatal(err)
	}
	if err := f.Deliver(inbound("m1")); err == nil {
		t.Fatal("Deliver without the inbound stream = nil, want an error")
	}
	if _, err := jsstore.Inbound(t.Context(), h.nc, jsstore.Config{}); err != nil {
		t.Fatal(err)
	}
	if err := f.Deliver(inbound("m1")); err != nil {
		t.Fatalf("redelivery: %v", err)
	}
	if got := h.stored(); len(got) != 1 || got[0].MessageID != "m1" {
		t.Fatalf("stored %+v", got)
	}
}

// TestLegacyInboundRecordsRetired: the earlier version's dedupe file is renamed *.migrated.
func TestLegacyInboundRecordsRetired(t *testing.T) {
	h := newHarness(t)
	dir := t.TempDir()
	path := filepath.Join(dir, netID+"-inbound.json")
	if err := os.WriteFile(path, []byte(`[{"chat":"c","id":"m","at":1}]`), 0o600); err != nil {
		t.Fatal(err)
	}
	f := providertest.NewFake(netID)
	f.SetAutoConnect(true)
	cfg := h.config(f)
	cfg.DedupeDir = dir
	h.start(cfg)
	h.waitConnected()
	if _, err := os.Stat(path + ".migrated"); err != nil {
		t.Fatalf("not retired: %v", err)
	}
}
