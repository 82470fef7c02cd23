package edge

import (
	"encoding/json"
	"strconv"
	"strings"
)

const previewLimit = 300

// truncate returns at most previewLimit bytes of an outbound frame for verbose logs.
func truncate(b []byte) string {
	if len(b) <= previewLimit {
		return string(b)
	}
	return string(b[:previewLimit]) + "…"
}

// redactedPreview renders an inbound frame for verbose logs with every secret-looking value
// (keys containing token, secret, password or apikey, and the whole auth object) replaced.
func redactedPreview(b []byte) string {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return "<not JSON, " + strconv.Itoa(len(b)) + " bytes>"
	}
	out, err := json.Marshal(redact(v))
	if err != nil {
		return "<unprintable>"
	}
	return truncate(out)
}

func redact(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, val := range t {
			lk := strings.ToLower(k)
			if lk == "auth" || strings.Contains(lk, "token") || strings.Contains(lk, "secret") ||
				strings.Contains(lk, "password") || strings.Contains(lk, "apikey") {
				t[k] = "[redacted]"
				continue
			}
			t[k] = redact(val)
		}
	case []any:
		for i := range t {
			t[i] = redact(t[i])
		}
	}
	return v
}
