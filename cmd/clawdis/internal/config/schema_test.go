package config

import (
	"reflect"
	"slices"
	"strings"
	"testing"
)

// TestSchemaMatchesStruct keeps Config and schemas/config.schema.json in step: every leaf key
// of the schema is a field of the right Go type, and every field is a key of the schema.
func TestSchemaMatchesStruct(t *testing.T) {
	goType := map[string]reflect.Kind{
		"integer": reflect.Int, "string": reflect.String, "boolean": reflect.Bool,
		"number": reflect.Float64, "array": reflect.Slice, "integer|string": reflect.Slice,
	}
	var paths []string
	for _, k := range Keys() {
		paths = append(paths, k.Path)
		if k.Description == "" {
			t.Errorf("%s: no description in the schema", k.Path)
		}
		var c Config
		v, ok := field(reflect.ValueOf(&c).Elem(), k.Path)
		if !ok {
			t.Errorf("%s: in the schema, not in Config", k.Path)
			continue
		}
		want, known := goType[k.Type]
		if !known {
			t.Errorf("%s: schema type %q has no Go type here", k.Path, k.Type)
		} else if v.Kind() != want {
			t.Errorf("%s: schema type %s, Go kind %s", k.Path, k.Type, v.Kind())
		}
	}
	for _, p := range leafPaths(reflect.TypeFor[Config](), "") {
		if !slices.Contains(paths, p) {
			t.Errorf("%s: in Config, not in the schema", p)
		}
	}
}

// field finds the field at a dotted JSON key path.
func field(v reflect.Value, path string) (reflect.Value, bool) {
	for part := range strings.SplitSeq(path, ".") {
		found := false
		for i := range v.NumField() {
			if v.Type().Field(i).Tag.Get("json") == part {
				v, found = v.Field(i), true
				break
			}
		}
		if !found {
			return reflect.Value{}, false
		}
	}
	return v, true
}

func TestSecretPaths(t *testing.T) {
	want := []string{"gateway.token", "telegram.botToken", "telegram.webhookSecret"}
	if got := SecretPaths(); !slices.Equal(got, want) {
		t.Errorf("SecretPaths = %q, want %q", got, want)
	}
}
