package suggest

import "testing"

func TestClosest(t *testing.T) {
	commands := []string{"gateway", "status", "health", "doctor", "config", "login", "logout", "version"}
	for _, tt := range []struct {
		word string
		want string
	}{
		{"gatway", "gateway"},
		{"gateway", "gateway"},
		{"GATEWAY", "gateway"},
		{"stauts", "status"}, // a transposition is one edit
		{"helth", "health"},
		{"doctr", "doctor"},
		{"vers", "version"}, // prefix
		{"logn", "login"},
		{"xyz", ""},
		{"", ""},
		{"frobnicate", ""},
		{"lo", ""}, // too short for a prefix match, too far for an edit
	} {
		if got := Closest(tt.word, commands); got != tt.want {
			t.Errorf("Closest(%q) = %q, want %q", tt.word, got, tt.want)
		}
	}
	keys := []string{"gateway", "webchat", "agent", "sessions", "inbound", "web", "telegram", "logging", "bus"}
	for word, want := range map[string]string{"agnet": "agent", "telgram": "telegram", "bsu": "bus", "wbe": "web", "session": "sessions"} {
		if got := Closest(word, keys); got != want {
			t.Errorf("Closest(%q) = %q, want %q", word, got, want)
		}
	}
}

func TestDistance(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"a", "", 1}, {"", "ab", 2}, {"kitten", "sitting", 3}, {"ab", "ba", 1},
		{"agnet", "agent", 1}, {"ä", "a", 1},
	} {
		if got := distance(tt.a, tt.b); got != tt.want {
			t.Errorf("distance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}
