package webchat

import (
	"io/fs"
	"strings"
	"testing"
)

// TestPageParsesNoHTMLFromStrings keeps the page's rule that model output (and any other
// text) reaches the DOM as text nodes only: no script of the page parses a string as HTML.
func TestPageParsesNoHTMLFromStrings(t *testing.T) {
	scripts, err := fs.Glob(assets, "*.js")
	if err != nil || len(scripts) < 2 {
		t.Fatalf("page scripts: %v %v", scripts, err)
	}
	for _, name := range scripts {
		b, err := fs.ReadFile(assets, name)
		if err != nil {
			t.Fatal(err)
		}
		for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "createContextualFragment", "DOMParser", "eval(", "new Function"} {
			if strings.Contains(string(b), bad) {
				t.Errorf("%s uses %s", name, bad)
			}
		}
	}
}
