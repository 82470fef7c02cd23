package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Environment variables read by this package.
const (
	EnvStateDir     = "CLAWDIS_STATE_DIR"
	EnvConfigPath   = "CLAWDIS_CONFIG_PATH"
	EnvGatewayToken = "CLAWDIS_GATEWAY_TOKEN"
	EnvTelegramBot  = "TELEGRAM_BOT_TOKEN"
	EnvLogLevel     = "CLAWDIS_LOG_LEVEL"
)

// Load reads and parses the config file at path. A missing file means Default() with no
// warnings and no error; a file that cannot be read (a directory, no permission) or that is
// larger than MaxFileSize is an error.
func Load(path string) (Config, []string, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Default(), nil, nil
	}
	if err != nil {
		return Config{}, nil, &Error{File: path, Problem: "cannot read: " + err.Error(), Err: err}
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return Config{}, nil, &Error{File: path, Problem: "cannot read: " + err.Error(), Err: err}
	}
	return Parse(data, path)
}

// Paths are the resolved state directory and config file.
type Paths struct {
	StateDir   string
	ConfigPath string
	// ConfigFrom names where ConfigPath came from when it was given explicitly: "--config" or
	// "$CLAWDIS_CONFIG_PATH"; "" for the default <state dir>/clawdis.json.
	ConfigFrom string
}

// Load reads the config file at p.ConfigPath like Load, except that a file named explicitly
// (by --config or $CLAWDIS_CONFIG_PATH) must exist: its absence is an error naming it and
// where it was named. found reports whether a file was read (false: all defaults).
func (p Paths) Load() (cfg Config, warnings []string, found bool, err error) {
	_, statErr := os.Stat(p.ConfigPath)
	missing := errors.Is(statErr, fs.ErrNotExist)
	if missing && p.ConfigFrom != "" {
		return Config{}, nil, false, &Error{File: p.ConfigPath,
			Problem: "no such file (named by " + p.ConfigFrom + ")", Err: statErr}
	}
	cfg, warnings, err = Load(p.ConfigPath)
	return cfg, warnings, !missing && err == nil, err
}

// ResolvePaths applies SPEC §3's precedence. State dir: flagStateDir, else $CLAWDIS_STATE_DIR,
// else <home>/.clawdis. Config: flagConfig, else $CLAWDIS_CONFIG_PATH, else
// <state dir>/clawdis.json. A leading "~" or "~/" is expanded to home (when home is not
// empty). With an empty home and nothing else set, the state dir is ".clawdis" in the working
// directory; callers that care should check home first. getenv may be nil (no environment).
func ResolvePaths(flagStateDir, flagConfig string, getenv func(string) string, home string) Paths {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	state := firstNonEmpty(flagStateDir, getenv(EnvStateDir))
	if state == "" {
		state = filepath.Join(home, ".clawdis")
	}
	state = expandHome(state, home)
	p := Paths{StateDir: state}
	switch {
	case flagConfig != "":
		p.ConfigPath, p.ConfigFrom = expandHome(flagConfig, home), "--config"
	case getenv(EnvConfigPath) != "":
		p.ConfigPath, p.ConfigFrom = expandHome(getenv(EnvConfigPath), home), "$"+EnvConfigPath
	default:
		p.ConfigPath = filepath.Join(state, "clawdis.json")
	}
	return p
}

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

func expandHome(p, home string) string {
	if home == "" {
		return p
	}
	if p == "~" {
		return home
	}
	if rest, ok := strings.CutPrefix(p, "~/"); ok {
		return filepath.Join(home, rest)
	}
	return p
}

// ApplyEnv applies the environment overrides that win over the file: TELEGRAM_BOT_TOKEN over
// telegram.botToken and CLAWDIS_GATEWAY_TOKEN over gateway.token (SPEC §2; a --token flag, which
// the caller applies afterwards, wins over both). Empty variables change nothing. getenv may be
// nil.
func (c *Config) ApplyEnv(getenv func(string) string) {
	if getenv == nil {
		return
	}
	if v := getenv(EnvTelegramBot); v != "" {
		c.Telegram.BotToken = v
	}
	if v := getenv(EnvGatewayToken); v != "" {
		c.Gateway.Token = v
	}
}

// EnsureStateDir creates dir (and missing parents) with mode 0700 when it does not exist. An
// existing directory keeps its permissions; an existing non-directory is an error.
func EnsureStateDir(dir string) error {
	if dir == "" {
		return errors.New("state dir: empty path")
	}
	fi, err := os.Stat(dir)
	switch {
	case err == nil && fi.IsDir():
		return nil
	case err == nil:
		return fmt.Errorf("state dir %s: not a directory", dir)
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("state dir %s: %w", dir, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("state dir %s: create: %w", dir, err)
	}
	// MkdirAll's mode is filtered by the umask; make the state dir itself exactly 0700.
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("state dir %s: chmod: %w", dir, err)
	}
	return nil
}
