package whatsapp

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/schemas"
	"github.com/clawdis/clawdis/services/provider"
	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"
)

// proxyTo makes the connection dial through a local HTTP proxy, so tests never reach
// WhatsApp: the proxy sees the CONNECT request and answers as the test decides.
func proxyTo(t *testing.T, c *Client, h http.HandlerFunc) {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c.configure = func(wa *whatsmeow.Client) {
		if err := wa.SetProxyAddress(srv.URL); err != nil {
			t.Errorf("SetProxyAddress: %v", err)
		}
	}
}

func TestRunConnectFailureIsTransient(t *testing.T) {
	dir := t.TempDir()
	pairedAt := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	linkTestDevice(t, dir, "436641234567", pairedAt)
	c, err := New(Config{StoreDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	dialed := make(chan string, 1)
	proxyTo(t, c, func(w http.ResponseWriter, r *http.Request) {
		select {
		case dialed <- r.Method + " " + r.Host:
		default:
		}
		http.Error(w, "no upstream", http.StatusBadGateway)
	})
	sink := newFakeSink()
	err = c.Run(context.Background(), sink)
	var term *provider.TerminalError
	if err == nil || errors.As(err, &term) {
		t.Fatalf("Run = %v, want a transient error", err)
	}
	select {
	case got := <-dialed:
		if got != "CONNECT web.whatsapp.com:443" {
			t.Errorf("proxy saw %q", got)
		}
	default:
		t.Error("the connection never reached the proxy")
	}
	states, _ := sink.snapshot()
	if got := stateNames(states); len(got) != 2 || got[0] != schemas.WebConnecting || got[1] != schemas.WebReconnecting {
		t.Fatalf("states %v, want [connecting reconnecting]", got)
	}
	for _, st := range states {
		if !st.Linked || st.Connected || st.Self != "+436641234567" || st.AuthAtMs != pairedAt.UnixMilli() {
			t.Errorf("state %+v: want linked, not connected, self and auth time", st)
		}
	}
	if got, want := states[1].LastError, "cannot reach WhatsApp: it answered HTTP 502"; got != want && !strings.HasPrefix(got, "cannot reach WhatsApp: the connection failed (") {
		t.Errorf("reconnecting state's LastError %q, want a few words like %q", got, want)
	}
	if err.Error() != states[1].LastError {
		t.Errorf("Run's error %q differs from the state's %q", err, states[1].LastError)
	}
	// Linked but not connected: sends are retryable.
	if _, err := c.Send(context.Background(), provider.Outbound{To: "+436641234567", Text: "x"}); !errors.Is(err, provider.ErrNotConnected) {
		t.Errorf("Send = %v, want ErrNotConnected", err)
	}
}

func TestRunReturnsNilWhenContextEnds(t *testing.T) {
	dir := t.TempDir()
	linkTestDevice(t, dir, "436641234567", time.Now())
	c, err := New(Config{StoreDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	arrived := make(chan struct{}, 1)
	release := make(chan struct{})
	proxyTo(t, c, func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select { // hang the dial until the client gives up or the test ends
		case <-r.Context().Done():
		case <-release:
		}
	})
	t.Cleanup(func() { close(release) }) // runs before the proxy's Close
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	sink := newFakeSink()
	go func() { done <- c.Run(ctx, sink) }()
	select {
	case <-arrived:
	case <-time.After(waitTimeout):
		t.Fatal("Run never dialled")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run after cancel = %v, want nil", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("Run did not return after its context ended")
	}
	// A second Run may start again at once (the first released everything).
	ctx2, cancel2 := context.WithCancel(context.Background())
	go func() { done <- c.Run(ctx2, newFakeSink()) }()
	select {
	case <-arrived:
	case <-time.After(waitTimeout):
		t.Fatal("second Run never dialled")
	}
	cancel2()
	if err := <-done; err != nil {
		t.Fatalf("second Run = %v", err)
	}
}

func TestServeFollowsConnectionEvents(t *testing.T) {
	base := wire.ProviderState{Linked: true, Self: "+436641234567", AuthAtMs: 42}
	now := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		name       string
		events     []any
		wantStates []string
		wantErr    error  // nil: Run keeps serving until the context ends
		terminal   string // TerminalError state, "" for transient
		unlinked   bool
	}{
		{
			name:       "connected then dropped",
			events:     []any{&events.Connected{}, &events.Disconnected{}},
			wantStates: []string{schemas.WebConnected, schemas.WebReconnecting},
			wantErr:    ErrDisconnected,
		},
		{
			name: "keepalive failing twice",
			events: []any{&events.Connected{}, &events.KeepAliveTimeout{ErrorCount: 1, LastSuccess: now.Add(-20 * time.Second)},
				&events.KeepAliveRestored{}, &events.KeepAliveTimeout{ErrorCount: 1, LastSuccess: now.Add(-25 * time.Second)},
				&events.KeepAliveTimeout{ErrorCount: 2, LastSuccess: now.Add(-50 * time.Second)}},
			wantStates: []string{schemas.WebConnected, schemas.WebConnected, schemas.WebReconnecting},
			wantErr:    ErrKeepAlive,
		},
		{
			name:       "logged out",
			events:     []any{&events.Connected{}, &events.LoggedOut{Reason: events.ConnectFailureLoggedOut}},
			wantStates: []string{schemas.WebConnected, schemas.WebLoggedOut},
			wantErr:    ErrLoggedOut, terminal: schemas.WebLoggedOut, unlinked: true,
		},
		{
			name:       "replaced",
			events:     []any{&events.Connected{}, &events.StreamReplaced{}},
			wantStates: []string{schemas.WebConnected, schemas.WebReplaced},
			wantErr:    ErrReplaced, terminal: schemas.WebReplaced,
		},
		{
			name:       "unrelated events only",
			events:     []any{&events.Connected{}, &events.Receipt{}, &events.OfflineSyncCompleted{}},
			wantStates: []string{schemas.WebConnected},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(Config{StoreDir: t.TempDir(), Now: func() time.Time { return now }})
			if err != nil {
				t.Fatal(err)
			}
			ctrl := newQueue[any](16)
			for _, e := range tt.events {
				ctrl.push(e)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			sink := newFakeSink()
			lid := types.NewJID("99887766", types.HiddenUserServer)
			done := make(chan error, 1)
			go func() { done <- c.serve(ctx, ctrl, base, sink, func() types.JID { return lid }) }()
			if tt.wantErr == nil {
				sink.waitFor(t, "all states", func(st []wire.ProviderState, _ []wire.InboundMessage) bool {
					return len(st) == len(tt.wantStates)
				})
				cancel()
			}
			var got error
			select {
			case got = <-done:
			case <-time.After(waitTimeout):
				t.Fatal("serve did not return")
			}
			if tt.wantErr == nil && got != nil {
				t.Fatalf("serve = %v, want nil after cancel", got)
			}
			if tt.wantErr != nil && !errors.Is(got, tt.wantErr) {
				t.Fatalf("serve = %v, want %v", got, tt.wantErr)
			}
			var term *provider.TerminalError
			if isTerm := errors.As(got, &term); isTerm != (tt.terminal != "") || (isTerm && term.State != tt.terminal) {
				t.Errorf("serve = %#v, want terminal state %q", got, tt.terminal)
			}
			states, _ := sink.snapshot()
			if names := stateNames(states); len(names) != len(tt.wantStates) {
				t.Fatalf("states %v, want %v", names, tt.wantStates)
			}
			for i, st := range states {
				if st.State != tt.wantStates[i] {
					t.Errorf("state %d = %q, want %q", i, st.State, tt.wantStates[i])
				}
				if st.Connected != (st.State == schemas.WebConnected) {
					t.Errorf("state %d %q: Connected=%v", i, st.State, st.Connected)
				}
				wantLinked := !(tt.unlinked && st.State == schemas.WebLoggedOut)
				if st.Linked != wantLinked || st.Self != base.Self {
					t.Errorf("state %d %+v: want Linked=%v and Self", i, st, wantLinked)
				}
			}
			if got := c.ownLID(); got != lid {
				t.Errorf("own LID after Connected = %v, want %v", got, lid)
			}
			if _, err := c.conn(); tt.unlinked != errors.Is(err, provider.ErrNotLinked) {
				t.Errorf("conn() = %v after %s", err, tt.name)
			}
		})
	}
}

// TestHandlerAcksOnlyStoredMessages: whatsmeow's success-status handler returns true for a
// message only after the sink stored it (so the receipt follows the store) and false when
// storing failed (no receipt: WhatsApp delivers it again); a message the gateway does not
// report, and every other event, is acknowledged at once. Only stored messages are marked
// for read receipts.
func TestHandlerAcksOnlyStoredMessages(t *testing.T) {
	c, err := New(Config{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	own := types.NewJID("436641234567", types.DefaultUserServer)
	peer := types.NewJID("4915112345678", types.DefaultUserServer)
	ctrl := newQueue[any](16)
	sink := newFakeSink()
	release := make(chan error)
	sink.store = func(wire.InboundMessage) error { return <-release }
	handle := c.eventHandler(context.Background(), ctrl, &converter{self: self{PN: own}}, sink)
	message := func(id, text string) *events.Message {
		return &events.Message{
			Info: types.MessageInfo{
				MessageSource: types.MessageSource{Chat: peer, Sender: peer},
				ID:            types.MessageID(id), Timestamp: time.Unix(1700000000, 0),
			},
			Message: &waE2E.Message{Conversation: proto.String(text)},
		}
	}

	returned := make(chan bool, 1)
	go func() { returned <- handle(message("M1", "stored")) }()
	sink.waitFor(t, "the message at the sink", func(_ []wire.ProviderState, in []wire.InboundMessage) bool { return len(in) == 1 })
	select {
	case ok := <-returned:
		t.Fatalf("handler returned %v before the store answered", ok)
	default:
	}
	release <- nil
	if ok := <-returned; !ok {
		t.Fatal("handler returned false for a stored message")
	}

	go func() { returned <- handle(message("M2", "not stored")) }()
	release <- errors.New("stream unavailable")
	if ok := <-returned; ok {
		t.Fatal("handler returned true for a message that was not stored")
	}

	if !handle(message("M3", "")) { // nothing to report: acknowledged without the sink
		t.Fatal("handler returned false for a message without content")
	}
	if !handle(&events.Connected{}) {
		t.Fatal("handler returned false for a connection event")
	}
	if got := ctrl.drain(); len(got) != 1 {
		t.Fatalf("queued events %v, want the Connected event", got)
	}
	if _, in := sink.snapshot(); len(in) != 2 || in[0].Text != "stored" || in[0].ChatID != peer.String() {
		t.Errorf("inbound %+v", in)
	}
	batches := c.reads.take(peer.String())
	if len(batches) != 1 || len(batches[0].ids) != 1 || batches[0].ids[0] != "M1" {
		t.Errorf("unread batches %+v, want M1 only", batches)
	}
}

// TestRunAcksSynchronously: the connection Run makes sends receipts only after the handlers
// returned and keeps decrypted events for redeliveries.
func TestRunAcksSynchronously(t *testing.T) {
	dir := t.TempDir()
	linkTestDevice(t, dir, "436641234567", time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	c, err := New(Config{StoreDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	proxyTo(t, c, func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "no upstream", http.StatusBadGateway) })
	proxy := c.configure
	var sync, buffer bool
	c.configure = func(wa *whatsmeow.Client) {
		sync, buffer = wa.SynchronousAck, wa.EnableDecryptedEventBuffer
		proxy(wa)
	}
	_ = c.Run(context.Background(), newFakeSink())
	if !sync || !buffer {
		t.Fatalf("SynchronousAck %v, EnableDecryptedEventBuffer %v; want both", sync, buffer)
	}
}
