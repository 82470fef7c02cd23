package config

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// lookup returns the field at a dotted JSON key path, following the json tags.
func lookup(t *testing.T, c *Config, path string) reflect.Value {
	t.Helper()
	v, ok := field(reflect.ValueOf(c).Elem(), path)
	if !ok {
		t.Fatalf("no config field %q", path)
	}
	return v
}

// leafPaths lists every leaf key path of Config.
func leafPaths(t reflect.Type, prefix string) []string {
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		p := f.Tag.Get("json")
		if prefix != "" {
			p = prefix + "." + p
		}
		if f.Type.Kind() == reflect.Struct {
			out = append(out, leafPaths(f.Type, p)...)
		} else {
			out = append(out, p)
		}
	}
	return out
}

func TestDefault(t *testing.T) {
	c := Default()
	tests := []struct {
		path string
		want any
	}{
		{"gateway.port", 18789},
		{"gateway.bind", "127.0.0.1"},
		{"gateway.token", ""},
		{"gateway.tickIntervalMs", 30000},
		{"gateway.handshakeTimeoutMs", 10000},
		{"gateway.maxPayload", 524288},
		{"gateway.maxBufferedBytes", 1572864},
		{"gateway.allowedOrigins", []string{}},
		{"gateway.allowedHosts", []string{}},
		{"gateway.maxConnections", 1024},
		{"gateway.authRateLimit.maxFailures", 10},
		{"gateway.authRateLimit.windowMs", 60000},
		{"gateway.authRateLimit.lockoutMs", 60000},
		{"webchat.enabled", true},
		{"webchat.port", 18788},
		{"agent.backend", ""},
		{"agent.command", []string(nil)},
		{"agent.openai.baseUrl", "https://api.openai.com/v1"},
		{"agent.openai.model", ""},
		{"agent.openai.apiKeyEnv", "OPENAI_API_KEY"},
		{"agent.openai.systemPrompt", ""},
		{"agent.timeoutSeconds", 600},
		{"agent.maxConcurrent", 4},
		{"agent.thinkingDefault", "off"},
		{"agent.maxReplyBytes", 262144},
		{"sessions.mainKey", "main"},
		{"sessions.historyLimit", 40},
		{"inbound.allowFrom", []string(nil)},
		{"inbound.groupChat.requireMention", true},
		{"inbound.groupChat.mentionPatterns", []string{}},
		{"inbound.reply.mode", ""},
		{"inbound.reply.command", []string(nil)},
		{"inbound.reply.timeoutSeconds", 0},
		{"inbound.reply.session.mainKey", ""},
		{"web.reconnect.initialMs", 2000},
		{"web.reconnect.maxMs", 30000},
		{"web.reconnect.factor", 1.8},
		{"web.reconnect.jitter", 0.25},
		{"web.reconnect.maxAttempts", 0},
		{"web.heartbeatSeconds", 60},
		{"telegram.botToken", ""},
		{"telegram.apiRoot", "https://api.telegram.org"},
		{"telegram.allowFrom", IDs(nil)},
		{"telegram.requireMention", true},
		{"telegram.webhookUrl", ""},
		{"telegram.webhookSecret", ""},
		{"telegram.webhookListen", "127.0.0.1:8787"},
		{"telegram.webhookPath", "/telegram-webhook"},
		{"telegram.proxy", ""},
		{"telegram.mediaMaxMb", 5},
		{"logging.level", "info"},
		{"bus.storeDir", ""},
		{"bus.replicas", 1},
	}
	if got, want := len(tests), len(leafPaths(reflect.TypeFor[Config](), "")); got != want {
		t.Fatalf("table covers %d keys, Config has %d", got, want)
	}
	for _, tt := range tests {
		if got := lookup(t, &c, tt.path).Interface(); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s = %#v, want %#v", tt.path, got, tt.want)
		}
	}
	// The defaults must pass validation.
	for _, ch := range checks {
		if p := ch.fn(&c); p != "" {
			t.Errorf("default %s: %s", ch.path, p)
		}
	}
	if got := c.Gateway.TickInterval().String(); got != "30s" {
		t.Errorf("TickInterval = %s", got)
	}
}

