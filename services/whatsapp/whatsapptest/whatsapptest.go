// Package whatsapptest is WhatsApp at the network boundary of a web login, for tests: each
// login's connection is a Conn the test scripts (QR codes, the phone's scan, the connection
// that follows pairing). Put WhatsApp.Dial in whatsapp.Config.DialLogin.
package whatsapptest

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"go.mau.fi/whatsmeow"
	waAdv "go.mau.fi/whatsmeow/proto/waAdv"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"
)

// WhatsApp hands out the connections of web logins.
type WhatsApp struct {
	// Connect answers a connection's ConnectContext; nil connects at once.
	Connect func(ctx context.Context) error
	dials   chan *Conn
}

// New returns a fake WhatsApp.
func New() *WhatsApp { return &WhatsApp{dials: make(chan *Conn, 8)} }

// Dial makes a login's connection; wrap it as whatsapp.Config.DialLogin.
func (f *WhatsApp) Dial(_ context.Context, dev *store.Device, _ *slog.Logger) *Conn {
	c := &Conn{f: f, dev: dev, qrs: make(chan whatsmeow.QRChannelItem, 8), handlers: map[uint32]whatsmeow.EventHandler{},
		hasHandler: make(chan struct{})}
	f.dials <- c
	return c
}

// Dials delivers each login's connection as it is made.
func (f *WhatsApp) Dials() <-chan *Conn { return f.dials }

// Conn is one login's connection to the fake WhatsApp.
type Conn struct {
	f   *WhatsApp
	dev *store.Device
	qrs chan whatsmeow.QRChannelItem

	mu         sync.Mutex
	handlers   map[uint32]whatsmeow.EventHandler
	nextID     uint32
	hasHandler chan struct{} // closed when the first handler is added
}

// GetQRChannel is the channel of the QR events the test sends.
func (c *Conn) GetQRChannel(context.Context) (<-chan whatsmeow.QRChannelItem, error) {
	return c.qrs, nil
}

// ConnectContext connects as WhatsApp.Connect says.
func (c *Conn) ConnectContext(ctx context.Context) error {
	if c.f.Connect != nil {
		return c.f.Connect(ctx)
	}
	return nil
}

// Disconnect does nothing.
func (c *Conn) Disconnect() {}

// AddEventHandler registers h for the events the fake sends (Connected after a scan).
func (c *Conn) AddEventHandler(h whatsmeow.EventHandler) uint32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nextID++
	c.handlers[c.nextID] = h
	if c.nextID == 1 {
		close(c.hasHandler)
	}
	return c.nextID
}

// RemoveEventHandler removes a handler.
func (c *Conn) RemoveEventHandler(id uint32) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.handlers[id]
	delete(c.handlers, id)
	return ok
}

// PairedJID is the account the device was linked to by Scan (empty before).
func (c *Conn) PairedJID() types.JID {
	if c.dev.ID == nil {
		return types.EmptyJID
	}
	return *c.dev.ID
}

// Code sends a QR code that WhatsApp replaces after valid.
func (c *Conn) Code(code string, valid time.Duration) {
	c.qrs <- whatsmeow.QRChannelItem{Event: whatsmeow.QRChannelEventCode, Code: code, Timeout: valid}
}

// End sends a final QR event (a timeout, an error).
func (c *Conn) End(item whatsmeow.QRChannelItem) { c.qrs <- item }

// handlerWait bounds Scan's wait for the login to listen for events.
const handlerWait = 10 * time.Second

// Scan is the phone scanning the code: the device is stored as linked to number (digits,
// no +), the QR channel reports success, and the connection that follows pairing comes up.
// A test may get the connection from Dials before the login has added its event handler:
// the Connected event waits for it, as a real connection's would.
func (c *Conn) Scan(number string) error {
	select {
	case <-c.hasHandler:
	case <-time.After(handlerWait):
		return fmt.Errorf("whatsapptest: the login added no event handler within %s", handlerWait)
	}
	if err := MarkLinked(c.dev, number, time.Now()); err != nil {
		return err
	}
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
	return nil
}

// MarkLinked stores dev as a device linked to number (digits, no +) at pairedAt, as a
// successful pairing leaves it.
func MarkLinked(dev *store.Device, number string, pairedAt time.Time) error {
	jid := types.NewADJID(number, 0, 7)
	dev.ID = &jid
	dev.LID = types.NewJID("99887766", types.HiddenUserServer)
	details, err := proto.Marshal(&waAdv.ADVDeviceIdentity{Timestamp: proto.Uint64(uint64(pairedAt.Unix()))})
	if err != nil {
		return err
	}
	dev.Account = &waAdv.ADVSignedDeviceIdentity{
		Details: details, AccountSignatureKey: make([]byte, 32), AccountSignature: make([]byte, 64),
		DeviceSignature: make([]byte, 64),
	}
	if err := dev.Save(context.Background()); err != nil {
		return fmt.Errorf("whatsapptest: save device: %w", err)
	}
	return nil
}
