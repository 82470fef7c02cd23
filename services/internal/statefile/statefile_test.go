package statefile

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestWriteAtomicThenRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "state.json")
	if err := WriteAtomic(path, []byte(`{"a":1}`)); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("stat %v %v", st, err)
	}
	if ents, _ := os.ReadDir(filepath.Dir(path)); len(ents) != 1 {
		t.Errorf("temp files left behind: %v", ents)
	}
	var v map[string]int
	if err := ReadJSON(path, &v, time.Now(), nil); err != nil || v["a"] != 1 {
		t.Fatalf("ReadJSON = %v, %v", v, err)
	}
	var missing map[string]int
	if err := ReadJSON(path+".none", &missing, time.Now(), nil); err != nil || missing != nil {
		t.Fatalf("missing file: %v, %v", missing, err)
	}
}

func TestReadJSONSetsCorruptFileAside(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	for name, tt := range map[string]struct {
		content string
		check   func() error
	}{
		"not JSON":      {"{nope", nil},
		"check rejects": {`{"v":9}`, func() error { return errors.New("unknown version 9") }},
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state.json")
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			var v map[string]any
			err := ReadJSON(path, &v, now, tt.check)
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("err = %v, want ErrCorrupt", err)
			}
			b, rerr := os.ReadFile(path + ".corrupt-1700000000")
			if rerr != nil || string(b) != tt.content {
				t.Fatalf("set-aside file: %q %v", b, rerr)
			}
			if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the corrupt file is still in place: %v", err)
			}
		})
	}
}
