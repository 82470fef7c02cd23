package provider_test

import (
	"testing"

	"github.com/clawdis/clawdis/services/provider"
	"github.com/clawdis/clawdis/services/provider/providertest"
)

// TestFakeConformance keeps the Fake honest: it passes the suite every adapter must pass.
func TestFakeConformance(t *testing.T) {
	providertest.Run(t, func(t *testing.T) (provider.Network, providertest.Controller) {
		f := providertest.NewFake(netID)
		f.SetAutoConnect(true)
		return f, f.Controller()
	})
}
