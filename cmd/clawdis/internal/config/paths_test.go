package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestResolvePaths(t *testing.T) {
	const home = "/home/u"
	tests := []struct {
		name              string
		flagState, flagCf string
		env               map[string]string
		home              string
		want              Paths
	}{
		{"defaults", "", "", nil, home, Paths{"/home/u/.clawdis", "/home/u/.clawdis/clawdis.json", ""}},
		{"env state dir", "", "", map[string]string{EnvStateDir: "/srv/st"}, home,
			Paths{"/srv/st", "/srv/st/clawdis.json", ""}},
		{"flag state dir wins over env", "/flag/st", "", map[string]string{EnvStateDir: "/srv/st"}, home,
			Paths{"/flag/st", "/flag/st/clawdis.json", ""}},
		{"env config path", "", "", map[string]string{EnvConfigPath: "/etc/c.json"}, home,
			Paths{"/home/u/.clawdis", "/etc/c.json", "$CLAWDIS_CONFIG_PATH"}},
		{"flag config wins over env", "", "/f/c.json", map[string]string{EnvConfigPath: "/etc/c.json"}, home,
			Paths{"/home/u/.clawdis", "/f/c.json", "--config"}},
		{"all set", "/a", "/b.json", map[string]string{EnvStateDir: "/c", EnvConfigPath: "/d.json"}, home,
			Paths{"/a", "/b.json", "--config"}},
		{"tilde in flags", "~/st", "~/cfg/c.json", nil, home, Paths{"/home/u/st", "/home/u/cfg/c.json", "--config"}},
		{"tilde in env", "", "", map[string]string{EnvStateDir: "~/e", EnvConfigPath: "~"}, home,
			Paths{"/home/u/e", "/home/u", "$CLAWDIS_CONFIG_PATH"}},
		{"tilde in the middle is kept", "/x/~/y", "", nil, home, Paths{"/x/~/y", "/x/~/y/clawdis.json", ""}},
		{"~user is not expanded", "~bob/st", "", nil, home, Paths{"~bob/st", "~bob/st/clawdis.json", ""}},
		{"no home", "", "", nil, "", Paths{".clawdis", ".clawdis/clawdis.json", ""}},
		{"no home keeps tilde", "~/st", "", nil, "", Paths{"~/st", "~/st/clawdis.json", ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ResolvePaths(tt.flagState, tt.flagCf, env(tt.env), tt.home)
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
	if got := ResolvePaths("", "", nil, home); got.StateDir != "/home/u/.clawdis" {
		t.Errorf("nil getenv: %+v", got)
	}
}

func TestApplyEnv(t *testing.T) {
	tests := []struct {
		name                 string
		fileBot, fileGw      string
		env                  map[string]string
		wantBot, wantGwToken string
	}{
		{"no env keeps the file", "fb", "fg", nil, "fb", "fg"},
		{"env wins", "fb", "fg", map[string]string{EnvTelegramBot: "eb", EnvGatewayToken: "eg"}, "eb", "eg"},
		{"env fills empty", "", "", map[string]string{EnvTelegramBot: "eb", EnvGatewayToken: "eg"}, "eb", "eg"},
		{"empty env changes nothing", "fb", "fg", map[string]string{EnvTelegramBot: "", EnvGatewayToken: ""}, "fb", "fg"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			c.Telegram.BotToken, c.Gateway.Token = tt.fileBot, tt.fileGw
			c.ApplyEnv(env(tt.env))
			if c.Telegram.BotToken != tt.wantBot || c.Gateway.Token != tt.wantGwToken {
				t.Errorf("got bot %q gateway %q", c.Telegram.BotToken, c.Gateway.Token)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.json", "{gateway: {port: 1000}, x: 1}")
	bad := write("bad.json", "{gateway: {port: 'a'}}")
	big := write("big.json", "{}"+strings.Repeat(" ", MaxFileSize))

	c, warnings, err := Load(good)
	if err != nil || c.Gateway.Port != 1000 || len(warnings) != 1 {
		t.Errorf("good file: %+v %q %v", c.Gateway, warnings, err)
	}
	c, warnings, err = Load(filepath.Join(dir, "missing.json"))
	if err != nil || warnings != nil || c.Gateway.Port != 18789 {
		t.Errorf("missing file: %v %q %v", c.Gateway.Port, warnings, err)
	}
	tests := []struct {
		path, want string
	}{
		{bad, "config " + bad + ": gateway.port: must be an integer between 1 and 65535, got a string"},
		{dir, "config " + dir + ": cannot read: read " + dir + ": is a directory"},
		{big, "config " + big + ": file larger than 1048576 bytes"},
	}
	for _, tt := range tests {
		if _, _, err := Load(tt.path); err == nil || err.Error() != tt.want {
			t.Errorf("Load(%s) = %v, want %s", tt.path, err, tt.want)
		}
	}
}

func TestEnsureStateDir(t *testing.T) {
	base := t.TempDir()

	created := filepath.Join(base, "a", "b", "state")
	if err := EnsureStateDir(created); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(created); err != nil || fi.Mode().Perm() != 0o700 || !fi.IsDir() {
		t.Errorf("created dir: %v %v", fi.Mode(), err)
	}
	if err := EnsureStateDir(created); err != nil {
		t.Errorf("second call: %v", err)
	}

	existing := filepath.Join(base, "existing")
	if err := os.Mkdir(existing, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(existing, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := EnsureStateDir(existing); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(existing); fi.Mode().Perm() != 0o755 {
		t.Errorf("existing dir mode changed to %v", fi.Mode())
	}

	file := filepath.Join(base, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := EnsureStateDir(file); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("file: %v", err)
	}
	under := filepath.Join(file, "sub")
	if err := EnsureStateDir(under); err == nil {
		t.Errorf("under a file: %v", err)
	}
	if err := EnsureStateDir(""); err == nil {
		t.Error("empty path: no error")
	}
}

func TestPathsLoad(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "nope.json")
	for _, from := range []string{"--config", "$CLAWDIS_CONFIG_PATH"} {
		_, _, found, err := Paths{StateDir: dir, ConfigPath: missing, ConfigFrom: from}.Load()
		if want := "config " + missing + ": no such file (named by " + from + ")"; err == nil || err.Error() != want || found {
			t.Errorf("explicit missing file from %s: found %v, err %v, want %s", from, found, err, want)
		}
	}
	c, _, found, err := Paths{StateDir: dir, ConfigPath: missing}.Load()
	if err != nil || found || c.Gateway.Port != 18789 {
		t.Errorf("default missing file: found %v, port %d, err %v", found, c.Gateway.Port, err)
	}
	good := filepath.Join(dir, "c.json")
	if err := os.WriteFile(good, []byte("{gateway: {port: 1000}}"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, _, found, err = Paths{StateDir: dir, ConfigPath: good, ConfigFrom: "--config"}.Load()
	if err != nil || !found || c.Gateway.Port != 1000 {
		t.Errorf("explicit file: found %v, port %d, err %v", found, c.Gateway.Port, err)
	}
}
