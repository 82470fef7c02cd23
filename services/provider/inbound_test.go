package provider_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/services/provider/providertest"
)

func inbound(id string) wire.InboundMessage {
	return wire.InboundMessage{MessageID: id, ChatID: "4366012345@s.whatsapp.net", ChatType: "direct",
		From: "+4366012345", Text: "text of " + id}
}

func TestInboundDedupeAcrossRestart(t *testing.T) {
	h := newHarness(t)
	dir := t.TempDir()
	f := providertest.NewFake(netID)
	f.SetAutoConnect(true)
	cfg := h.config(f)
	cfg.DedupeDir = dir
	stop := h.start(cfg)
	h.waitConnected()

	f.Inject(inbound("m1"))
	got := h.waitInbound()
	if got.MessageID != "m1" || got.Provider != netID || got.Ts <= 0 || got.Text != "text of m1" {
		t.Errorf("inbound %+v", got)
	}
	f.Inject(inbound("m1")) // duplicate: dropped
	f.Inject(inbound("m2"))
	if got := h.waitInbound(); got.MessageID != "m2" {
		t.Errorf("after a duplicate got %q, want m2", got.MessageID)
	}
	stop()
	if _, err := os.Stat(filepath.Join(dir, netID+"-inbound.json")); err != nil {
		t.Fatalf("dedupe records not persisted: %v", err)
	}

	// A new core on the same directory still knows m1 and m2.
	h.start(cfg)
	h.waitConnected()
	f.Inject(inbound("m1"))
	f.Inject(inbound("m2"))
	f.Inject(inbound("m3"))
	if got := h.waitInbound(); got.MessageID != "m3" {
		t.Errorf("after restart got %q, want m3", got.MessageID)
	}

	// The same message id in another chat is another message.
	other := inbound("m1")
	other.ChatID = "120363@g.us"
	f.Inject(other)
	if got := h.waitInbound(); got.MessageID != "m1" || got.ChatID != other.ChatID {
		t.Errorf("other chat: %+v", got)
	}
}

func TestInboundDedupeCorruptFileIsSetAside(t *testing.T) {
	h := newHarness(t)
	dir := t.TempDir()
	path := filepath.Join(dir, netID+"-inbound.json")
	if err := os.WriteFile(path, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	f := providertest.NewFake(netID)
	f.SetAutoConnect(true)
	cfg := h.config(f)
	cfg.DedupeDir = dir
	h.start(cfg)
	h.waitConnected()
	f.Inject(inbound("m1"))
	if got := h.waitInbound(); got.MessageID != "m1" {
		t.Errorf("inbound %+v", got)
	}
	matches, _ := filepath.Glob(path + ".corrupt-*")
	if len(matches) != 1 {
		t.Errorf("corrupt file not set aside: %v", matches)
	}
}
