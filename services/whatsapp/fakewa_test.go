package whatsapp

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/store"

	"github.com/clawdis/clawdis/services/whatsapp/whatsapptest"
)

// fakeWhatsApp is whatsapptest's fake WhatsApp with the waits of these tests.
type fakeWhatsApp struct{ *whatsapptest.WhatsApp }

func newFakeWhatsApp() *fakeWhatsApp { return &fakeWhatsApp{whatsapptest.New()} }

var _ LoginConn = (*whatsapptest.Conn)(nil)

// dial is the login's dial function.
func (f *fakeWhatsApp) dial(ctx context.Context, dev *store.Device, log *slog.Logger) LoginConn {
	return f.Dial(ctx, dev, log)
}

// nextDial waits for the next login's connection.
func (f *fakeWhatsApp) nextDial(t *testing.T) *fakeConn {
	t.Helper()
	select {
	case c := <-f.Dials():
		return &fakeConn{c}
	case <-time.After(waitTimeout):
		t.Fatal("no login connection made")
	}
	return nil
}

// noDial checks that no login connection was made.
func (f *fakeWhatsApp) noDial(t *testing.T) {
	t.Helper()
	select {
	case <-f.Dials():
		t.Error("a second login connection was made")
	default:
	}
}

// fakeConn is one login's connection to the fake WhatsApp.
type fakeConn struct{ *whatsapptest.Conn }

func (c *fakeConn) code(code string, valid time.Duration) { c.Code(code, valid) }

func (c *fakeConn) end(item whatsmeow.QRChannelItem) { c.End(item) }

// scan is the phone scanning the code (whatsapptest.Conn.Scan).
func (c *fakeConn) scan(t *testing.T, number string) {
	t.Helper()
	if err := c.Scan(number); err != nil {
		t.Fatal(err)
	}
}
