package schemas

import (
	"bytes"
	"os"
	"testing"
	"testing/fstest"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

func TestBundleUpToDate(t *testing.T) {
	want, err := Bundle()
	if err != nil {
		t.Fatalf("Bundle: %v", err)
	}
	got, err := os.ReadFile(BundleFile)
	if err != nil {
		t.Fatalf("%s is missing (%v); run go generate ./schemas", BundleFile, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs from what the generator produces; run go generate ./schemas", BundleFile)
	}
	again, err := Bundle()
	if err != nil || !bytes.Equal(again, want) {
		t.Fatalf("Bundle is not deterministic (%v)", err)
	}
	if !bytes.HasSuffix(want, []byte("}\n")) || bytes.HasSuffix(want, []byte("\n\n")) {
		t.Error("bundle must end with exactly one newline")
	}
}

// compileBundle compiles the bundle on its own: no other resource is known to the
// compiler, so any reference left pointing at a source file fails here. It returns the
// bundle's root (any frame) and a compile function for its definitions.
func compileBundle(t *testing.T) (*jsonschema.Schema, func(def string) *jsonschema.Schema) {
	t.Helper()
	b, err := Bundle()
	if err != nil {
		t.Fatalf("Bundle: %v", err)
	}
	doc, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(BaseURL+BundleFile, doc); err != nil {
		t.Fatal(err)
	}
	root, err := c.Compile(BaseURL + BundleFile)
	if err != nil {
		t.Fatalf("bundle does not compile: %v", err)
	}
	return root, func(def string) *jsonschema.Schema {
		sch, err := c.Compile(BaseURL + BundleFile + "#/$defs/" + def)
		if err != nil {
			t.Fatalf("bundle $defs/%s: %v", def, err)
		}
		return sch
	}
}

// TestBundleAgreesWithGoldens checks that the bundle compiles and judges every golden frame
// as the source schemas do: valid ones match the bundle's root and their own frame
// definition, invalid ones fail the definition their golden test uses.
func TestBundleAgreesWithGoldens(t *testing.T) {
	root, def := compileBundle(t)
	s := mustLoad(t)
	byValidator := map[string]*jsonschema.Schema{
		"Hello":       def("Hello"),
		"Request":     def("Request"),
		"ServerFrame": def("ServerFrame"),
	}
	for _, dir := range []string{"valid", "invalid"} {
		for _, g := range goldens(t, dir) {
			v, err := Decode(g.data)
			if err != nil {
				t.Fatal(err)
			}
			which, _ := goldenValidator(s, g.name)
			err = byValidator[which].Validate(v)
			switch {
			case dir == "valid" && err != nil:
				t.Errorf("valid/%s rejected by the bundle's %s: %v", g.name, which, err)
			case dir == "valid" && root.Validate(v) != nil:
				t.Errorf("valid/%s rejected by the bundle's root: %v", g.name, root.Validate(v))
			case dir == "invalid" && err == nil:
				t.Errorf("invalid/%s accepted by the bundle's %s", g.name, which)
			}
		}
	}
}

func TestBundleErrors(t *testing.T) {
	base := fstest.MapFS{}
	for _, name := range sourceFiles {
		b, err := files.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		base[name] = &fstest.MapFile{Data: b}
	}
	tests := []struct {
		name, file, content string
	}{
		{"duplicate definition", "events.schema.json", `{"$defs":{"NonEmpty":{"type":"string"}}}`},
		{"foreign ref", "events.schema.json", `{"$defs":{"X":{"$ref":"https://example.com/x.json"}}}`},
		{"deep ref", "events.schema.json", `{"$defs":{"X":{"$ref":"#/$defs/Y/properties/a"}}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys := fstest.MapFS{}
			for k, v := range base {
				fsys[k] = v
			}
			fsys[tt.file] = &fstest.MapFile{Data: []byte(tt.content)}
			if _, err := bundle(fsys); err == nil {
				t.Error("bundle succeeded, want an error")
			}
		})
	}
}
