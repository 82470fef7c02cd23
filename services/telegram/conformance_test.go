package telegram

import (
	"context"
	"strconv"
	"testing"

	"github.com/clawdis/clawdis/services/provider"
	"github.com/clawdis/clawdis/services/provider/providertest"
	"github.com/clawdis/clawdis/services/telegram/telegramtest"
)

func TestConformance(t *testing.T) {
	providertest.Run(t, func(t *testing.T) (provider.Network, providertest.Controller) {
		srv := telegramtest.New(testToken)
		t.Cleanup(srv.Close)
		bot, err := New(Config{Token: testToken, APIRoot: srv.URL, ProbeInterval: 1 << 40})
		if err != nil {
			t.Fatal(err)
		}
		return bot, controller{srv}
	})
}

// controller drives the fake Bot API for the conformance suite.
type controller struct{ srv *telegramtest.Server }

func (c controller) Recipient() string        { return "42" }
func (c controller) InvalidRecipient() string { return "not a chat" }

func (c controller) Inject(_ testing.TB, text string) string {
	m := c.srv.InjectMessage(telegramtest.DirectText(42, text))
	return strconv.FormatInt(m.Chat.ID, 10)
}

func (c controller) Sent(t testing.TB) (string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), providertest.WaitLimit)
	defer cancel()
	m, err := c.srv.WaitSent(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return strconv.FormatInt(m.Chat, 10), m.Text
}
