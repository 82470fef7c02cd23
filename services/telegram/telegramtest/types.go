package telegramtest

// The Bot API objects the fake speaks, with the field names of
// https://core.telegram.org/bots/api (only the fields the gateway uses).

// User is a Telegram user or bot.
type User struct {
	ID        int64  `json:"id"`
	IsBot     bool   `json:"is_bot"`
	FirstName string `json:"first_name"`
	LastName  string `json:"last_name,omitempty"`
	Username  string `json:"username,omitempty"`
}

// Chat is a private chat, group, supergroup or channel.
type Chat struct {
	ID        int64  `json:"id"`
	Type      string `json:"type"` // private, group, supergroup, channel
	Title     string `json:"title,omitempty"`
	Username  string `json:"username,omitempty"`
	FirstName string `json:"first_name,omitempty"`
}

// MessageEntity marks a span of a text or caption (offsets in UTF-16 code units).
type MessageEntity struct {
	Type   string `json:"type"`
	Offset int    `json:"offset"`
	Length int    `json:"length"`
	User   *User  `json:"user,omitempty"`
}

// PhotoSize is one size of a photo.
type PhotoSize struct {
	FileID       string `json:"file_id"`
	FileUniqueID string `json:"file_unique_id"`
	Width        int    `json:"width"`
	Height       int    `json:"height"`
	FileSize     int64  `json:"file_size,omitempty"`
}

// Document is a general file; Video, Audio and Voice have the same shape here.
type Document struct {
	FileID       string `json:"file_id"`
	FileUniqueID string `json:"file_unique_id"`
	FileName     string `json:"file_name,omitempty"`
	MimeType     string `json:"mime_type,omitempty"`
	FileSize     int64  `json:"file_size,omitempty"`
	Duration     int    `json:"duration,omitempty"`
	Width        int    `json:"width,omitempty"`
	Height       int    `json:"height,omitempty"`
}

// Message is a message as the Bot API returns and delivers it.
type Message struct {
	MessageID       int             `json:"message_id"`
	From            *User           `json:"from,omitempty"`
	SenderChat      *Chat           `json:"sender_chat,omitempty"`
	Date            int64           `json:"date"`
	Chat            Chat            `json:"chat"`
	ReplyToMessage  *Message        `json:"reply_to_message,omitempty"`
	Text            string          `json:"text,omitempty"`
	Entities        []MessageEntity `json:"entities,omitempty"`
	Caption         string          `json:"caption,omitempty"`
	CaptionEntities []MessageEntity `json:"caption_entities,omitempty"`
	Photo           []PhotoSize     `json:"photo,omitempty"`
	Document        *Document       `json:"document,omitempty"`
	Video           *Document       `json:"video,omitempty"`
	Audio           *Document       `json:"audio,omitempty"`
	Voice           *Document       `json:"voice,omitempty"`
}

// Update is one incoming update.
type Update struct {
	UpdateID    int      `json:"update_id"`
	Message     *Message `json:"message,omitempty"`
	ChannelPost *Message `json:"channel_post,omitempty"`
}

// File is the answer of getFile.
type File struct {
	FileID       string `json:"file_id"`
	FileUniqueID string `json:"file_unique_id"`
	FileSize     int64  `json:"file_size,omitempty"`
	FilePath     string `json:"file_path,omitempty"`
}

// Sent is one message the fake accepted from the bot.
type Sent struct {
	Method    string `json:"method"` // sendMessage, sendPhoto, sendDocument, …
	ChatID    string `json:"chatId"` // chat_id as the bot sent it
	Chat      int64  `json:"chat"`   // the resolved chat id
	MessageID int    `json:"messageId"`
	Text      string `json:"text,omitempty"`
	Caption   string `json:"caption,omitempty"`
	ParseMode string `json:"parseMode,omitempty"`
	// Media is the media field as sent: a URL or file id, or "upload:<file name>" for an
	// uploaded file (MediaSize bytes).
	Media     string `json:"media,omitempty"`
	MediaSize int64  `json:"mediaSize,omitempty"`
}

// Action is one sendChatAction call.
type Action struct {
	ChatID string `json:"chatId"`
	Action string `json:"action"`
}

// Webhook is the registered webhook.
type Webhook struct {
	URL    string `json:"url"`
	Secret string `json:"secret,omitempty"`
}
