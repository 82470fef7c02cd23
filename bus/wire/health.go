package wire

// Keys of the micro service metadata (micro.Config.Metadata) through which services publish
// their static facts. Health reads them from the $SRV.PING reply when it first sees a
// service (and again when the service comes back), never from the services' settings.
const (
	// MetaStorePath is the session store file (sessions service).
	MetaStorePath = "storePath"
	// MetaBackend and MetaModel are the agent backend ("command", "openai" or "none") and
	// its model, "" when it has none (agent service).
	MetaBackend = "backend"
	MetaModel   = "model"
	// MetaHeartbeatSeconds is the configured heartbeat interval in seconds (WhatsApp
	// provider; web.heartbeatSeconds).
	MetaHeartbeatSeconds = "heartbeatSeconds"
	// MetaConfigured is "true" when the provider has credentials configured (Telegram bot
	// token), else "false".
	MetaConfigured = "configured"
	// MetaPort is the TCP port a service serves on (WebChat).
	MetaPort = "port"
)

// BusClientEvent is the part of the NATS server's client connect and disconnect advisories
// (io.nats.server.advisory.v1.client_connect / client_disconnect, on subject.BusConnect and
// subject.BusDisconnect) that the gateway reads.
type BusClientEvent struct {
	Type   string        `json:"type"`
	Client BusClientInfo `json:"client"`
	// Reason says why a client disconnected ("Client Closed", "Stale Connection", …).
	Reason string `json:"reason,omitempty"`
}

// BusClientInfo identifies the client of a BusClientEvent.
type BusClientInfo struct {
	ID   uint64 `json:"id"`
	Name string `json:"name"` // the connection name: the service name for gateway services
}
