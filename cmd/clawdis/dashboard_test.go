package main

import (
	"strings"
	"testing"
)

func TestDashboardBinary(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	for _, tt := range []struct {
		env  []string
		args []string
		want string
	}{
		{nil, []string{"dashboard", "--port", "1"}, "http://127.0.0.1:1/\n"},
		{[]string{"CLAWDIS_GATEWAY_TOKEN=t0k en/+"}, []string{"dashboard", "--port", "1"}, "http://127.0.0.1:1/#token=t0k%20en%2F%2B\n"},
		{nil, []string{"dashboard", "--port", "1", "--token", "abc"}, "http://127.0.0.1:1/#token=abc\n"},
	} {
		stdout, stderr, code := runCLI(t, append([]string{"HOME=" + home}, tt.env...), tt.args...)
		if code != 0 || stdout != tt.want || !strings.Contains(stderr, "start the gateway") {
			t.Errorf("%v %v: exit %d, stdout %q, stderr %q; want %q", tt.env, tt.args, code, stdout, stderr, tt.want)
		}
	}
}

func TestBrowserOpener(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	if got := browserOpener(env(nil)); got != "" {
		t.Errorf("no display: opener %q", got)
	}
	// With a display the opener is used only when it is installed; either way nothing fails.
	_ = browserOpener(env(map[string]string{"DISPLAY": ":0"}))
}
