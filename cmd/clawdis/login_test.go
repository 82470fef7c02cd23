package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestLoginLogoutGuards(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	var out, errb bytes.Buffer
	// Nothing linked: logout says so and succeeds (there is nothing left to undo).
	if code := execute([]string{"logout", "--state-dir", t.TempDir()}, &out, &errb); code != 0 || !strings.Contains(out.String(), "not linked") {
		t.Errorf("logout of an empty store: exit %d, stdout %q, stderr %q", code, out.String(), errb.String())
	}
	// A running gateway holds the state dir: login and logout refuse to touch its store.
	d := startDaemon(t, t.TempDir(), "", nil)
	for _, cmd := range []string{"login", "logout"} {
		errb.Reset()
		code := execute([]string{cmd, "--state-dir", d.state}, &out, &errb)
		if code != 1 || !strings.Contains(errb.String(), "a gateway is running") || !strings.Contains(errb.String(), "locked by pid") {
			t.Errorf("%s beside a gateway: exit %d, stderr %q", cmd, code, errb.String())
		}
	}
}
