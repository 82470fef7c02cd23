package wire

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestDecodeParamsNamesTheField: hostile bodies give INVALID_REQUEST messages that name
// the field and the expected type, never the value, Go types or the json package.
func TestDecodeParamsNamesTheField(t *testing.T) {
	type params struct {
		Text string   `json:"text"`
		N    *int64   `json:"lastInputSeconds"`
		Tags []string `json:"tags"`
		Sub  struct {
			On bool `json:"on"`
		} `json:"sub"`
	}
	huge := strings.Repeat("9", 5000)
	tests := []struct{ body, want string }{
		{`{"lastInputSeconds":1e300}`, "invalid params: lastInputSeconds: expected an integer within range"},
		{`{"lastInputSeconds":` + huge + `}`, "invalid params: lastInputSeconds: expected an integer within range"},
		{`{"lastInputSeconds":1.5}`, "invalid params: lastInputSeconds: expected an integer within range"},
		{`{"tags":[` + huge + `]}`, "invalid params: tags: expected a string"},
		{`{"text":{"a":"` + huge + `"}}`, "invalid params: text: expected a string"},
		{`{"sub":{"on":"` + huge + `"}}`, "invalid params: sub.on: expected a boolean"},
		{`[1,2,3]`, "invalid params: params: expected an object"},
		{`{"text":"x"` + huge, "invalid params: malformed JSON at byte"},
		{`{"text":"x"}garbage`, "invalid params: malformed JSON at byte"},
	}
	for _, tt := range tests {
		var p params
		err := DecodeParams([]byte(tt.body), &p, "params")
		var werr *Error
		if !errors.As(err, &werr) || werr.Code != CodeInvalidRequest {
			t.Fatalf("%.40s: err = %v, want INVALID_REQUEST", tt.body, err)
		}
		if !strings.HasPrefix(werr.Message, tt.want) {
			t.Errorf("%.40s: message %q, want prefix %q", tt.body, werr.Message, tt.want)
		}
		for _, bad := range []string{"json:", "Go ", "int64", "unmarshal", "struct", "999"} {
			if strings.Contains(werr.Message, bad) {
				t.Errorf("%.40s: message %q contains %q", tt.body, werr.Message, bad)
			}
		}
	}
	var ok params
	if err := DecodeParams([]byte(`{"text":"hi","lastInputSeconds":3}`), &ok, "params"); err != nil || ok.Text != "hi" || *ok.N != 3 {
		t.Fatalf("valid body: %+v, %v", ok, err)
	}
}

func TestClip(t *testing.T) {
	if got := Clip("short"); got != "short" {
		t.Errorf("Clip(short) = %q", got)
	}
	got := Clip(strings.Repeat("é", 500))
	if n := utf8.RuneCountInString(got); n != MaxEcho+1 || !strings.HasSuffix(got, "é…") {
		t.Errorf("Clip(500 runes) = %d runes %q", n, got)
	}
	if exact := strings.Repeat("x", MaxEcho); Clip(exact) != exact {
		t.Errorf("Clip(exactly MaxEcho) = %q", Clip(exact))
	}
}
