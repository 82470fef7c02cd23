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

// check validates one key after decoding and migration; fn returns the problem or "".
// Messages never contain the value of a secret key.
type check struct {
	path string
	fn   func(c *Config) string
}

// checks run in order; the first problem is the error. A new key with a constraint is one line.
var checks = []check{
	{"gateway.port", func(c *Config) string { return between(c.Gateway.Port, 1, 65535) }},
	{"gateway.bind", func(c *Config) string { return notEmpty(c.Gateway.Bind) }},
	{"gateway.tickIntervalMs", func(c *Config) string { return atLeast(c.Gateway.TickIntervalMs, 100) }},
	{"gateway.handshakeTimeoutMs", func(c *Config) string { return atLeast(c.Gateway.HandshakeTimeoutMs, 100) }},
	{"gateway.maxPayload", func(c *Config) string { return atLeast(c.Gateway.MaxPayload, 1024) }},
	{"gateway.maxBufferedBytes", func(c *Config) string {
		return atLeastKey(c.Gateway.MaxBufferedBytes, c.Gateway.MaxPayload, "gateway.maxPayload")
	}},
	{"webchat.port", func(c *Config) string { return between(c.WebChat.Port, 1, 65535) }},
	{"agent.backend", func(c *Config) string { return oneOf(c.Agent.Backend, "", BackendCommand, BackendOpenAI) }},
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
	{"agent.timeoutSeconds", func(c *Config) string { return atLeast(c.Agent.TimeoutSeconds, 1) }},
	{"agent.maxConcurrent", func(c *Config) string { return atLeast(c.Agent.MaxConcurrent, 1) }},
	{"agent.thinkingDefault", func(c *Config) string { return oneOf(c.Agent.ThinkingDefault, ThinkingLevels...) }},
	{"sessions.mainKey", func(c *Config) string { return notEmpty(c.Sessions.MainKey) }},
	{"sessions.historyLimit", func(c *Config) string { return atLeast(c.Sessions.HistoryLimit, 0) }},
	{"inbound.groupChat.mentionPatterns", func(c *Config) string { return regexps(c.Inbound.GroupChat.MentionPatterns) }},
	{"inbound.reply.timeoutSeconds", func(c *Config) string { return atLeast(c.Inbound.Reply.TimeoutSeconds, 0) }},
	{"web.reconnect.initialMs", func(c *Config) string { return atLeast(c.Web.Reconnect.InitialMs, 1) }},
	{"web.reconnect.maxMs", func(c *Config) string {
		return atLeastKey(c.Web.Reconnect.MaxMs, c.Web.Reconnect.InitialMs, "web.reconnect.initialMs")
	}},
	{"web.reconnect.factor", func(c *Config) string { return floatAtLeast(c.Web.Reconnect.Factor, 1) }},
	{"web.reconnect.jitter", func(c *Config) string { return floatBetween(c.Web.Reconnect.Jitter, 0, 1) }},
	{"web.reconnect.maxAttempts", func(c *Config) string { return atLeast(c.Web.Reconnect.MaxAttempts, 0) }},
	{"web.heartbeatSeconds", func(c *Config) string { return atLeast(c.Web.HeartbeatSeconds, 1) }},
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
	{"telegram.mediaMaxMb", func(c *Config) string { return atLeast(c.Telegram.MediaMaxMb, 1) }},
}

func between(n, lo, hi int) string {
	if n < lo || n > hi {
		return fmt.Sprintf("must be between %d and %d", lo, hi)
	}
	return ""
}

func atLeast(n, lo int) string {
	if n < lo {
		return fmt.Sprintf("must be at least %d", lo)
	}
	return ""
}

func atLeastKey(n, lo int, key string) string {
	if n < lo {
		return fmt.Sprintf("must be at least %s (%d)", key, lo)
	}
	return ""
}

func floatBetween(f, lo, hi float64) string {
	if f < lo || f > hi {
		return "must be between " + strconv.FormatFloat(lo, 'g', -1, 64) + " and " +
			strconv.FormatFloat(hi, 'g', -1, 64)
	}
	return ""
}

func floatAtLeast(f, lo float64) string {
	if f < lo {
		return "must be at least " + strconv.FormatFloat(lo, 'g', -1, 64)
	}
	return ""
}

func notEmpty(s string) string {
	if s == "" {
		return "must not be empty"
	}
	return ""
}

// oneOf reports a value outside allowed; "" in allowed means the key may be left empty and is
// not listed. The value is echoed, so never use it for a secret.
func oneOf(s string, allowed ...string) string {
	var names []string
	for _, a := range allowed {
		if s == a {
			return ""
		}
		if a != "" {
			names = append(names, strconv.Quote(a))
		}
	}
	return "must be one of " + strings.Join(names, ", ") + "; got " + quoteValue(s)
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
			problem := err.Error()
			if se, ok := errors.AsType[*syntax.Error](err); ok {
				problem = string(se.Code) + " in " + quoteValue(se.Expr)
			}
			return fmt.Sprintf("element %d: invalid regular expression: %s", i, problem)
		}
	}
	return ""
}
