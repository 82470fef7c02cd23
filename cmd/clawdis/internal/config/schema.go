package config

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/clawdis/clawdis/cmd/clawdis/internal/suggest"
	"github.com/clawdis/clawdis/schemas"
)

// The config schema (schemas/config.schema.json) is compiled once, on first validation;
// its defaults are read once from the document alone (compiling costs milliseconds that a
// gateway without a config file need not spend at start).
var (
	schemaOnce   sync.Once
	schemaVal    *schemas.ConfigSchema
	defaultsOnce sync.Once
	defaultsFile map[string]any // the schema's defaults as a config file tree
)

// Schema returns the compiled config schema. The schema is embedded in the binary and
// checked by tests, so failing to compile it is a programming error and panics.
func Schema() *schemas.ConfigSchema {
	schemaOnce.Do(func() {
		s, err := schemas.LoadConfigSchema()
		if err != nil {
			panic(fmt.Sprintf("config: embedded schema: %v", err))
		}
		schemaVal = s
	})
	return schemaVal
}

// defaults returns the schema's defaults as a config file tree, read once.
func defaults() map[string]any {
	defaultsOnce.Do(func() {
		doc, err := schemas.ConfigSchemaDocument()
		if err != nil {
			panic(fmt.Sprintf("config: embedded schema: %v", err))
		}
		defaultsFile = defaultsTree(doc)
		var c Config
		if err := decodeInto(defaultsFile, &c); err != nil {
			panic(fmt.Sprintf("config: schema defaults: %v", err))
		}
	})
	return defaultsFile
}

// Default returns every default of the config schema (SPEC §3): a fresh value whose slices
// are not shared with any other.
func Default() Config {
	var c Config
	_ = decodeInto(defaults(), &c) // decoded once in defaults without error
	return c
}

// Key is one key of the config file as the schema describes it.
type Key struct {
	// Path is the dotted key path, like "gateway.authRateLimit.maxFailures".
	Path string
	// Type is the JSON type ("integer", "string", "array", "integer|string", …).
	Type string
	// Default is the default's JSON text, or "" when the schema gives none.
	Default string
	// Description is the schema's description.
	Description string
	// Secret marks keys whose values are never shown (writeOnly in the schema).
	Secret bool
	// Deprecated marks keys read only for migration.
	Deprecated bool
}

// Keys lists every leaf key of the schema (keys whose value is not an object of further
// keys), sorted by path. The "$schema" key is left out.
func Keys() []Key {
	var out []Key
	walkSchema(Schema().Document(), "", func(path string, node map[string]any) {
		k := Key{Path: path, Description: str(node["description"])}
		k.Type = strings.Join(schemas.TypesOf(node), "|")
		if d, ok := node["default"]; ok {
			b, _ := json.Marshal(d)
			k.Default = string(b)
		}
		k.Secret, _ = node["writeOnly"].(bool)
		k.Deprecated, _ = node["deprecated"].(bool)
		out = append(out, k)
	})
	slices.SortFunc(out, func(a, b Key) int { return strings.Compare(a.Path, b.Path) })
	return out
}

// walkSchema calls leaf for every leaf key below node, prefixed with prefix.
func walkSchema(node map[string]any, prefix string, leaf func(path string, node map[string]any)) {
	props, _ := node["properties"].(map[string]any)
	for _, name := range sortedKeys(props) {
		if prefix == "" && name == "$schema" {
			continue
		}
		sub, _ := props[name].(map[string]any)
		path := join(prefix, name)
		if _, nested := sub["properties"]; nested {
			walkSchema(sub, path, leaf)
			continue
		}
		leaf(path, sub)
	}
}

// defaultsTree collects the schema's defaults into a config file tree.
func defaultsTree(node map[string]any) map[string]any {
	out := map[string]any{}
	props, _ := node["properties"].(map[string]any)
	for name, p := range props {
		sub, _ := p.(map[string]any)
		if _, nested := sub["properties"]; nested {
			if t := defaultsTree(sub); len(t) > 0 {
				out[name] = t
			}
		} else if d, ok := sub["default"]; ok {
			out[name] = d
		}
	}
	return out
}

// prune removes from obj what the schema does not describe (one warning each, with a
// suggestion when a known key is close) and null values (absent), and records the paths
// that are present in seen.
func prune(obj map[string]any, node map[string]any, prefix string, seen map[string]bool, warnings *[]string) {
	props, _ := node["properties"].(map[string]any)
	for _, k := range sortedKeys(obj) {
		path := join(prefix, k)
		sub, known := props[k].(map[string]any)
		if !known {
			*warnings = append(*warnings, unknownKey(path, k, props))
			delete(obj, k)
			continue
		}
		if obj[k] == nil {
			delete(obj, k)
			continue
		}
		seen[path] = true
		if child, ok := obj[k].(map[string]any); ok {
			if _, nested := sub["properties"]; nested {
				prune(child, sub, path, seen, warnings)
			}
		}
	}
}

// unknownKey phrases the warning for an unknown key: a sibling it is close to, else a key of
// the same name elsewhere in the file's structure.
func unknownKey(path, name string, siblings map[string]any) string {
	msg := fmt.Sprintf("unknown config key %q", path)
	if s := suggest.Closest(name, sortedKeys(siblings)); s != "" {
		return msg + fmt.Sprintf(" (did you mean %q?)", join(parentOf(path), s))
	}
	for _, k := range Keys() {
		if strings.EqualFold(k.Path[strings.LastIndex(k.Path, ".")+1:], name) {
			return msg + fmt.Sprintf(" (did you mean %q?)", k.Path)
		}
	}
	return msg
}

// SecretPaths lists the keys whose values are secrets.
func SecretPaths() []string {
	var out []string
	for _, k := range Keys() {
		if k.Secret {
			out = append(out, k.Path)
		}
	}
	return out
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func join(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

func parentOf(path string) string {
	if i := strings.LastIndex(path, "."); i >= 0 {
		return path[:i]
	}
	return ""
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
