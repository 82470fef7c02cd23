package schemas

import (
	"bytes"
	"fmt"
	"io/fs"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// ConfigFile is the JSON Schema of the gateway's config file (SPEC §3): the one description
// of every config key, its type, default and meaning. It is embedded with the protocol
// schemas but is not part of the protocol bundle.
const ConfigFile = "config.schema.json"

// ConfigSchema is the compiled config file schema. It is safe for concurrent use.
type ConfigSchema struct {
	raw []byte
	doc map[string]any
	sch *jsonschema.Schema
	set *Set // renders errors against doc
}

// ConfigSchemaDocument is the embedded config schema as a parsed document, without the
// cost of compiling it (for its defaults and descriptions).
func ConfigSchemaDocument() (map[string]any, error) {
	b, err := fs.ReadFile(files, ConfigFile)
	if err != nil {
		return nil, fmt.Errorf("schemas: %s: %w", ConfigFile, err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("schemas: %s: malformed JSON: %w", ConfigFile, err)
	}
	obj, ok := doc.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("schemas: %s: not an object", ConfigFile)
	}
	return obj, nil
}

// LoadConfigSchema compiles the embedded config schema.
func LoadConfigSchema() (*ConfigSchema, error) {
	return loadConfigSchema(files)
}

func loadConfigSchema(fsys fs.FS) (*ConfigSchema, error) {
	c := jsonschema.NewCompiler()
	raw, doc, err := addResource(c, fsys, ConfigFile)
	if err != nil {
		return nil, err
	}
	obj, ok := doc.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("schemas: %s: not an object", ConfigFile)
	}
	sch, err := c.Compile(BaseURL + ConfigFile)
	if err != nil {
		return nil, fmt.Errorf("schemas: %s: %w", ConfigFile, err)
	}
	return &ConfigSchema{raw: raw, doc: obj, sch: sch, set: &Set{docs: map[string]any{BaseURL + ConfigFile: doc}}}, nil
}

// JSON returns the schema file as it is embedded (for `clawdis config schema`).
func (c *ConfigSchema) JSON() []byte { return bytes.Clone(c.raw) }

// Document returns the decoded schema (numbers are json.Number). Callers must not modify it.
func (c *ConfigSchema) Document() map[string]any { return c.doc }

// TypesOf lists the JSON types a schema node allows in its "type" keyword (a name or a
// list of names); none when it has no such keyword.
func TypesOf(node map[string]any) []string {
	switch t := node["type"].(type) {
	case string:
		return []string{t}
	case []any:
		var out []string
		for _, x := range t {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// Validate checks a decoded config file (objects map[string]any, arrays []any, numbers
// json.Number). A failure is a *ValidationError naming the key path, like
// "gateway.port must be an integer between 1 and 65535"; the value itself is never quoted.
func (c *ConfigSchema) Validate(v any) error {
	return c.set.validate(c.sch, v, "config")
}
