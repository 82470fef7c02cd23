package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// serializeJS defines window.__ser: a canonical string of a DOM tree (tag names, attributes
// sorted by name, text with & < > escaped; void elements without a closing tag), so the
// renderer's output can be compared exactly.
const serializeJS = `window.__ser = function ser(n) {
	if (n.nodeType === 3) return n.data.replace(/[&<>]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;' })[c]);
	const kids = [...n.childNodes].map(ser).join('');
	if (n.nodeType === 11) return kids;
	const attrs = [...n.attributes].map((a) => ' ' + a.name + '="' + a.value.replace(/"/g, '&quot;') + '"').sort().join('');
	if (['br', 'hr', 'img'].includes(n.localName)) return '<' + n.localName + attrs + '>';
	return '<' + n.localName + attrs + '>' + kids + '</' + n.localName + '>';
}`

// a is the attribute set every rendered link carries.
const a = `rel="noopener noreferrer" target="_blank"`

var markdownCases = []struct{ name, in, want string }{
	{"paragraph", "hello world", `<p>hello world</p>`},
	{"paragraphs and line breaks", "one\ntwo\n\nthree", `<p>one<br>two</p><p>three</p>`},
	{"bold and emphasis", "**bold** and *em* and _em2_", `<p><strong>bold</strong> and <em>em</em> and <em>em2</em></p>`},
	{"nested emphasis", "**a *b* c** *d **e** f* ***g***", `<p><strong>a <em>b</em> c</strong> <em>d <strong>e</strong> f</em> <em><strong>g</strong></em></p>`},
	{"unbalanced emphasis", "**a* b** c *d", `<p><strong>a* b</strong> c *d</p>`},
	{"snake_case stays", "snake_case_name and 2*3*4", `<p>snake_case_name and 2<em>3</em>4</p>`},
	{"emphasis needs no space inside", "a * b * c", `<p>a * b * c</p>`},
	{"inline code", "use `x <y>` and ``a`b``", `<p>use <code>x &lt;y&gt;</code> and <code>a` + "`" + `b</code></p>`},
	{"code hides markup", "`**not bold** [x](https://e.com)`", `<p><code>**not bold** [x](https://e.com)</code></p>`},
	{"fenced code", "```go\nfunc f() {}\n\n  x := `<b>`\n```\nafter", "<pre><code data-lang=\"go\">func f() {}\n\n  x := `&lt;b&gt;`</code></pre><p>after</p>"},
	{"fence without language", "```\n*a*\n```", `<pre><code>*a*</code></pre>`},
	{"unclosed fence runs to the end", "text\n```py\nprint(1)\n\nmore", "<p>text</p><pre><code data-lang=\"py\">print(1)\n\nmore</code></pre>"},
	{"hostile fence language", "```\"><img src=x onerror=alert(1)>\nx\n```", `<pre><code data-lang="img">x</code></pre>`},
	{"bullet list", "- a\n- **b**\n* c", `<ul><li>a</li><li><strong>b</strong></li><li>c</li></ul>`},
	{"numbered list", "1. one\n2. two\n\n3. three", `<ol><li>one</li><li>two</li></ol><ol start="3"><li>three</li></ol>`},
	{"nested list", "- a\n  - b\n    1. c\n- d", `<ul><li>a<ul><li>b<ol><li>c</li></ol></li></ul></li><li>d</li></ul>`},
	{"list item continuation", "- a\n  more\n- b", `<ul><li>a<br>more</li><li>b</li></ul>`},
	{"quote", "> quoted **b**\n> more\n\nafter", `<blockquote><p>quoted <strong>b</strong><br>more</p></blockquote><p>after</p>`},
	{"nested quote", "> a\n> > b", `<blockquote><p>a</p><blockquote><p>b</p></blockquote></blockquote>`},
	{"headings and rule", "# One ##\n### Three\n---\nx", `<h1>One</h1><h3>Three</h3><hr><p>x</p>`},
	{"link", "[the site](https://example.com/a?b=1&c=2)", `<p><a href="https://example.com/a?b=1&c=2" ` + a + `>the site</a></p>`},
	{"link label markup", "[**bold** https://x.org](http://e.com)", `<p><a href="http://e.com/" ` + a + `><strong>bold</strong> https://x.org</a></p>`},
	{"mailto link", "[mail](mailto:ada@example.com)", `<p><a href="mailto:ada@example.com" ` + a + `>mail</a></p>`},
	{"bare url", "see https://example.com/x, and (http://e.org/y).", `<p>see <a href="https://example.com/x" ` + a + `>https://example.com/x</a>, and (<a href="http://e.org/y" ` + a + `>http://e.org/y</a>).</p>`},
	{"bare url with parentheses", "(see https://en.wikipedia.org/wiki/Go_(game)).", `<p>(see <a href="https://en.wikipedia.org/wiki/Go_(game)" ` + a + `>https://en.wikipedia.org/wiki/Go_(game)</a>).</p>`},
	{"javascript link", "[x](javascript:alert(1))", `<p>[x](javascript:alert(1))</p>`},
	{"mixed-case javascript link", "[x](JaVaScRiPt:alert(1))", `<p>[x](JaVaScRiPt:alert(1))</p>`},
	{"data and vbscript links", "[d](data:text/html,<b>) [v](vbscript:msgbox)", `<p>[d](data:text/html,&lt;b&gt;) [v](vbscript:msgbox)</p>`},
	{"relative link is text", "[r](/etc/passwd)", `<p>[r](/etc/passwd)</p>`},
	{"script tag is text", "<script>alert(1)</script>", `<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>`},
	{"img onerror is text", `<img src=x onerror="alert(1)">`, `<p>&lt;img src=x onerror="alert(1)"&gt;</p>`},
	{"html in text", "a <b>b</b> &amp; <a href=javascript:x>c</a>", `<p>a &lt;b&gt;b&lt;/b&gt; &amp;amp; &lt;a href=javascript:x&gt;c&lt;/a&gt;</p>`},
	{"escapes", `\*not em\* and \[x\](y)`, `<p>*not em* and [x](y)</p>`},
	{"empty", "", ``},
	{"100 KB of stars", strings.Repeat("*", 100000), `<hr>`},
	{"100 KB of stars after text", "x" + strings.Repeat("*", 100000), `<p>x` + strings.Repeat("*", 100000) + `</p>`},
	{"100 KB of backticks", "x" + strings.Repeat("`", 100000), `<p>x` + strings.Repeat("`", 100000) + `</p>`},
	{"many code spans", strings.Repeat("`a", 50000), `<p>` + strings.Repeat("<code>a</code>a", 25000) + `</p>`},
	{"emphasis around many nodes", "*" + strings.Repeat("`a`b", 100000) + "*", `<p><em>` + strings.Repeat("<code>a</code>b", 100000) + `</em></p>`},
	{"nested list after a deeper one", "- a\n  - b\n  1. c", `<ul><li>a<ul><li>b</li></ul><ol><li>c</li></ol></li></ul>`},
	{"many openers", strings.Repeat("*a ", 33000), `<p>` + strings.TrimSuffix(strings.Repeat("*a ", 33000), " ") + `</p>`},
	{"many underscores", strings.Repeat("_a ", 33000), `<p>` + strings.TrimSuffix(strings.Repeat("_a ", 33000), " ") + `</p>`},
	{"many brackets", strings.Repeat("[", 100000), `<p>` + strings.Repeat("[", 100000) + `</p>`},
	{"many unfinished links", strings.Repeat("[a](b", 20000), `<p>` + strings.Repeat("[a](b", 20000) + `</p>`},
	{"deep quotes", strings.Repeat("> ", 50000) + "x", strings.Repeat("<blockquote>", 8) + `<p>` + strings.Repeat("&gt; ", 49992) + `x</p>` + strings.Repeat("</blockquote>", 8)},
}

