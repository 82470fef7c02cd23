package agent

import (
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/clawdis/clawdis/bus/wire"
	"github.com/clawdis/clawdis/schemas"
)

// MaxAttachmentBytes is the largest decoded chat.send attachment.
const MaxAttachmentBytes = 5_000_000

// imageParts validates chat.send attachments and returns them as image content parts
// ({type:"image", mimeType, data: base64}). The error is an INVALID_REQUEST naming the
// attachment ("attachment 1 (cat.pdf): only images are supported").
func imageParts(atts []schemas.ChatAttachment) ([]schemas.ChatContent, error) {
	var parts []schemas.ChatContent
	for i, a := range atts {
		name := fmt.Sprintf("attachment %d", i+1)
		if a.FileName != "" {
			name += " (" + wire.Clip(a.FileName) + ")"
		}
		mimeType := strings.ToLower(strings.TrimSpace(a.MimeType))
		if a.Type != "image" || !strings.HasPrefix(mimeType, "image/") {
			return nil, wire.Invalid("%s: only images are supported", name)
		}
		data := a.Content
		// Tolerate a data URL ("data:image/png;base64,....").
		if rest, ok := strings.CutPrefix(data, "data:"); ok {
			if _, after, ok := strings.Cut(rest, ";base64,"); ok {
				data = after
			}
		}
		data = strings.Join(strings.Fields(data), "")
		if base64.StdEncoding.DecodedLen(len(data)) > MaxAttachmentBytes+3 {
			return nil, wire.Invalid("%s: larger than %d bytes", name, MaxAttachmentBytes)
		}
		raw, err := base64.StdEncoding.DecodeString(data)
		if err != nil {
			return nil, wire.Invalid("%s: content is not valid base64", name)
		}
		if len(raw) == 0 {
			return nil, wire.Invalid("%s: content is empty", name)
		}
		if len(raw) > MaxAttachmentBytes {
			return nil, wire.Invalid("%s: larger than %d bytes (%d bytes)", name, MaxAttachmentBytes, len(raw))
		}
		parts = append(parts, schemas.ChatContent{Type: "image", MimeType: mimeType, Data: data})
	}
	return parts, nil
}
