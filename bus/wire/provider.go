package wire

// InboundMessage is what a provider stores in the inbound stream (its inbound subject) for
// every message it accepted from its network, whether or not anyone may answer it: the
// allowlist and mention rules belong to autoreply. Its message id (InboundMsgID) makes the
// stream drop a second copy of the same message.
type InboundMessage struct {
	Provider  string `json:"provider"`  // "whatsapp" or "telegram"
	MessageID string `json:"messageId"` // unique within ChatID
	ChatID    string `json:"chatId"`    // where a reply goes: a JID or a Telegram chat id
	ChatType  string `json:"chatType"`  // "direct" or "group"
	From      string `json:"from"`      // sender: E.164 ("+4366…") for WhatsApp, user id for Telegram
	FromName  string `json:"fromName,omitempty"`
	// Self is the linked account: the owner's E.164 number (WhatsApp) or the bot's
	// @username (Telegram).
	Self string `json:"self,omitempty"`
	// ToSelf marks a message the owner sent to their own chat (WhatsApp "message yourself").
	ToSelf bool `json:"toSelf,omitempty"`
	// Mentioned is true when a group message mentions the linked account or bot.
	Mentioned bool           `json:"mentioned,omitempty"`
	Text      string         `json:"text,omitempty"` // text or caption
	Media     []InboundMedia `json:"media,omitempty"`
	Ts        int64          `json:"ts"` // unix ms, as the network stamped it
}

// InboundMsgID is the stream message id of an inbound message:
// <provider>:<chat>:<message id>.
func InboundMsgID(provider, chatID, messageID string) string {
	return provider + ":" + chatID + ":" + messageID
}

// InboundMedia is a media attachment saved under <state>/media/inbound.
type InboundMedia struct {
	Type     string `json:"type"` // image, video, audio, document, sticker
	MimeType string `json:"mimeType,omitempty"`
	Path     string `json:"path,omitempty"` // empty when the download failed
}

// TypingRequest turns the typing indicator in a chat on or off (and marks it read when on).
type TypingRequest struct {
	ChatID string `json:"chatId"`
	On     bool   `json:"on"`
}

// ProviderOwner identifies a process that runs a provider, or is starting to: the body of
// a claim on subject.ProviderOwner and of every answer to one.
type ProviderOwner struct {
	Host      string `json:"host"`
	PID       int    `json:"pid"`
	StartedAt int64  `json:"startedAt"` // unix ms
	// Nonce tells claims apart (and a process its own) when StartedAt is equal.
	Nonce string `json:"nonce"`
	// Owner is true once the process holds the provider; false while it is still claiming.
	Owner bool `json:"owner"`
}
