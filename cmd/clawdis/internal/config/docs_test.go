package config

import (
	"bytes"
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
)

// docsFile is the configuration reference checked against the schema.
const docsFile = "../../../../docs/configuration.md"

// docRow is one table row of docs/configuration.md: | `key` | type | default | description |.
var docRow = regexp.MustCompile("^\\| `([A-Za-z0-9.]+)` \\| ([^|]*) \\| ([^|]*) \\| (.*) \\|$")

// TestDocsMatchSchema checks docs/configuration.md against schemas/config.schema.json: every
// key of the schema has a row, every row names a key of the schema, the default column
// shows the schema's default, every JSON5 example parses without a warning, and together the
// examples use every key.
func TestDocsMatchSchema(t *testing.T) {
	b, err := os.ReadFile(docsFile)
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]Key{}
	for _, k := range Keys() {
		keys[k.Path] = k
	}
	documented := map[string]bool{}
	for i, line := range strings.Split(string(b), "\n") {
		m := docRow.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		path, def, desc := m[1], strings.TrimSpace(m[3]), strings.TrimSpace(m[4])
		k, ok := keys[path]
		if !ok {
			t.Errorf("line %d: %s is documented but is not a key of the schema", i+1, path)
			continue
		}
		if documented[path] {
			t.Errorf("line %d: %s is documented twice", i+1, path)
		}
		documented[path] = true
		if desc == "" {
			t.Errorf("line %d: %s has no description", i+1, path)
		}
		if k.Default == "" {
			continue
		}
		if !sameJSON(strings.Trim(def, "`"), k.Default) || !strings.HasPrefix(def, "`") {
			t.Errorf("line %d: %s: default column %s, schema default `%s`", i+1, path, def, k.Default)
		}
	}
	for path := range keys {
		if !documented[path] {
			t.Errorf("%s is a key of the schema but has no row in %s", path, docsFile)
		}
	}

	examples := regexp.MustCompile("(?s)```json5\n(.*?)```").FindAllStringSubmatch(string(b), -1)
	if len(examples) == 0 {
		t.Fatal("no json5 examples")
	}
	used := map[string]bool{}
	for _, ex := range examples {
		if _, warnings, err := Parse([]byte(ex[1]), "example"); err != nil || len(warnings) > 0 {
			t.Errorf("example does not parse cleanly: %v %q\n%s", err, warnings, ex[1])
			continue
		}
		root, _ := decodeJSON5([]byte(ex[1]))
		tree, _ := normalize(root, "")
		var warnings []string
		prune(tree.(map[string]any), Schema().Document(), "", used, &warnings)
	}
	for path := range keys {
		if !used[path] {
			t.Errorf("%s appears in no example of %s", path, docsFile)
		}
	}
}

// sameJSON reports whether two JSON texts hold equal values.
func sameJSON(a, b string) bool {
	var va, vb any
	if json.Unmarshal([]byte(a), &va) != nil || json.Unmarshal([]byte(b), &vb) != nil {
		return false
	}
	ja, _ := json.Marshal(va)
	jb, _ := json.Marshal(vb)
	return bytes.Equal(ja, jb)
}

// TestReadmeLinksDocs keeps the README pointing at the reference, not at files outside the
// repository.
func TestReadmeLinksDocs(t *testing.T) {
	b, err := os.ReadFile("../../../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte("docs/configuration.md")) {
		t.Error("README.md does not link docs/configuration.md")
	}
	if bytes.Contains(b, []byte("../shared/")) {
		t.Error("README.md links ../shared/, which is not in a clone")
	}
}
