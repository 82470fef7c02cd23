package force

import (
	"reflect"
	"testing"
)

func TestParseProcNetTCPLine(t *testing.T) {
	tests := []struct {
		name string
		line string
		want tcpEntry
		ok   bool
	}{
		{"header",
			"  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode",
			tcpEntry{}, false},
		{"ipv4 listen on 127.0.0.1:18789",
			"   0: 0100007F:4965 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 1684 1 0000000068c39a42 100 0 0 10 0",
			tcpEntry{LocalPort: 18789, State: 0x0A, Inode: 1684}, true},
		{"ipv4 established",
			"  12: 0100007F:4965 0100007F:D2F0 01 00000000:00000000 00:00000000 00000000     0        0 99 1 0000000000000000 20 4 30 10 -1",
			tcpEntry{LocalPort: 18789, State: 0x01, Inode: 99}, true},
		{"ipv4 time-wait without inode",
			"   3: 0100007F:4965 0100007F:D2F2 06 00000000:00000000 03:00001770 00000000     0        0 0 3 0000000000000000",
			tcpEntry{LocalPort: 18789, State: 0x06, Inode: 0}, true},
		{"ipv6 listen on [::1]:47971",
			"   0: 00000000000000000000000001000000:BB63 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 27028 1 000000001fa8e7d1 100 0 0 10 0",
			tcpEntry{LocalPort: 47971, State: 0x0A, Inode: 27028}, true},
		{"ipv6 any address",
			"   1: 00000000000000000000000000000000:0050 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 31337 1 0000000000000000 100 0 0 10 0",
			tcpEntry{LocalPort: 80, State: 0x0A, Inode: 31337}, true},
		{"truncated", "   0: 0100007F:4965 00000000:0000 0A", tcpEntry{}, false},
		{"bad port", "   0: 0100007F:XYZ 00000000:0000 0A 0:0 0:0 0 0 0 5", tcpEntry{}, false},
		{"bad inode", "   0: 0100007F:0050 00000000:0000 0A 0:0 0:0 0 0 0 x", tcpEntry{}, false},
		{"empty", "", tcpEntry{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := parseProcNetTCPLine(tt.line)
			if ok != tt.ok || got != tt.want {
				t.Errorf("got %+v %v, want %+v %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestListenInodes(t *testing.T) {
	data := []byte(`  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:4965 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 11 1 0 100 0 0 10 0
   1: 00000000:4965 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 12 1 0 100 0 0 10 0
   2: 0100007F:4965 0100007F:D2F0 01 00000000:00000000 00:00000000 00000000     0        0 13 1 0 20 4 30 10 -1
   3: 0100007F:4966 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 14 1 0 100 0 0 10 0
`)
	if got, want := listenInodes(data, 18789), []uint64{11, 12}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if got := listenInodes(data, 1); got != nil {
		t.Errorf("port 1: %v", got)
	}
}

func TestParseSocketLink(t *testing.T) {
	tests := []struct {
		in   string
		want uint64
		ok   bool
	}{
		{"socket:[12345]", 12345, true},
		{"socket:[]", 0, false},
		{"socket:[12", 0, false},
		{"pipe:[12345]", 0, false},
		{"/dev/null", 0, false},
		{"anon_inode:[eventpoll]", 0, false},
	}
	for _, tt := range tests {
		got, ok := parseSocketLink(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("%q: got %d %v", tt.in, got, ok)
		}
	}
}

func TestParseLsof(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []Process
	}{
		{"empty", "", nil},
		{"one", "p123\ncnginx\n", []Process{{123, "nginx"}}},
		{"several, sorted, deduplicated, with fd fields",
			"p900\ncnode\nf12\np45\ncsshd\nf3\np900\ncnode\n", []Process{{45, "sshd"}, {900, "node"}}},
		{"crlf and no command", "p7\r\n", []Process{{7, ""}}},
		{"garbage ignored", "px\nczzz\n\nhello\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseLsof([]byte(tt.in)); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}
