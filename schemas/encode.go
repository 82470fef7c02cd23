package schemas

import (
	"encoding/json"
	"unicode/utf8"
)

// AppendString appends s as a JSON string: as is between quotes when nothing in it needs
// escaping, else encoded by encoding/json. The edge builds res and event frames with it, the
// Go client its req frames.
func AppendString(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf {
			b, _ := json.Marshal(s)
			return append(dst, b...)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}
