package main

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/clawdis/clawdis/edge"
)

// minTokenLen is the shortest gateway token accepted for a bind beyond loopback
// (`openssl rand -hex 16` gives 32 characters).
const minTokenLen = 16

// tokenFix says how to make a token that passes bindTokenProblem.
const tokenFix = "set CLAWDIS_GATEWAY_TOKEN (or gateway.token, or --token) to a random value of at least 16 characters without whitespace: openssl rand -hex 16"

// bindTokenProblem is the one token-strength rule, used at start-up and by clawdis doctor:
// a gateway bound beyond loopback needs a token of at least minTokenLen characters without
// whitespace. It returns what is wrong with token for bind, "" when nothing is. The token
// itself never appears in the text.
func bindTokenProblem(bind, token string) string {
	switch {
	case edge.IsLoopbackHost(bind):
		return ""
	case token == "":
		return "no token is set"
	case strings.IndexFunc(token, unicode.IsSpace) >= 0:
		return "the token contains whitespace"
	case utf8.RuneCountInString(token) < minTokenLen:
		return fmt.Sprintf("the token is weak (%d characters; at least %d needed)", utf8.RuneCountInString(token), minTokenLen)
	}
	return ""
}