const fullConfig = `// every key, none at its default
{
  gateway: {
    port: 1234, bind: "0.0.0.0", token: "tok",
    tickIntervalMs: 1000, handshakeTimeoutMs: 2000,
    maxPayload: 2048, maxBufferedBytes: 4096,
    allowedOrigins: ["https://a.example", "b.example"], allowedHosts: ["gw.example"],
    maxConnections: 10, authRateLimit: { maxFailures: 3, windowMs: 1000, lockoutMs: 2000 },
  },
  webchat: { enabled: false, port: 1235 },
  agent: {
    backend: "openai",
    command: ["claude", "-p", "{{Body}}"],
    openai: { baseUrl: "http://127.0.0.1:9/v1", model: "m", apiKeyEnv: "K", systemPrompt: "be brief" },
    timeoutSeconds: 30, maxConcurrent: 2, thinkingDefault: "high", maxReplyBytes: 100,
  },
  sessions: { mainKey: "primary", historyLimit: 0 },
  inbound: {
    allowFrom: ["+15550001", "*"],
    groupChat: { requireMention: false, mentionPatterns: ["@bot", "(?i)clawd"] },
    reply: { mode: "text", command: ["old"], timeoutSeconds: 7, session: { mainKey: "oldmain" } },
  },
  web: { reconnect: { initialMs: 10, maxMs: 20, factor: 2, jitter: 0, maxAttempts: 3 }, heartbeatSeconds: 5 },
  telegram: {
    botToken: "bt", apiRoot: "http://127.0.0.1:8081", allowFrom: [123, "-100456", "*"],
    requireMention: false, webhookUrl: "https://x.example/hook", webhookSecret: "ws",
    webhookListen: ":9000", webhookPath: "/hook", proxy: "socks5://127.0.0.1:1080", mediaMaxMb: 20,
  },
  logging: { level: "debug" },
  bus: { storeDir: "/srv/bus", replicas: 3 },
}`

func TestParseEveryKey(t *testing.T) {
	got, warnings, err := Parse([]byte(fullConfig), "/x/clawdis.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 0 {
		t.Errorf("warnings: %q", warnings)
	}
	want := Config{
		Gateway: Gateway{Port: 1234, Bind: "0.0.0.0", Token: "tok", TickIntervalMs: 1000,
			HandshakeTimeoutMs: 2000, MaxPayload: 2048, MaxBufferedBytes: 4096,
			AllowedOrigins: []string{"https://a.example", "b.example"}, AllowedHosts: []string{"gw.example"},
			MaxConnections: 10, AuthRateLimit: AuthRateLimit{MaxFailures: 3, WindowMs: 1000, LockoutMs: 2000}},
		WebChat: WebChat{Enabled: false, Port: 1235},
		Agent: Agent{Backend: "openai", Command: []string{"claude", "-p", "{{Body}}"},
			OpenAI:         OpenAI{BaseURL: "http://127.0.0.1:9/v1", Model: "m", APIKeyEnv: "K", SystemPrompt: "be brief"},
			TimeoutSeconds: 30, MaxConcurrent: 2, ThinkingDefault: "high", MaxReplyBytes: 100},
		Sessions: Sessions{MainKey: "primary", HistoryLimit: 0},
		Inbound: Inbound{AllowFrom: []string{"+15550001", "*"},
			GroupChat: GroupChat{RequireMention: false, MentionPatterns: []string{"@bot", "(?i)clawd"}},
			Reply: Reply{Mode: "text", Command: []string{"old"}, TimeoutSeconds: 7,
				Session: ReplySession{MainKey: "oldmain"}}},
		Web: Web{Reconnect: Reconnect{InitialMs: 10, MaxMs: 20, Factor: 2, Jitter: 0, MaxAttempts: 3},
			HeartbeatSeconds: 5},
		Telegram: Telegram{BotToken: "bt", APIRoot: "http://127.0.0.1:8081",
			AllowFrom: IDs{"123", "-100456", "*"}, RequireMention: false,
			WebhookURL: "https://x.example/hook", WebhookSecret: "ws", WebhookListen: ":9000",
			WebhookPath: "/hook", Proxy: "socks5://127.0.0.1:1080", MediaMaxMb: 20},
		Logging: Logging{Level: "debug"},
		Bus:     Bus{StoreDir: "/srv/bus", Replicas: 3},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Parse:\n got %+v\nwant %+v", got, want)
	}
	// fullConfig really sets every key to something other than its default, so a field the
	// walker silently skipped would show up here.
	def := Default()
	for _, p := range leafPaths(reflect.TypeFor[Config](), "") {
		if reflect.DeepEqual(lookup(t, &got, p).Interface(), lookup(t, &def, p).Interface()) {
			t.Errorf("%s: still at its default after parsing fullConfig", p)
		}
	}
}

