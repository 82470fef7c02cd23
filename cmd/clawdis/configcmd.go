package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/clawdis/clawdis/cmd/clawdis/internal/config"
)

// redacted replaces the value of a secret in `clawdis config show`.
const redacted = "<redacted>"

// newConfigCmd is `clawdis config`, the group of path, show, validate and schema.
func newConfigCmd(stdout io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Where the config file is, what it sets, whether it is valid, and its schema",
		Long: "Work with the config file without starting anything. Every key, its default and an\n" +
			"example: docs/configuration.md.",
	}
	cmd.AddCommand(newConfigPathCmd(stdout), newConfigShowCmd(stdout), newConfigValidateCmd(stdout),
		newConfigSchemaCmd(stdout))
	return cmd
}

// newConfigPathCmd is `clawdis config path`.
func newConfigPathCmd(stdout io.Writer) *cobra.Command {
	var sf stateFlags
	cmd := &cobra.Command{
		Use:   "path",
		Short: "Print the config file's path (--config, else $CLAWDIS_CONFIG_PATH, else <state dir>/clawdis.json)",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p := sf.paths()
			if _, err := os.Stat(p.ConfigPath); errors.Is(err, fs.ErrNotExist) {
				fmt.Fprintln(cmd.ErrOrStderr(), "(no such file yet: all defaults apply)")
			}
			_, err := fmt.Fprintln(stdout, p.ConfigPath)
			return err
		},
	}
	sf.register(cmd)
	return cmd
}

// newConfigShowCmd is `clawdis config show`.
func newConfigShowCmd(stdout io.Writer) *cobra.Command {
	var sf stateFlags
	cmd := &cobra.Command{
		Use:   "show",
		Short: "Print the effective config as JSON: defaults filled in, environment applied, secrets redacted",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, warnings, _, err := sf.paths().Load()
			if err != nil {
				return err
			}
			for _, w := range warnings {
				fmt.Fprintln(cmd.ErrOrStderr(), "warning: "+w)
			}
			cfg.ApplyEnv(os.Getenv)
			tree, err := redactConfig(cfg)
			if err != nil {
				return err
			}
			b, err := json.MarshalIndent(tree, "", "  ")
			if err != nil {
				return fmt.Errorf("config show: %w", err)
			}
			_, err = fmt.Fprintln(stdout, string(b))
			return err
		},
	}
	sf.register(cmd)
	return cmd
}

// redactConfig is cfg as a JSON tree with every secret that is set replaced by redacted and
// the password of any URL removed.
func redactConfig(cfg config.Config) (map[string]any, error) {
	b, err := json.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("config show: %w", err)
	}
	var tree map[string]any
	if err := json.Unmarshal(b, &tree); err != nil {
		return nil, fmt.Errorf("config show: %w", err)
	}
	for _, path := range config.SecretPaths() {
		setAt(tree, path, func(v any) any {
			if s, ok := v.(string); ok && s != "" {
				return redacted
			}
			return v
		})
	}
	redactURLs(tree)
	return tree, nil
}

// setAt replaces the value at a dotted path of tree with f(value), when the path exists.
func setAt(tree map[string]any, path string, f func(any) any) {
	node := tree
	for {
		key, rest, nested := strings.Cut(path, ".")
		if !nested {
			if v, ok := node[key]; ok {
				node[key] = f(v)
			}
			return
		}
		next, ok := node[key].(map[string]any)
		if !ok {
			return
		}
		node, path = next, rest
	}
}

// redactURLs removes passwords from every string of tree that is a URL with one.
func redactURLs(v any) {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if s, ok := x.(string); ok {
				v[k] = redactURL(s)
			} else {
				redactURLs(x)
			}
		}
	case []any:
		for i, x := range v {
			if s, ok := x.(string); ok {
				v[i] = redactURL(s)
			} else {
				redactURLs(x)
			}
		}
	}
}

// redactURL removes the password of s when s is a URL with one.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	if _, has := u.User.Password(); !has {
		return s
	}
	return u.Redacted()
}

// validation is what `clawdis config validate --json` prints for a valid file.
type validation struct {
	OK       bool     `json:"ok"`
	File     string   `json:"file"`
	Exists   bool     `json:"exists"`
	Warnings []string `json:"warnings"`
}

// newConfigValidateCmd is `clawdis config validate [FILE]`.
func newConfigValidateCmd(stdout io.Writer) *cobra.Command {
	var sf stateFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "validate [FILE]",
		Short: "Check a config file (default: the one the gateway would read) without starting anything",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return unknownCommand(cmd, args[1])
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			p := sf.paths()
			if len(args) == 1 {
				p.ConfigPath, p.ConfigFrom = args[0], "the command line"
			}
			_, warnings, found, err := p.Load()
			if err != nil {
				return err
			}
			if asJSON {
				b, _ := json.Marshal(validation{OK: true, File: p.ConfigPath, Exists: found, Warnings: append([]string{}, warnings...)})
				_, err := fmt.Fprintln(stdout, string(b))
				return err
			}
			for _, w := range warnings {
				fmt.Fprintln(stdout, "warning: "+w)
			}
			switch {
			case !found:
				_, err = fmt.Fprintf(stdout, "%s: no such file; all defaults apply\n", p.ConfigPath)
			case len(warnings) > 0:
				_, err = fmt.Fprintf(stdout, "%s: valid, with %d %s\n", p.ConfigPath, len(warnings), plural(len(warnings), "warning"))
			default:
				_, err = fmt.Fprintf(stdout, "%s: valid\n", p.ConfigPath)
			}
			return err
		},
	}
	sf.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print {ok, file, exists, warnings} as JSON")
	return cmd
}

// newConfigSchemaCmd is `clawdis config schema`.
func newConfigSchemaCmd(stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "schema",
		Short: "Print the config file's JSON Schema (for editors and other tools)",
		Args:  noArgs,
		RunE: func(*cobra.Command, []string) error {
			_, err := stdout.Write(config.Schema().JSON())
			return err
		},
	}
}

// plural is word, with an s unless n is 1.
func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}
