package presence

import (
	"reflect"
	"testing"
)

func TestParseText(t *testing.T) {
	tests := []struct {
		name string
		text string
		want parsedText
	}{
		{
			name: "full beacon",
			text: "Node: studio (192.168.1.5) · app 1.2.3 · last input 42s ago · mode ui · reason periodic",
			want: parsedText{Host: "studio", IP: "192.168.1.5", Version: "1.2.3", Mode: "ui", Reason: "periodic", LastInputSeconds: i64(42)},
		},
		{
			name: "no ip",
			text: "Node: studio · app 1.2.3",
			want: parsedText{Host: "studio", Version: "1.2.3"},
		},
		{
			name: "node part only with ip",
			text: "Node: studio (10.0.0.2)",
			want: parsedText{Host: "studio", IP: "10.0.0.2"},
		},
		{
			name: "node part only without ip",
			text: "Node: Peter's MacBook Pro",
			want: parsedText{Host: "Peter's MacBook Pro"},
		},
		{
			name: "without node part",
			text: "app 2.0 · mode cli",
			want: parsedText{Version: "2.0", Mode: "cli"},
		},
		{
			name: "other order, odd spacing and case",
			text: "  reason launch·MODE  ui ·node:  Studio  ( 10.0.0.2 )·Last Input 5 s ago ",
			want: parsedText{Host: "Studio", IP: "10.0.0.2", Mode: "ui", Reason: "launch", LastInputSeconds: i64(5)},
		},
		{
			name: "version with spaces",
			text: "Node: mac · app 1.2.3 (45) · mode ui",
			want: parsedText{Host: "mac", Version: "1.2.3 (45)", Mode: "ui"},
		},
		{
			name: "zero last input without ago",
			text: "Node: mac · last input 0s",
			want: parsedText{Host: "mac", LastInputSeconds: i64(0)},
		},
		{
			name: "unreadable last input is skipped",
			text: "Node: mac · last input soon · mode ui",
			want: parsedText{Host: "mac", Mode: "ui"},
		},
		{
			name: "negative last input is skipped",
			text: "Node: mac · last input -3s ago",
			want: parsedText{Host: "mac"},
		},
		{
			name: "unknown parts are skipped",
			text: "Node: mac · battery 80% · mode ui",
			want: parsedText{Host: "mac", Mode: "ui"},
		},
		{
			name: "plain text",
			text: "Gateway restarted",
			want: parsedText{},
		},
		{
			name: "plain sentence starting with a keyword",
			text: "reason unknown",
			want: parsedText{},
		},
		{
			name: "keyword without value",
			text: "Node: mac · app · mode",
			want: parsedText{Host: "mac"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := parseText(tt.text)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("parseText(%q)\n got %+v (last input %v)\nwant %+v (last input %v)",
					tt.text, got, deref(got.LastInputSeconds), tt.want, deref(tt.want.LastInputSeconds))
			}
		})
	}
}

func deref(p *int64) any {
	if p == nil {
		return nil
	}
	return *p
}
