package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"regexp/syntax"
	"strconv"
	"strings"
)

// check validates one key after schema validation and migration; fn returns the problem or
// "". Types, ranges, enums and lengths are the schema's job; these are the rules it cannot
// express (URLs, addresses, regular expressions, keys that depend on each other). Messages
// never contain the value.
type check struct {
	path string
	fn   func(c *Config) string
}

// checks run in order; the first problem is the error. A new key with such a rule is one line.
var checks = []check{
	{"gateway.bind", func(c *Config) string { return bindAddress(c.Gateway.Bind) }},
	{"gateway.maxBufferedBytes", func(c *Config) string {
		return atLeastKey(c.Gateway.MaxBufferedBytes, c.Gateway.MaxPayload, "gateway.maxPayload")
	}},
	{"agent.command", func(c *Config) string {
		if c.Agent.Backend == BackendCommand && (len(c.Agent.Command) == 0 || c.Agent.Command[0] == "") {
			return `required when agent.backend is "command" (an argv array whose first element is the program)`
		}
		return ""
	}},
	{"agent.openai.baseUrl", func(c *Config) string { return httpURL(c.Agent.OpenAI.BaseURL, true) }},
	{"agent.openai.model", func(c *Config) string {
		if c.Agent.Backend == BackendOpenAI && c.Agent.OpenAI.Model == "" {
			return `required when agent.backend is "openai"`
		}
		return ""
	}},
	{"inbound.groupChat.mentionPatterns", func(c *Config) string { return regexps(c.Inbound.GroupChat.MentionPatterns) }},
	{"web.reconnect.maxMs", func(c *Config) string {
		return atLeastKey(c.Web.Reconnect.MaxMs, c.Web.Reconnect.InitialMs, "web.reconnect.initialMs")
	}},
	{"telegram.apiRoot", func(c *Config) string { return httpURL(c.Telegram.APIRoot, true) }},
	{"telegram.webhookUrl", func(c *Config) string { return httpURL(c.Telegram.WebhookURL, false) }},
	{"telegram.webhookListen", func(c *Config) string { return hostPort(c.Telegram.WebhookListen) }},
	{"telegram.webhookPath", func(c *Config) string {
		if !strings.HasPrefix(c.Telegram.WebhookPath, "/") {
			return `must start with "/"`
		}
		return ""
	}},
	{"telegram.proxy", func(c *Config) string { return proxyURL(c.Telegram.Proxy) }},
}

// BindError is the problem with a listen address given as host:port, or "". Both the
// gateway.bind key and the --bind flag take an address only; the port has its own setting.
func BindError(bind string) string { return bindAddress(bind) }

func bindAddress(s string) string {
	if _, _, err := net.SplitHostPort(s); err == nil {
		return "must be an address without a port (the port is gateway.port or --port)"
	}
	return ""
}

func atLeastKey(n, lo int, key string) string {
	if n < lo {
		return fmt.Sprintf("must be at least %s (%d)", key, lo)
	}
	return ""
}

// httpURL wants an absolute http or https URL. The value is not echoed (it may carry
// credentials).
func httpURL(s string, required bool) string {
	if s == "" {
		if required {
			return "must not be empty"
		}
		return ""
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "must be an absolute http or https URL"
	}
	return ""
}

func proxyURL(s string) string {
	if s == "" {
		return ""
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return "must be a proxy URL such as http://host:port or socks5://host:port"
	}
	return ""
}

func hostPort(s string) string {
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return "must be host:port"
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return "must be host:port with a port between 0 and 65535"
	}
	return ""
}

func regexps(patterns []string) string {
	for i, p := range patterns {
		if _, err := regexp.Compile(p); err != nil {
			problem := "cannot compile"
			if se, ok := errors.AsType[*syntax.Error](err); ok {
				problem = string(se.Code)
			}
			return fmt.Sprintf("element %d: invalid regular expression: %s", i, problem)
		}
	}
	return ""
}
