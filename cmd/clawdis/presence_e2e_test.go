package main

import (
	"context"
	"encoding/json"
	"runtime"
	"testing"
	"time"

	"github.com/clawdis/clawdis/edge/client"
	"github.com/clawdis/clawdis/schemas"
)

// nextPresence returns the next presence event's entries and its presence stateVersion.
func nextPresence(t *testing.T, events <-chan schemas.Event) ([]schemas.PresenceEntry, int64) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev := <-events:
			if ev.Event != schemas.EventPresence {
				continue
			}
			var p schemas.PresencePayload
			if err := json.Unmarshal(ev.Payload, &p); err != nil {
				t.Fatalf("presence payload: %v", err)
			}
			if ev.StateVersion == nil {
				t.Fatal("presence event without stateVersion")
			}
			return p.Presence, ev.StateVersion.Presence
		case <-timeout:
			t.Fatal("no presence event")
		}
	}
}

func findEntry(list []schemas.PresenceEntry, instanceID string) *schemas.PresenceEntry {
	for i := range list {
		if list[i].InstanceID == instanceID {
			return &list[i]
		}
	}
	return nil
}

// TestPresenceThroughGateway drives the real presence service through the edge: a node's
// connect and disconnect are broadcast with its identity, cli clients stay out of the list,
// and a system-event reaches every client with a growing stateVersion.
func TestPresenceThroughGateway(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	d := startDaemon(t, t.TempDir(), "", nil)
	watchers := make([]chan schemas.Event, 3)
	var cli *client.Client
	for i := range watchers {
		watchers[i] = make(chan schemas.Event, 256)
		cli = dialTest(t, d.url, "cli", watchers[i])
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	node, err := client.Dial(ctx, client.Options{URL: d.url,
		Client: schemas.ClientInfo{Name: "kitchen-mac", Version: "2.1.0", Platform: runtime.GOOS, Mode: "node", InstanceID: "Node-ABC"}})
	if err != nil {
		t.Fatal(err)
	}
	list, v1 := nextPresence(t, watchers[0])
	e := findEntry(list, "Node-ABC")
	if e == nil || e.Host != "kitchen-mac" || e.Version != "2.1.0" || e.Mode != "node" || e.Reason != "connect" {
		t.Fatalf("node entry after connect: %+v in %+v", e, list)
	}
	for _, en := range list {
		if en.Mode == "cli" {
			t.Errorf("a cli client is in presence: %+v", en)
		}
	}
	node.Close()
	list, v2 := nextPresence(t, watchers[0])
	if e := findEntry(list, "Node-ABC"); e == nil || e.Reason != "disconnect" || v2 <= v1 {
		t.Fatalf("after disconnect: %+v (stateVersion %d -> %d)", e, v1, v2)
	}

	// A beacon with the same instanceId in other case updates the same entry.
	if _, err := cli.Request(ctx, schemas.MethodSystemEvent, map[string]any{"text": "back at the desk", "instanceId": "node-abc"}); err != nil {
		t.Fatal(err)
	}
	for i, w := range watchers {
		if i > 0 { // watcher 0 has read these two above
			nextPresence(t, w) // connect
			nextPresence(t, w) // disconnect
		}
		list, v3 := nextPresence(t, w)
		n := 0
		for _, en := range list {
			if en.InstanceID != "" && (en.InstanceID == "Node-ABC" || en.InstanceID == "node-abc") {
				n++
				if en.Text != "back at the desk" {
					t.Errorf("watcher %d: entry not updated: %+v", i, en)
				}
			}
		}
		if n != 1 || v3 <= v2 {
			t.Errorf("watcher %d: %d entries for the instance, stateVersion %d (after %d)", i, n, v3, v2)
		}
	}
}
