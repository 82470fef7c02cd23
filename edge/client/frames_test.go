package client

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/clawdis/clawdis/schemas"
)

func TestAppendRequestMatchesMarshal(t *testing.T) {
	tests := []struct {
		method string
		params json.RawMessage
	}{
		{"health", nil},
		{"chat.send", json.RawMessage(`{"sessionKey":"main","message":"hi"}`)},
		{"chat.send", json.RawMessage("{ \"message\" : \"a <b> & c\",\n \"n\": [1, 2] }")},
		{`we"ird<m>`, json.RawMessage(`null`)},
		{"é", json.RawMessage(`"x"`)},
	}
	for _, tt := range tests {
		var b bytes.Buffer
		if err := appendRequest(&b, 42, tt.method, tt.params); err != nil {
			t.Fatalf("%s: %v", tt.method, err)
		}
		want, err := json.Marshal(schemas.Request{Type: schemas.TypeReq, ID: "42", Method: tt.method, Params: tt.params})
		if err != nil {
			t.Fatal(err)
		}
		// The same JSON value (json.Marshal also escapes <, > and & inside raw params).
		var got, exp any
		if err := json.Unmarshal(b.Bytes(), &got); err != nil {
			t.Fatalf("%s: built frame is not JSON: %v\n%s", tt.method, err, b.Bytes())
		}
		_ = json.Unmarshal(want, &exp)
		if g, w := mustJSON(got), mustJSON(exp); !bytes.Equal(g, w) {
			t.Errorf("%s: frame %s, want %s", tt.method, b.Bytes(), want)
		}
	}
	var b bytes.Buffer
	if err := appendRequest(&b, 1, "health", json.RawMessage(`{"a":`)); err == nil {
		t.Error("invalid raw params must be refused, as json.Marshal refuses them")
	}
}

func TestOKRes(t *testing.T) {
	tests := []struct {
		frame       string
		id, payload string // when recognised
	}{
		{`{"type":"res","id":"7","ok":true,"payload":{"ok":true}}`, "7", `{"ok":true}`},
		{`{"type":"res","id":"12","ok":true,"payload":null}`, "12", `null`},
		{`{"type":"res","id":"1","ok":true,"payload":[1,{"a":"}"}]}`, "1", `[1,{"a":"}"}]`},
		// Left to the decoder:
		{`{"type":"res","id":"1","ok":false,"error":{"code":"X","message":"m"}}`, "", ""},
		{`{"type":"res","id":"1","ok":true,"payload":1,"extra":2}`, "", ""},
		{`{"type":"res","id":"1","ok":true,"payload":{"a":1},"b":{"c":2}}`, "", ""},
		{`{"type":"res","id":"a\"b","ok":true,"payload":1}`, "", ""},
		{`{"type":"res","id":"1","ok":true,"payload":}`, "", ""},
		{`{"type":"res","id":"1","ok":true,"payload":1} `, "", ""},
		{`{"type":"event","event":"tick","payload":{}}`, "", ""},
		{` {"type":"res","id":"1","ok":true,"payload":1}`, "", ""},
	}
	for _, tt := range tests {
		id, payload, ok := okRes([]byte(tt.frame))
		if ok != (tt.id != "") || string(id) != tt.id || string(payload) != tt.payload {
			t.Errorf("okRes(%s) = %q, %q, %v; want %q, %q", tt.frame, id, payload, ok, tt.id, tt.payload)
		}
	}
}

func TestCallID(t *testing.T) {
	for in, want := range map[string]uint64{"0": 0, "1": 1, "42": 42, "18446744073709551615": 1<<64 - 1} {
		if got, ok := callID([]byte(in)); !ok || got != want {
			t.Errorf("callID(%q) = %d, %v; want %d", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "01", "-1", "1a", "18446744073709551616", "99999999999999999999", " 1"} {
		if got, ok := callID([]byte(in)); ok {
			t.Errorf("callID(%q) = %d, want refused", in, got)
		}
	}
}
