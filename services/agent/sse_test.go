package agent

import (
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
)

func readAllSSE(r io.Reader) ([]sseEvent, error) {
	p := newSSEReader(r)
	var evs []sseEvent
	for {
		ev, err := p.Next()
		if errors.Is(err, io.EOF) {
			return evs, nil
		}
		if err != nil {
			return evs, err
		}
		evs = append(evs, ev)
	}
}

func TestSSE(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []sseEvent
	}{
		{"empty", "", nil},
		{"one event", "data: hello\n\n", []sseEvent{{Data: "hello"}}},
		{"two events", "data: a\n\ndata: b\n\n", []sseEvent{{Data: "a"}, {Data: "b"}}},
		{"multi-line data", "data: a\ndata: b\n\n", []sseEvent{{Data: "a\nb"}}},
		{"CRLF", "data: a\r\ndata: b\r\n\r\ndata: c\r\n\r\n", []sseEvent{{Data: "a\nb"}, {Data: "c"}}},
		{"CR only", "data: a\r\rdata: b\r\r", []sseEvent{{Data: "a"}, {Data: "b"}}},
		{"comments", ": keep-alive\n\n: ping\ndata: x\n: between\n\n", []sseEvent{{Data: "x"}}},
		{"event name", "event: delta\ndata: x\n\n", []sseEvent{{Event: "delta", Data: "x"}}},
		{"event without data is dropped", "event: ping\n\ndata: x\n\n", []sseEvent{{Data: "x"}}},
		{"only one space dropped", "data:  two\ndata:none\n\n", []sseEvent{{Data: " two\nnone"}}},
		{"empty data field", "data\n\n", []sseEvent{{Data: ""}}},
		{"colon in value", "data: {\"a\":\"b:c\"}\n\n", []sseEvent{{Data: `{"a":"b:c"}`}}},
		{"id and retry ignored", "id: 7\nretry: 100\ndata: x\n\n", []sseEvent{{Data: "x"}}},
		{"done marker", "data: {}\n\ndata: [DONE]\n\n", []sseEvent{{Data: "{}"}, {Data: "[DONE]"}}},
		{"no final blank line", "data: last", []sseEvent{{Data: "last"}}},
		{"blank lines only", "\n\n\r\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, r := range []struct {
				name string
				r    io.Reader
			}{{"whole", strings.NewReader(tt.in)}, {"byte by byte", iotest.OneByteReader(strings.NewReader(tt.in))}} {
				got, err := readAllSSE(r.r)
				if err != nil {
					t.Fatalf("%s: %v", r.name, err)
				}
				if !reflect.DeepEqual(got, tt.want) {
					t.Fatalf("%s: events = %q, want %q", r.name, got, tt.want)
				}
			}
		})
	}
}

func TestSSELineTooLong(t *testing.T) {
	in := "data: " + strings.Repeat("x", maxSSELine+1) + "\n\n"
	_, err := readAllSSE(strings.NewReader(in))
	if !errors.Is(err, errSSELineTooLong) {
		t.Fatalf("err = %v, want errSSELineTooLong", err)
	}
}

// FuzzSSE: the parser never fails on short input, never returns data with a CR, and gives
// the same events however the input is split into reads.
func FuzzSSE(f *testing.F) {
	for _, seed := range []string{
		"data: hello\n\n",
		"data: a\r\ndata: b\r\n\r\n",
		"data: a\r\rdata: b\r",
		": comment\nevent: x\ndata: {\"choices\":[]}\n\ndata: [DONE]\n\n",
		"data:\n\ndata\r\n",
		"\r\n\r\n\n\r",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		whole, err := readAllSSE(strings.NewReader(in))
		if err != nil {
			t.Fatalf("whole: %v", err)
		}
		split, err := readAllSSE(iotest.OneByteReader(strings.NewReader(in)))
		if err != nil {
			t.Fatalf("byte by byte: %v", err)
		}
		if !reflect.DeepEqual(whole, split) {
			t.Fatalf("whole %q != byte by byte %q", whole, split)
		}
		for _, ev := range whole {
			if strings.ContainsRune(ev.Data, '\r') || strings.ContainsAny(ev.Event, "\r\n") {
				t.Fatalf("event %q keeps a line break", ev)
			}
		}
	})
}
