package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/lmittmann/tint"

	"github.com/clawdis/clawdis/cmd/clawdis/internal/config"
)

// newLogger returns a logger at info, or at debug when verbose (see newLoggerLevel).
func newLogger(w io.Writer, format string, verbose bool) (*slog.Logger, error) {
	level := slog.LevelInfo
	if verbose {
		level = slog.LevelDebug
	}
	return newLoggerLevel(w, format, level)
}

// newLoggerLevel returns the daemon's logger: readable on a terminal, JSON lines otherwise or
// when format is "json".
func newLoggerLevel(w io.Writer, format string, level slog.Level) (*slog.Logger, error) {
	switch format {
	case "", "auto":
		if isTerminal(w) {
			return slog.New(tint.NewTextHandler(w, &tint.Options{Level: level, TimeFormat: "15:04:05.000"})), nil
		}
		return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level, ReplaceAttr: durationMillis})), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level, ReplaceAttr: durationMillis})), nil
	case "text":
		return slog.New(tint.NewTextHandler(w, &tint.Options{Level: level, TimeFormat: "15:04:05.000", NoColor: !isTerminal(w)})), nil
	default:
		return nil, usageError{errors.New("--log-format must be auto, text or json")}
	}
}

// durationMillis logs a duration in JSON as whole milliseconds under the key with "_ms"
// appended ("timeout_ms":600000), not as nanoseconds; text output shows it as 10m0s.
func durationMillis(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		return slog.Int64(a.Key+"_ms", a.Value.Duration().Milliseconds())
	}
	return a
}

// logLevels are the names --log-level, $CLAWDIS_LOG_LEVEL and logging.level accept.
var logLevels = map[string]slog.Level{
	"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError,
}

// daemonLogLevel is the daemon's log level: --log-level, else $CLAWDIS_LOG_LEVEL, else the
// config file's logging.level, else info. --verbose (every frame, which is logged at debug)
// means at least debug.
func daemonLogLevel(df daemonFlags, getenv func(string) string) (slog.Level, error) {
	name, source := df.logLevel, "--log-level"
	if name == "" {
		name, source = getenv(config.EnvLogLevel), "$"+config.EnvLogLevel
	}
	if name == "" {
		home, _ := os.UserHomeDir()
		// A config file that does not load is reported, with its reason, once the daemon
		// starts; until then info is as good as any level.
		if cfg, _, _, err := config.ResolvePaths(df.stateDir, df.configPath, getenv, home).Load(); err == nil {
			name, source = cfg.Logging.Level, "logging.level"
		}
	}
	level := slog.LevelInfo
	if name != "" {
		l, ok := logLevels[name]
		if !ok {
			err := fmt.Errorf("%s must be debug, info, warn or error", source)
			if source == "--log-level" {
				return 0, usageError{err}
			}
			return 0, err
		}
		level = l
	}
	if df.verbose {
		level = min(level, slog.LevelDebug)
	}
	return level, nil
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
