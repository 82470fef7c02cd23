package main

import (
	"bytes"
	"testing"
)

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
