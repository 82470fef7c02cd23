package main

import (
	"log/slog"
	"strings"
	"testing"
)

// TestBindTokenRule: a bind beyond loopback needs a token of at least 16 characters
// without whitespace, at start-up (the same rule as clawdis doctor's bind check); loopback
// needs none. The refusal never shows the token.
func TestBindTokenRule(t *testing.T) {
	tests := []struct {
		name, bind, token string
		want              string // "" when the gateway may start
	}{
		{"loopback without a token", "127.0.0.1", "", ""},
		{"loopback with a blank token", "::1", " ", ""},
		{"no token", "0.0.0.0", "", "no token is set"},
		{"a space", "0.0.0.0", " ", "the token contains whitespace"},
		{"whitespace inside", "192.168.1.5", "abcdefgh ijklmnopq", "the token contains whitespace"},
		{"a tab at the end", "0.0.0.0", "0123456789abcdef\t", "the token contains whitespace"},
		{"15 characters", "0.0.0.0", "0123456789abcde", "the token is weak (15 characters; at least 16 needed)"},
		{"16 characters", "0.0.0.0", "0123456789abcdef", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			getenv := func(k string) string {
				if k == "CLAWDIS_STATE_DIR" {
					return t.TempDir()
				}
				return ""
			}
			_, err := resolveSettings(daemonFlags{bind: tt.bind, token: tt.token}, getenv, slog.New(slog.DiscardHandler))
			if tt.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "refusing to bind "+tt.bind) {
				t.Fatalf("err = %v, want a refusal saying %q", err, tt.want)
			}
			if strings.TrimSpace(tt.token) != "" && strings.Contains(err.Error(), strings.TrimSpace(tt.token)) {
				t.Fatalf("the refusal shows the token: %v", err)
			}
		})
	}
}
