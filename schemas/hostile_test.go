package schemas

import (
	"strconv"
	"strings"
	"testing"
)

// TestErrorsDoNotEchoInput: validation errors over hostile params and frames name the
// field without repeating more than 200 characters of the input or naming Go types.
func TestErrorsDoNotEchoInput(t *testing.T) {
	s := mustLoad(t)
	long := strings.Repeat("p", 5000)
	var many strings.Builder
	many.WriteString(`{"type":"hello","minProtocol":1,"maxProtocol":1,"client":{"name":"n","version":"v","platform":"p","mode":"m"}`)
	for i := range 2000 {
		many.WriteString(`,"` + long[:10] + strconv.Itoa(i) + `":1`)
	}
	many.WriteString("}")
	nested := strings.Repeat(`{"`+long[:150]+`":`, 30) + "1" + strings.Repeat("}", 30)
	tests := []struct {
		name, frame string
		check       func(*Set, any) error
		want        string
	}{
		{"long system-event host", `{"text":"x","host":"` + long + `"}`,
			func(s *Set, v any) error { return s.Params(MethodSystemEvent, v) }, "host must be at most 256 characters long"},
		{"long unexpected hello property",
			`{"type":"hello","minProtocol":1,"maxProtocol":1,"client":{"name":"n","version":"v","platform":"p","mode":"m","` + long + `":1}}`,
			(*Set).Hello, `client: unexpected property "pppppppppppppppppppppppppppppppppppppppp…"`},
		{"thousands of unexpected properties", many.String(), (*Set).Hello, "and 1997 more"},
		{"deeply nested unknown keys in a req", `{"type":"req","id":"1","method":"m","params":1,"x":` + nested + `}`, (*Set).Request, `unexpected property "x"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := Decode([]byte(tt.frame))
			if err != nil {
				t.Fatal(err)
			}
			msg := errText(tt.check(s, v))
			if !strings.Contains(msg, tt.want) {
				t.Errorf("message %q does not contain %q", msg, tt.want)
			}
			if len(msg) > 300 || strings.Contains(msg, long[:201]) {
				t.Errorf("message of %d bytes echoes the input: %.300s", len(msg), msg)
			}
		})
	}
	if err := s.Params(long, nil); err == nil || len(err.Error()) > 100 {
		t.Errorf("unknown method error = %.300v", err)
	}
}
