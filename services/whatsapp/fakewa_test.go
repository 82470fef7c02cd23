package whatsapp

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
)

// fakeWhatsApp is WhatsApp at the network boundary of a login: every login's connection is
// a fakeConn that the test scripts (QR codes, a scan, the connection after pairing).
type fakeWhatsApp struct {
	// connect answers ConnectContext; nil connects at once.
	connect func(ctx context.Context) error
	dials   chan *fakeConn
}

func newFakeWhatsApp() *fakeWhatsApp { return &fakeWhatsApp{dials: make(chan *fakeConn, 8)} }

// dial is the login's dial function.
func (f *fakeWhatsApp) dial(_ context.Context, dev *store.Device, _ *slog.Logger) loginConn {
	c := &fakeConn{f: f, dev: dev, qrs: make(chan whatsmeow.QRChannelItem, 8), handlers: map[uint32]whatsmeow.EventHandler{}}
	f.dials <- c
	return c
}

// nextDial waits for the next login's connection.
func (f *fakeWhatsApp) nextDial(t *testing.T) *fakeConn {
	t.Helper()
	select {
	case c := <-f.dials:
		return c
	case <-time.After(waitTimeout):
		t.Fatal("no login connection made")
	}
	return nil
}

// noDial checks that no login connection was made.
func (f *fakeWhatsApp) noDial(t *testing.T) {
	t.Helper()
	select {
	case <-f.dials:
		t.Error("a second login connection was made")
	default:
	}
}

// fakeConn is one login's connection to the fake WhatsApp.
type fakeConn struct {
	f   *fakeWhatsApp
	dev *store.Device
	qrs chan whatsmeow.QRChannelItem

	mu       sync.Mutex
	handlers map[uint32]whatsmeow.EventHandler
	nextID   uint32
}

var _ loginConn = (*fakeConn)(nil)

func (c *fakeConn) GetQRChannel(context.Context) (<-chan whatsmeow.QRChannelItem, error) {
	return c.qrs, nil
}

func (c *fakeConn) ConnectContext(ctx context.Context) error {
	if c.f.connect != nil {
		return c.f.connect(ctx)
	}
	return nil
}

func (c *fakeConn) Disconnect() {}

func (c *fakeConn) AddEventHandler(h whatsmeow.EventHandler) uint32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nextID++
	c.handlers[c.nextID] = h
	return c.nextID
}

func (c *fakeConn) RemoveEventHandler(id uint32) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.handlers[id]
	delete(c.handlers, id)
	return ok
}

func (c *fakeConn) pairedJID() types.JID {
	if c.dev.ID == nil {
		return types.EmptyJID
	}
	return *c.dev.ID
}

// code sends a QR code that WhatsApp replaces after valid.
func (c *fakeConn) code(code string, valid time.Duration) {
	c.qrs <- whatsmeow.QRChannelItem{Event: whatsmeow.QRChannelEventCode, Code: code, Timeout: valid}
}

// end sends a final QR event (a timeout, an error).
func (c *fakeConn) end(item whatsmeow.QRChannelItem) { c.qrs <- item }

// scan is the phone scanning the code: the device is stored as linked to number, the QR
// channel reports success, and the connection that follows pairing comes up.
func (c *fakeConn) scan(t *testing.T, number string) {
	t.Helper()
	markLinked(t, c.dev, number, time.Now())
	c.qrs <- whatsmeow.QRChannelSuccess
	c.mu.Lock()
	handlers := make([]whatsmeow.EventHandler, 0, len(c.handlers))
	for _, h := range c.handlers {
		handlers = append(handlers, h)
	}
	c.mu.Unlock()
	for _, h := range handlers {
		h(&events.Connected{})
	}
}
