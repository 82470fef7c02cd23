package edge

import "github.com/clawdis/clawdis/schemas"

// parseHello decodes a hello in one pass when it is in the common shape: a JSON object with
// the keys type ("hello"), minProtocol and maxProtocol (integers from 1, written as up to 9
// digits) and client (an object with name, version, platform and mode, and optionally
// instanceId, each a non-empty string), and optionally caps (an array of non-empty strings),
// auth (an object with optionally token, a string), locale and userAgent (strings); each key
// once, every string without escapes and in valid UTF-8. Such a hello satisfies the hello
// schema, so nothing else needs to look at it. false: anything else, for the schema path to
// accept or word the error. data is valid JSON.
func parseHello(data []byte) (h schemas.Hello, ok bool) {
	var seen [8]bool // type, minProtocol, maxProtocol, client, caps, auth, locale, userAgent
	ok = members(data, skipSpace(data, 0), func(key, val []byte) bool {
		var slot int
		var good bool
		switch string(key) {
		case "type":
			slot, good = 0, string(val) == `"hello"`
		case "minProtocol":
			slot = 1
			h.MinProtocol, good = protocolNumber(val)
		case "maxProtocol":
			slot = 2
			h.MaxProtocol, good = protocolNumber(val)
		case "client":
			slot = 3
			h.Client, good = parseClientInfo(val)
		case "caps":
			slot = 4
			h.Caps = []string{}
			good = elements(val, func(v []byte) bool {
				s, ok := nonEmpty(v)
				h.Caps = append(h.Caps, s)
				return ok
			})
		case "auth":
			slot = 5
			h.Auth = &schemas.HelloAuth{}
			good = members(val, 0, func(k, v []byte) bool {
				if string(k) != "token" || h.Auth.Token != "" {
					return false // another key, or token twice (an empty one again is left to the schema too)
				}
				var ok bool
				h.Auth.Token, ok = str(v)
				return ok && h.Auth.Token != ""
			})
		case "locale":
			slot = 6
			h.Locale, good = str(val)
		case "userAgent":
			slot = 7
			h.UserAgent, good = str(val)
		default:
			return false
		}
		if !good || seen[slot] {
			return false
		}
		seen[slot] = true
		return true
	})
	if !ok || !seen[0] || !seen[1] || !seen[2] || !seen[3] {
		return schemas.Hello{}, false
	}
	h.Type = schemas.TypeHello
	return h, true
}

// parseClientInfo decodes the hello's client object in the common shape.
func parseClientInfo(b []byte) (ci schemas.ClientInfo, ok bool) {
	var seen [5]bool
	ok = members(b, 0, func(key, val []byte) bool {
		var field *string
		var slot int
		switch string(key) {
		case "name":
			slot, field = 0, &ci.Name
		case "version":
			slot, field = 1, &ci.Version
		case "platform":
			slot, field = 2, &ci.Platform
		case "mode":
			slot, field = 3, &ci.Mode
		case "instanceId":
			slot, field = 4, &ci.InstanceID
		default:
			return false
		}
		if seen[slot] {
			return false
		}
		seen[slot] = true
		var good bool
		*field, good = nonEmpty(val)
		return good
	})
	return ci, ok && seen[0] && seen[1] && seen[2] && seen[3]
}

// str is the JSON string b when it has no escapes and is valid UTF-8.
func str(b []byte) (string, bool) {
	s, next, ok := plainString(b, 0)
	if !ok || next != len(b) {
		return "", false
	}
	return string(s), true
}

// nonEmpty is str for a string that must not be empty.
func nonEmpty(b []byte) (string, bool) {
	s, ok := str(b)
	return s, ok && s != ""
}

// protocolNumber is the integer literal b when it is 1 to 9 digits and at least 1.
func protocolNumber(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 9 {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, n >= 1
}