// TestWebChatMarkdownRenderer runs the page's Markdown renderer (static/markdown.js) in
// Chromium over a table of inputs, hostile ones included, and compares the DOM it builds.
// The 100 KB inputs finishing at all (within the test's polling timeout) is the check that
// the renderer stays linear.
func TestWebChatMarkdownRenderer(t *testing.T) {
	exe := needChrome(t)
	t.Setenv("HOME", t.TempDir())
	// The page is static: no gateway is needed to load the renderer.
	dead := closedURL(t)
	page := startWebChat(t, dead)
	bctx := browser(t, exe)
	if err := chromedp.Do(bctx, chromedp.Navigate(page)); err != nil {
		t.Fatal(err)
	}
	must(t, bctx, chromedp.Evaluate[chromedp.Void](serializeJS))
	inputs := make([]string, len(markdownCases))
	for i, c := range markdownCases {
		inputs[i] = c.in
	}
	in, _ := json.Marshal(inputs)
	got := must(t, bctx, chromedp.Evaluate[[]string](`import('/markdown.js').then(({ renderMarkdown }) =>
		`+string(in)+`.map((s) => { const f = renderMarkdown(s); f.normalize(); return window.__ser(f); }))`, chromedp.EvalAwaitPromise))
	if len(got) != len(markdownCases) {
		t.Fatalf("%d results for %d cases", len(got), len(markdownCases))
	}
	for i, c := range markdownCases {
		if got[i] != c.want {
			t.Errorf("%s:\n in   %.200q\n got  %.300q\n want %.300q", c.name, c.in, got[i], c.want)
		}
	}
	// The DOM never holds a script, an image or an event handler attribute, whatever the input.
	bad := must(t, bctx, chromedp.Evaluate[int](`import('/markdown.js').then(({ renderMarkdown }) => {
		const box = document.createElement('div');
		for (const s of `+string(in)+`) box.append(renderMarkdown(s));
		return [...box.querySelectorAll('*')].filter((e) => ['script', 'img', 'iframe', 'style'].includes(e.localName)
			|| [...e.attributes].some((a) => a.name.startsWith('on') || (a.name === 'href' && !/^(https?|mailto):/.test(a.value)))).length;
	})`, chromedp.EvalAwaitPromise))
	if bad != 0 {
		t.Errorf("%d rendered elements are scripts, images or carry handlers or unsafe links", bad)
	}
	// Emphasis nested thousands deep ("*a **a *a … a** a*") stays a shallow tree.
	depth := must(t, bctx, chromedp.Evaluate[int](`import('/markdown.js').then(({ renderMarkdown }) => {
		const n = 8000;
		let s = '';
		for (let i = 0; i < n; i++) s += (i % 2 ? '**' : '*') + 'a ';
		for (let i = n - 1; i >= 0; i--) s += 'a' + (i % 2 ? '**' : '*') + ' ';
		const deepest = (e) => { let d = 0; for (const c of e.children) d = Math.max(d, deepest(c)); return d + 1; };
		const box = document.createElement('div');
		box.append(renderMarkdown(s));
		return deepest(box);
	})`, chromedp.EvalAwaitPromise))
	if depth > 20 {
		t.Errorf("nested emphasis built a tree %d elements deep", depth)
	}
	t.Logf("nested emphasis: %d levels", depth)
}
