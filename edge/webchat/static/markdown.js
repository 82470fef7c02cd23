// A small Markdown renderer for model replies. It builds DOM nodes directly (text always
// goes in through text nodes, never through HTML parsing), so whatever the model writes,
// nothing it writes can become markup, script or an attribute other than a checked href.
//
// Supported: paragraphs (single newlines become <br>), # headings, **bold**, *emphasis*
// (and _ at word boundaries), `inline code`, ``` fenced code blocks (optional language;
// an unclosed fence runs to the end), - * + and 1. lists (nested by indentation), > quotes,
// --- rules, [text](url) links, bare http(s):// URLs and backslash escapes.
//
// Every step runs in linear time: blocks are one pass over the lines; inline code spans
// find their closing run through a per-length index that only moves forward; emphasis uses
// a stack whose entries are each pushed and popped once; a failed link destination scan is
// remembered so that later scans inside the same stretch fail at once.

const SAFE_SCHEMES = new Set(['http:', 'https:', 'mailto:']);
const MAX_QUOTE_DEPTH = 8; // deeper ">" nesting is shown as text (keeps recursion shallow)
const MAX_LIST_DEPTH = 8;
const MAX_EMPHASIS_DEPTH = 16; // more open delimiters stay text (no DOM thousands deep)

// safeHref returns the normalised URL when raw is an absolute http, https or mailto URL,
// else null (javascript:, data:, vbscript:, relative URLs, garbage).
export function safeHref(raw) {
  let u;
  try { u = new URL(raw); } catch { return null; }
  return SAFE_SCHEMES.has(u.protocol) ? u.href : null;
}

function h(tag, ...children) {
  return appendAll(document.createElement(tag), children);
}

// appendAll appends nodes one by one: spreading a long array into append() would overflow
// the call stack (an emphasis around 100,000 code spans).
function appendAll(parent, nodes) {
  for (const n of nodes) parent.append(n);
  return parent;
}

function link(href, children) {
  const a = document.createElement('a');
  a.href = href;
  a.target = '_blank';
  a.rel = 'noopener noreferrer';
  return appendAll(a, children);
}

// renderMarkdown returns a DocumentFragment for src.
export function renderMarkdown(src) {
  const frag = document.createDocumentFragment();
  const lines = String(src ?? '').replace(/\r\n?/g, '\n').split('\n');
  renderBlocks(lines, frag, 0);
  return frag;
}

// ---- blocks ----

// isRule: three or more of one of - * _ and nothing else but spaces (--- *** ___).
function isRule(line) {
  if (/^ {4}/.test(line)) return false;
  const t = line.replace(/[ \t]/g, '');
  return t.length >= 3 && (/^-+$/.test(t) || /^\*+$/.test(t) || /^_+$/.test(t));
}

// headingText drops a closing run of # (as in "## Title ##") without a backtracking regex.
function headingText(t) {
  t = t.trim();
  let j = t.length;
  while (j > 0 && t[j - 1] === '#') j--;
  if (j < t.length && (j === 0 || t[j - 1] === ' ' || t[j - 1] === '\t')) t = t.slice(0, j).trim();
  return t;
}

const fenceRe = /^ {0,3}(`{3,}|~{3,})\s*([^`\s]*)/;
const headingRe = /^ {0,3}(#{1,6})(?:\s+|$)(.*)$/;
const quoteRe = /^ {0,3}> ?/;
const itemRe = /^(\s*)(?:([-*+])|(\d{1,9})[.)])(?:[ \t]+|$)/;

function renderBlocks(lines, parent, depth) {
  let para = null; // lines of the open paragraph
  const flush = () => {
    if (para) parent.append(paragraph(para));
    para = null;
  };
  for (let i = 0; i < lines.length;) {
    const line = lines[i];
    let m;
    if ((m = fenceRe.exec(line))) {
      flush();
      i = codeBlock(lines, i, m, parent);
    } else if (!line.trim()) {
      flush();
      i++;
    } else if (isRule(line)) {
      flush();
      parent.append(document.createElement('hr'));
      i++;
    } else if ((m = headingRe.exec(line))) {
      flush();
      const hd = document.createElement('h' + m[1].length);
      inline(headingText(m[2]), hd);
      parent.append(hd);
      i++;
    } else if (quoteRe.test(line) && depth < MAX_QUOTE_DEPTH) {
      flush();
      const inner = [];
      while (i < lines.length && quoteRe.test(lines[i])) inner.push(lines[i++].replace(quoteRe, ''));
      const q = document.createElement('blockquote');
      renderBlocks(inner, q, depth + 1);
      parent.append(q);
    } else if (itemRe.test(line) && (!para || !/^\s/.test(line))) {
      flush();
      i = list(lines, i, parent);
    } else {
      (para ||= []).push(line);
      i++;
    }
  }
  flush();
}

