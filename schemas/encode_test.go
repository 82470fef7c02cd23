package schemas

import (
	"encoding/json"
	"testing"
)

func TestAppendString(t *testing.T) {
	for _, s := range []string{"", "abc-1", `q"uote`, `back\slash`, "ctl\x01", "ünï", "<&>"} {
		got := AppendString([]byte("x"), s)
		var back string
		if err := json.Unmarshal(got[1:], &back); err != nil || back != s {
			t.Errorf("AppendString(%q) = %s (%v)", s, got, err)
		}
	}
}
