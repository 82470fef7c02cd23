// Package clawdis_test holds repository-wide checks; the root has no production code.
package clawdis_test

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/clawdis/clawdis"

// TestImportRules keeps the layout of DESIGN.md: services never import each other or the
// edge; the edge never imports services or provider SDKs; only services/whatsapp imports
// whatsmeow and only services/telegram imports telebot; bus/subject imports only the
// standard library.
func TestImportRules(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go tool not on PATH")
	}
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg, imports := fields[0], fields[1:]
		rel := strings.TrimPrefix(strings.TrimPrefix(pkg, module), "/")
		for _, imp := range imports {
			irel, internal := strings.CutPrefix(imp, module+"/")
			if why := violation(rel, imp, irel, internal); why != "" {
				t.Errorf("%s imports %s: %s", pkg, imp, why)
			}
		}
	}
}

func violation(pkg, imp, irel string, internal bool) string {
	service := func(p string) string { // "services/x/..." -> "x"
		rest, ok := strings.CutPrefix(p, "services/")
		if !ok {
			return ""
		}
		return strings.SplitN(rest, "/", 2)[0]
	}
	switch {
	case strings.HasPrefix(imp, "go.mau.fi/whatsmeow") && service(pkg) != "whatsapp":
		return "only services/whatsapp may import whatsmeow"
	case strings.HasPrefix(imp, "gopkg.in/telebot") && service(pkg) != "telegram":
		return "only services/telegram may import telebot"
	case pkg == "bus/subject" && (internal || strings.Contains(strings.SplitN(imp, "/", 2)[0], ".")):
		return "bus/subject imports only the standard library"
	}
	if !internal {
		return ""
	}
	if s := service(pkg); s != "" {
		if is := service(irel); is != "" && is != s && is != "internal" && !(s != "provider" && is == "provider") {
			return "services never import each other (only the provider core and services/internal)"
		}
		if irel == "edge" || strings.HasPrefix(irel, "edge/") {
			return "services never import the edge"
		}
	}
	if (pkg == "edge" || strings.HasPrefix(pkg, "edge/")) && strings.HasPrefix(irel, "services/") {
		return "the edge never imports services"
	}
	return ""
}

func TestViolationRules(t *testing.T) {
	for _, tt := range []struct {
		pkg, imp string
		bad      bool
	}{
		{"services/health", module + "/services/presence", true},
		{"services/health", module + "/edge", true},
		{"services/whatsapp", module + "/services/provider", false},
		{"edge", module + "/services/health", true},
		{"edge", module + "/bus/wire", false},
		{"edge", "gopkg.in/telebot.v3", true},
		{"services/telegram", "gopkg.in/telebot.v3", false},
		{"services/agent", "go.mau.fi/whatsmeow", true},
		{"bus/subject", "fmt", false},
		{"bus/subject", "github.com/nats-io/nats.go", true},
		{"cmd/clawdis", module + "/services/health", false},
		{"services/agent", module + "/services/internal/idem", false},
		{"services/agent", module + "/services/sessions", true},
	} {
		irel, internal := strings.CutPrefix(tt.imp, module+"/")
		if got := violation(tt.pkg, tt.imp, irel, internal) != ""; got != tt.bad {
			t.Errorf("%s -> %s: violation %v, want %v", tt.pkg, tt.imp, got, tt.bad)
		}
	}
}