function paragraph(lines) {
  const p = document.createElement('p');
  inline(lines.map((l) => l.trim()).join('\n'), p);
  return p;
}

// codeBlock renders the fence opened at lines[i] and returns the index after it.
function codeBlock(lines, i, m, parent) {
  const fence = m[1];
  const closeRe = new RegExp('^ {0,3}' + (fence[0] === '`' ? '`' : '~') + '{' + fence.length + ',}\\s*$');
  const body = [];
  let j = i + 1;
  for (; j < lines.length && !closeRe.test(lines[j]); j++) body.push(lines[j]);
  const code = h('code', body.join('\n'));
  const lang = m[2].replace(/[^\w+#.-]/g, '').slice(0, 32);
  if (lang) code.dataset.lang = lang;
  parent.append(h('pre', code));
  return j < lines.length ? j + 1 : j;
}

// list renders consecutive list items from lines[i], nesting by indentation; it returns the
// index after the list. Item text is inline content; a non-item line that is indented (or
// follows directly) continues the previous item.
function list(lines, i, parent) {
  const stack = []; // {el, indent, ordered, li: its last item, where a deeper list nests}
  let li = null;
  for (; i < lines.length; i++) {
    const line = lines[i];
    if (fenceRe.test(line) || isRule(line)) break;
    const m = itemRe.exec(line);
    if (!m) {
      if (!line.trim() || !li) break;
      if (!/^\s/.test(line) && (quoteRe.test(line) || headingRe.test(line))) break;
      li.append(document.createElement('br'));
      inline(line.trim(), li);
      continue;
    }
    const indent = m[1].replace(/\t/g, '    ').length;
    const ordered = m[3] !== undefined;
    while (stack.length && (indent < stack[stack.length - 1].indent ||
      (indent === stack[stack.length - 1].indent && stack[stack.length - 1].ordered !== ordered))) stack.pop();
    const top = stack[stack.length - 1];
    if (!top || (indent > top.indent && stack.length < MAX_LIST_DEPTH)) {
      const el = document.createElement(ordered ? 'ol' : 'ul');
      if (ordered && m[3] !== '1') el.start = Number(m[3]);
      (top?.li || parent).append(el);
      stack.push({ el, indent, ordered, li: null });
    }
    li = document.createElement('li');
    inline(line.slice(m[0].length).trim(), li);
    const level = stack[stack.length - 1];
    level.el.append(li);
    level.li = li;
  }
  return i;
}

// ---- inline ----

const isSpace = (c) => c === undefined || c === ' ' || c === '\t' || c === '\n';
const isWord = (c) => c !== undefined && /[\p{L}\p{N}]/u.test(c);
const ESCAPABLE = '\\`*_{}[]()#+-.!>~|<"\'';

// backtickRuns indexes the starts of backtick runs by run length, for code spans.
function backtickRuns(s) {
  const runs = new Map(); // length -> {pos: [start…], next: index of the first unused}
  for (let i = 0; i < s.length;) {
    if (s[i] !== '`') { i++; continue; }
    let j = i;
    while (s[j] === '`') j++;
    const n = j - i;
    if (!runs.has(n)) runs.set(n, { pos: [], next: 0 });
    runs.get(n).pos.push(i);
    i = j;
  }
  return runs;
}

// inline appends the inline content of s to parent; newlines become <br>. Inside a link
// label (inLink) bare URLs stay text, so links never nest.
function inline(s, parent, inLink = false) {
  const out = []; // nodes, in order; open emphasis delimiters are Text nodes in here
  const frames = []; // open delimiters: {key, idx (position in out), text}
  const byKey = new Map(); // key -> stack of frame indices, so a closer finds its opener at once
  const runs = backtickRuns(s);
  let text = '';
  let urlFailEnd = -1; // a link destination scan that starts before this fails
  const flush = () => { if (text) { out.push(document.createTextNode(text)); text = ''; } };

  const open = (key, delim) => {
    flush();
    out.push(document.createTextNode(delim));
    frames.push({ key, idx: out.length - 1 });
    if (!byKey.has(key)) byKey.set(key, []);
    byKey.get(key).push(frames.length - 1);
  };
  // close wraps everything after the matching opener into an element; openers above it stay
  // as the literal text they already are.
  const close = (key) => {
    flush();
    const fi = byKey.get(key).pop();
    while (frames.length - 1 > fi) byKey.get(frames.pop().key).pop();
    const f = frames.pop();
    const kids = out.splice(f.idx);
    kids.shift(); // the opener's text node
    let el;
    if (key.endsWith('3')) el = h('em', appendAll(document.createElement('strong'), kids));
    else el = appendAll(document.createElement(key.endsWith('2') ? 'strong' : 'em'), kids);
    out.push(el);
  };

  for (let i = 0; i < s.length;) {
    const c = s[i];
    if (c === '\\' && i + 1 < s.length && ESCAPABLE.includes(s[i + 1])) {
      text += s[i + 1];
      i += 2;
    } else if (c === '`') {
      let j = i;
      while (s[j] === '`') j++;
      const n = j - i;
      const r = runs.get(n);
      while (r.next < r.pos.length && r.pos[r.next] <= i) r.next++;
      if (r.next < r.pos.length) {
        const end = r.pos[r.next];
        r.next++;
        let body = s.slice(j, end).replace(/\n/g, ' ');
        if (body.length > 2 && body[0] === ' ' && body[body.length - 1] === ' ' && body.trim()) body = body.slice(1, -1);
        flush();
        out.push(h('code', body));
        i = end + n;
      } else {
        text += s.slice(i, j);
        i = j;
      }
    } else if (c === '*' || c === '_') {
      let j = i;
      while (s[j] === c) j++;
      const n = j - i;
      const before = s[i - 1];
      const after = s[j];
      let canOpen = !isSpace(after);
      let canClose = !isSpace(before);
      if (c === '_') { // no intraword emphasis with _ (snake_case stays as it is)
        canOpen &&= !isWord(before);
        canClose &&= !isWord(after);
      }
      const key = c + n;
      if (n <= 3 && canClose && byKey.get(key)?.length) close(key);
      else if (n <= 3 && canOpen && frames.length < MAX_EMPHASIS_DEPTH) open(key, s.slice(i, j));
      else text += s.slice(i, j);
      i = j;
    } else if (c === '[') {
      const r = linkAt(s, i, urlFailEnd);
      urlFailEnd = r.failEnd;
      if (r.end) {
        flush();
        if (r.href) {
          const a = link(r.href, []);
          inline(r.label, a, true);
          out.push(a);
        } else {
          out.push(document.createTextNode(s.slice(i, r.end)));
        }
        i = r.end;
      } else {
        text += c;
        i++;
      }
    } else if (c === '\n') {
      flush();
      out.push(document.createElement('br'));
      i++;
    } else if (!inLink && (c === 'h' || c === 'H') && !isWord(s[i - 1]) && /^https?:\/\/[^\s<]/i.test(s.slice(i, i + 9))) {
      let j = i;
      let open = 0; // '(' minus ')' in the URL: a closing parenthesis of its own stays
      for (; j < s.length && !isSpace(s[j]) && s[j] !== '<'; j++) open += s[j] === '(' ? 1 : s[j] === ')' ? -1 : 0;
      while (j > i && '.,;:!?\'")*_'.includes(s[j - 1])) {
        if (s[j - 1] === ')') {
          if (open >= 0) break;
          open++;
        }
        j--;
      }
      const raw = s.slice(i, j);
      const href = safeHref(raw);
      flush();
      out.push(href ? link(href, [raw]) : document.createTextNode(raw));
      i = j;
    } else {
      text += c;
      i++;
    }
  }
  flush();
  appendAll(parent, out);
}

// linkAt parses [label](dest) at s[i] === '['. It returns {end, label, href} for a link
// (href null when the destination is not a safe URL: the caller shows the source as text),
// or {end: 0} when there is none; failEnd carries the remembered failed destination scan.
function linkAt(s, i, failEnd) {
  let j = i + 1;
  while (j < s.length && s[j] !== ']' && s[j] !== '[' && s[j] !== '\n') j++;
  if (s[j] !== ']' || s[j + 1] !== '(') return { end: 0, failEnd };
  const start = j + 2;
  if (start < failEnd) return { end: 0, failEnd };
  let k = start;
  while (k < s.length && s[k] !== ')' && !isSpace(s[k])) k++;
  if (s[k] !== ')') return { end: 0, failEnd: k };
  const label = s.slice(i + 1, j);
  return { end: k + 1, label, href: label ? safeHref(s.slice(start, k)) : null, failEnd };
}