func TestParseJSON5Syntax(t *testing.T) {
	tests := []struct {
		name string
		in   string
		port int
	}{
		{"plain JSON", `{"gateway": {"port": 1}}`, 1},
		{"line and block comments", "// c\n{ /* c */ gateway: { port: 2 // c\n } }\n// end", 2},
		{"trailing commas", `{gateway: {port: 3,},}`, 3},
		{"single quotes", `{'gateway': {'port': 4}}`, 4},
		{"hex number", `{gateway: {port: 0x10}}`, 16},
		{"exponent with whole value", `{gateway: {port: 1e3}}`, 1000},
		{"whole float", `{gateway: {port: 5.0}}`, 5},
		{"null keeps default", `{gateway: {port: null}}`, 18789},
		{"empty object", `{}`, 18789},
		{"whitespace-only file", " \n\t", 18789},
		{"byte order mark", "\xef\xbb\xbf{gateway: {port: 6}}", 6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _, err := Parse([]byte(tt.in), "f.json")
			if err != nil {
				t.Fatal(err)
			}
			if c.Gateway.Port != tt.port {
				t.Errorf("port = %d, want %d", c.Gateway.Port, tt.port)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	const f = "/x/clawdis.json"
	tests := []struct {
		in   string
		want string
	}{
		{`{gateway: {port: "80"}}`, "gateway.port: must be an integer between 1 and 65535, got a string"},
		{`{gateway: {port: 1.5}}`, "gateway.port: must be an integer between 1 and 65535, got a fractional number"},
		{`{gateway: {port: Infinity}}`, "gateway.port: must be a finite number"},
		{`{gateway: {port: 1e400}}`, "gateway.port: number out of range"},
		{`{gateway: {port: 1e30}}`, "gateway.port: number out of range"},
		{`{gateway: {port: 0}}`, "gateway.port: must be an integer between 1 and 65535"},
		{`{gateway: {port: 65536}}`, "gateway.port: must be an integer between 1 and 65535"},
		{`{gateway: {bind: ""}}`, "gateway.bind: must not be empty"},
		{`{gateway: {bind: 1}}`, "gateway.bind: must be a string, got a number"},
		{`{gateway: {bind: "127.0.0.1:18789"}}`, "gateway.bind: must be an address without a port (the port is gateway.port or --port)"},
		{`{gateway: {tickIntervalMs: 99}}`, "gateway.tickIntervalMs: must be an integer >= 100"},
		{`{gateway: {handshakeTimeoutMs: 50}}`, "gateway.handshakeTimeoutMs: must be an integer >= 100"},
		{`{gateway: {maxPayload: 1023}}`, "gateway.maxPayload: must be an integer >= 1024"},
		{`{gateway: {maxPayload: 4096, maxBufferedBytes: 2048}}`,
			"gateway.maxBufferedBytes: must be at least gateway.maxPayload (4096)"},
		{`{gateway: {allowedOrigins: "x"}}`, "gateway.allowedOrigins: must be an array, got a string"},
		{`{gateway: {allowedOrigins: ["a", 2]}}`, "gateway.allowedOrigins[1]: must be a string, got a number"},
		{`{gateway: {allowedOrigins: [null]}}`, "gateway.allowedOrigins[0]: must be a string, got null"},
		{`{gateway: {maxConnections: 0}}`, "gateway.maxConnections: must be an integer >= 1"},
		{`{gateway: {authRateLimit: {lockoutMs: true}}}`, "gateway.authRateLimit.lockoutMs: must be an integer >= 1, got a boolean"},
		{`{gateway: 5}`, "gateway: must be an object, got a number"},
		{`{gateway: []}`, "gateway: must be an object, got an array"},
		{`{webchat: {enabled: "yes"}}`, "webchat.enabled: must be a boolean, got a string"},
		{`{webchat: {port: -1}}`, "webchat.port: must be an integer between 1 and 65535"},
		{`{agent: {backend: "shell"}}`, `agent.backend: must be one of "command", "openai"`},
		{`{agent: {backend: "command"}}`,
			`agent.command: required when agent.backend is "command" (an argv array whose first element is the program)`},
		{`{agent: {command: [""]}}`,
			`agent.command: required when agent.backend is "command" (an argv array whose first element is the program)`},
		{`{agent: {backend: "openai"}}`, `agent.openai.model: required when agent.backend is "openai"`},
		{`{agent: {openai: {baseUrl: "ftp://x"}}}`, "agent.openai.baseUrl: must be an absolute http or https URL"},
		{`{agent: {timeoutSeconds: 0}}`, "agent.timeoutSeconds: must be an integer >= 1"},
		{`{agent: {maxConcurrent: 0}}`, "agent.maxConcurrent: must be an integer >= 1"},
		{`{agent: {maxReplyBytes: 0}}`, "agent.maxReplyBytes: must be an integer >= 1"},
		{`{agent: {thinkingDefault: "max"}}`, `agent.thinkingDefault: must be one of "off", "minimal", "low", "medium", "high"`},
		{`{sessions: {mainKey: ""}}`, "sessions.mainKey: must not be empty"},
		{`{sessions: {historyLimit: -1}}`, "sessions.historyLimit: must be an integer >= 0"},
		{`{inbound: {groupChat: {mentionPatterns: ["("]}}}`,
			"inbound.groupChat.mentionPatterns: element 0: invalid regular expression: missing closing )"},
		{`{inbound: {reply: {timeoutSeconds: -5}}}`, "inbound.reply.timeoutSeconds: must be an integer >= 0"},
		{`{web: {reconnect: {initialMs: 0}}}`, "web.reconnect.initialMs: must be an integer >= 1"},
		{`{web: {reconnect: {initialMs: 500, maxMs: 100}}}`,
			"web.reconnect.maxMs: must be at least web.reconnect.initialMs (500)"},
		{`{web: {reconnect: {factor: 0.5}}}`, "web.reconnect.factor: must be a number >= 1"},
		{`{web: {reconnect: {factor: "2"}}}`, "web.reconnect.factor: must be a number >= 1, got a string"},
		{`{web: {reconnect: {factor: NaN}}}`, "web.reconnect.factor: must be a finite number"},
		{`{web: {reconnect: {jitter: 1.5}}}`, "web.reconnect.jitter: must be a number between 0 and 1"},
		{`{web: {reconnect: {jitter: -0.1}}}`, "web.reconnect.jitter: must be a number between 0 and 1"},
		{`{web: {reconnect: {maxAttempts: -1}}}`, "web.reconnect.maxAttempts: must be an integer >= 0"},
		{`{web: {heartbeatSeconds: 0}}`, "web.heartbeatSeconds: must be an integer >= 1"},
		{`{telegram: {apiRoot: "api.telegram.org"}}`, "telegram.apiRoot: must be an absolute http or https URL"},
		{`{telegram: {webhookUrl: "/hook"}}`, "telegram.webhookUrl: must be an absolute http or https URL"},
		{`{telegram: {webhookListen: "8787"}}`, "telegram.webhookListen: must be host:port"},
		{`{telegram: {webhookListen: "h:99999"}}`, "telegram.webhookListen: must be host:port with a port between 0 and 65535"},
		{`{telegram: {webhookPath: "hook"}}`, `telegram.webhookPath: must start with "/"`},
		{`{telegram: {proxy: "nope"}}`, "telegram.proxy: must be a proxy URL such as http://host:port or socks5://host:port"},
		{`{telegram: {mediaMaxMb: 0}}`, "telegram.mediaMaxMb: must be an integer >= 1"},
		{`{telegram: {allowFrom: [1.5]}}`, "telegram.allowFrom[0]: must be an integer or a string, got a fractional number"},
		{`{telegram: {allowFrom: [true]}}`, "telegram.allowFrom[0]: must be an integer or a string, got a boolean"},
		{`{telegram: {allowFrom: 123}}`, "telegram.allowFrom: must be an array, got a number"},
		{`{logging: {level: "verbose"}}`, `logging.level: must be one of "debug", "info", "warn", "error"`},
		{`{bus: {replicas: 0}}`, "bus.replicas: must be an integer between 1 and 5"},
		{`{bus: {storeDir: ""}}`, "bus.storeDir: must not be empty"},
		{`[1, 2]`, "the top level must be an object"},
		{`null`, "the top level must be an object"},
		{"{\n  gateway: {\n    port: 1 2\n  }\n}", "syntax error at line 3: invalid character '2' after object key:value pair"},
		{`{gateway: {port: 1}`, "syntax error at line 1: unexpected end of JSON input"},
		{"{\n gateway: {port: 1}\n", "syntax error at line 2: unexpected end of JSON input"},
		{"{\n gateway: {port: 1}}}\n", "syntax error at line 2: invalid character '}' after top-level value"},
		{`{} x`, "syntax error at line 1: invalid character 'x' after top-level value"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			_, _, err := Parse([]byte(tt.in), f)
			if err == nil {
				t.Fatal("no error")
			}
			if got, want := err.Error(), "config "+f+": "+tt.want; got != want {
				t.Errorf("error:\n got %s\nwant %s", got, want)
			}
			var ce *Error
			if !errors.As(err, &ce) || ce.File != f {
				t.Errorf("not a *config.Error for %s: %#v", f, err)
			}
		})
	}
}

func TestParseWarnings(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{`{gateway: {prot: 1}}`, []string{`unknown config key "gateway.prot" (did you mean "gateway.port"?)`}},
		{`{gatway: {port: 1, more: {deep: 1}}}`, []string{`unknown config key "gatway" (did you mean "gateway"?)`}},
		{`{agnet: {command: ["x"]}}`, []string{`unknown config key "agnet" (did you mean "agent"?)`}},
		{`{web: {reconnect: {initalMs: 5, factor: 2}}, b: null, a: 1}`, []string{
			`unknown config key "a"`, `unknown config key "b"`,
			`unknown config key "web.reconnect.initalMs" (did you mean "web.reconnect.initialMs"?)`}},
		{`{inbound: {reply: {session: {mainkey: "x"}}}}`,
			[]string{`unknown config key "inbound.reply.session.mainkey" (did you mean "inbound.reply.session.mainKey"?)`}},
		{`{gateway: {Port: 1}}`, []string{`unknown config key "gateway.Port" (did you mean "gateway.port"?)`}},
		{`{gateway: {botToken: "x"}}`, []string{`unknown config key "gateway.botToken" (did you mean "telegram.botToken"?)`}},
		{`{gateway: {port: 1}, $schema: "./config.schema.json"}`, nil},
		{`{gateway: {port: 1}}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			_, warnings, err := Parse([]byte(tt.in), "f")
			if err != nil {
				t.Fatal(err)
			}
			slices.Sort(warnings)
			if !slices.Equal(warnings, tt.want) {
				t.Errorf("warnings = %q, want %q", warnings, tt.want)
			}
		})
	}
}

func TestParseMigration(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		backend string
		command []string
		timeout int
		mainKey string
	}{
		{"nothing to migrate", `{}`, "", nil, 600, "main"},
		{"reply command with mode command",
			`{inbound: {reply: {mode: "command", command: ["a", "{{Body}}"], timeoutSeconds: 90, session: {mainKey: "m2"}}}}`,
			"command", []string{"a", "{{Body}}"}, 90, "m2"},
		{"reply command without mode", `{inbound: {reply: {command: ["a"]}}}`, "command", []string{"a"}, 600, "main"},
		{"reply command with another mode is ignored", `{inbound: {reply: {mode: "text", command: ["a"]}}}`,
			"", nil, 600, "main"},
		{"agent keys win",
			`{agent: {command: ["new"], timeoutSeconds: 5}, sessions: {mainKey: "k"},
			  inbound: {reply: {command: ["old"], timeoutSeconds: 90, session: {mainKey: "m2"}}}}`,
			"command", []string{"new"}, 5, "k"},
		{"explicit backend kept", `{agent: {backend: "openai", openai: {model: "x"}}, inbound: {reply: {command: ["a"]}}}`,
			"openai", []string{"a"}, 600, "main"},
		{"agent.command alone sets the backend", `{agent: {command: ["x"]}}`, "command", []string{"x"}, 600, "main"},
		{"null agent.command counts as absent", `{agent: {command: null}, inbound: {reply: {command: ["a"]}}}`,
			"command", []string{"a"}, 600, "main"},
		{"reply timeout 0 is unset", `{inbound: {reply: {timeoutSeconds: 0}}}`, "", nil, 600, "main"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _, err := Parse([]byte(tt.in), "f")
			if err != nil {
				t.Fatal(err)
			}
			if c.Agent.Backend != tt.backend || !slices.Equal(c.Agent.Command, tt.command) ||
				c.Agent.TimeoutSeconds != tt.timeout || c.Sessions.MainKey != tt.mainKey {
				t.Errorf("got backend %q command %q timeout %d mainKey %q", c.Agent.Backend,
					c.Agent.Command, c.Agent.TimeoutSeconds, c.Sessions.MainKey)
			}
		})
	}
}

func TestParseTelegramAllowFrom(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{`[123456789]`, []string{"123456789"}},
		{`["123456789"]`, []string{"123456789"}},
		{`[-1001234567890, "*", "@name"]`, []string{"-1001234567890", "*", "@name"}},
		{`[1e3, 0x10]`, []string{"1000", "16"}},
		{`[9223372036854775807]`, []string{"9223372036854775807"}},
		{`[]`, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			c, _, err := Parse([]byte(`{telegram: {allowFrom: `+tt.in+`}}`), "f")
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual([]string(c.Telegram.AllowFrom), tt.want) {
				t.Errorf("allowFrom = %#v, want %#v", c.Telegram.AllowFrom, tt.want)
			}
		})
	}
}

func TestParseNeverEchoesSecrets(t *testing.T) {
	const secret = "s3cr3tvalue"
	tests := []string{
		`{gateway: {token: 123456789}}`,
		`{gateway: {token: ["s3cr3tvalue"]}}`,
		`{gateway: {token: {s3cr3tvalue: "s3cr3tvalue"}}}`,
		`{telegram: {botToken: ["s3cr3tvalue"]}}`,
		`{telegram: {botToken: 123456789}}`,
		`{telegram: {webhookSecret: ["s3cr3tvalue"]}}`,
		`{telegram: {webhookSecret: true}, gateway: {token: "s3cr3tvalue", port: "x"}}`,
		`{telegram: {botToken: "s3cr3tvalue", proxy: "s3cr3tvalue"}}`,
		`{telegram: {webhookUrl: "s3cr3tvalue"}}`,
		`{gateway: {token: "s3cr3tvalue}}`,
	}
	for _, in := range tests {
		t.Run(in, func(t *testing.T) {
			_, warnings, err := Parse([]byte(in), "f")
			if err == nil {
				t.Fatal("no error")
			}
			for _, text := range append(warnings, err.Error()) {
				if strings.Contains(text, secret) || strings.Contains(text, "123456789") {
					t.Errorf("secret echoed: %s", text)
				}
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		fullConfig, `{}`, `{gateway: {port: 1}}`, `// c` + "\n" + `{a: [1, 'x', null, true],}`,
		`{telegram: {allowFrom: [1, "2"]}}`, `{inbound: {reply: {command: ["x"]}}}`, `[`, `{gateway: {port: 1e999}}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, _, err := Parse(data, "fuzz.json")
		if err != nil {
			if !strings.HasPrefix(err.Error(), "config ") || strings.ContainsAny(err.Error(), "\n") {
				t.Fatalf("bad error text: %q", err.Error())
			}
			return
		}
		for _, ch := range checks {
			if p := ch.fn(&c); p != "" {
				t.Fatalf("accepted config fails %s: %s", ch.path, p)
			}
		}
	})
}
