package main

import (
	"bytes"
	"testing"
)

// TestHangOnce: the first run for a name hangs (here it is interrupted like a killed
// container's), the next one answers.
func TestHangOnce(t *testing.T) {
	t.Setenv("SCRIPTAGENT_DIR", t.TempDir())
	if !firstTime([]string{"run-1"}) {
		t.Fatal("first time not first")
	}
	if firstTime([]string{"run-1"}) {
		t.Fatal("second time taken for the first")
	}
	if !firstTime([]string{"run-2"}) {
		t.Fatal("another name not first")
	}
	var out, errb bytes.Buffer
	if code := run([]string{"hang-once", "run-1", "again"}, &out, &errb); code != 0 || out.String() != "echo: hang-once run-1 again\n" {
		t.Fatalf("second run: exit %d, %q", code, out.String())
	}
}

func TestRun(t *testing.T) {
	for _, tt := range []struct {
		name       string
		args       []string
		wantCode   int
		wantOut    string
		wantStderr bool
	}{
		{"echo", []string{"hello   there"}, 0, "echo: hello there\n", false},
		{"echo several args", []string{"a", "b"}, 0, "echo: a b\n", false},
		{"empty", nil, 0, "echo:\n", false},
		{"fail", []string{"fail now"}, 3, "partial\n", true},
		{"failure is only the first word", []string{"please fail"}, 0, "echo: please fail\n", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := run(tt.args, &out, &errb); code != tt.wantCode {
				t.Errorf("exit code %d, want %d", code, tt.wantCode)
			}
			if out.String() != tt.wantOut {
				t.Errorf("stdout %q, want %q", out.String(), tt.wantOut)
			}
			if (errb.Len() > 0) != tt.wantStderr {
				t.Errorf("stderr %q", errb.String())
			}
		})
	}
}
