// The WebChat page: transcript, sending with a streamed reply (and Stop), image attachments,
// session and thinking pickers, connection state, presence and provider health. Message
// bubbles are built in messages.js (replies as Markdown by markdown.js); the conversation
// list and WhatsApp linking live in panels.js.
import { Gateway } from './gateway.js';
import { bubble as makeBubble, el, note, setText, stamp, textOf } from './messages.js';
import { ago, initPanels, loadSessions, panelsHello, setLinked, whatsAppLinkOffered } from './panels.js';

const $ = (id) => document.getElementById(id);

let session = new URLSearchParams(location.search).get('session') || 'main';
let maxPayload = 524288;
let offline = false;
let historyGen = 0;
let historyShown = false; // the log shows a loaded history (so an empty log means "no messages")
let attachments = []; // {name, mimeType, data (base64), url}
const runs = new Map(); // runId -> {li, foreign}

// ---- the gateway token (SPEC §10) ----
// It comes in the URL fragment (#token=…, never sent to a server; removed from the address
// bar at once) or from the token form, and is kept in localStorage.

const TOKEN_KEY = 'clawdis.webchat.token';

function storedToken() {
  try { return localStorage.getItem(TOKEN_KEY) || ''; } catch { return ''; }
}

function storeToken(token) {
  try { localStorage.setItem(TOKEN_KEY, token); } catch { /* private mode: this page only */ }
  pageToken = token;
}

let pageToken = storedToken();

// tokenFromFragment takes #token=… out of the address; true when there was one.
function tokenFromFragment() {
  const params = new URLSearchParams(location.hash.slice(1));
  const token = params.get('token');
  if (token === null) return false;
  storeToken(token);
  params.delete('token');
  const rest = params.toString();
  history.replaceState(null, '', location.pathname + location.search + (rest ? '#' + rest : ''));
  return true;
}
tokenFromFragment();

const gw = new Gateway(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`, {
  onState(state, detail) {
    setConn(state, detail);
    $('token-form').hidden = state !== 'unauthorized';
    if (state === 'unauthorized') $('token-input').focus();
  },
  onHello(h) {
    maxPayload = h.policy.maxPayload;
    offline = false;
    renderPresence(h.snapshot.presence);
    renderHealth(h.snapshot.health);
    panelsHello();
    loadHistory();
  },
  onEvent,
  onGap: refresh,
}, () => pageToken);

$('token-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const token = $('token-input').value.trim();
  if (!token) return;
  $('token-input').value = '';
  storeToken(token);
  $('token-form').hidden = true;
  gw.reconnect();
});

window.addEventListener('hashchange', () => {
  if (tokenFromFragment()) gw.reconnect();
});

// setConn shows the connection state. Anything but "connected" means nothing the page
// knows about the gateway is current any more: every status turns unknown (no stale "ok"),
// and the detail line says what is tried and why it fails.
function setConn(state, detail) {
  const c = $('conn');
  c.dataset.state = state;
  c.lastElementChild.textContent = {
    connecting: 'connecting…', connected: 'connected',
    offline: 'gateway offline', disconnected: 'disconnected',
    unauthorized: 'token required',
  }[state];
  const cap = (s) => s.charAt(0).toUpperCase() + s.slice(1);
  const line = {
    offline: detail ? `${cap(detail)}.` : 'The gateway is not reachable; waiting for it to come back.',
    disconnected: `The WebChat server is not reachable${detail ? ` (${detail})` : ''}.`,
  }[state] || '';
  $('conn-detail').textContent = line;
  $('conn-detail').hidden = !line;
  c.title = line || c.lastElementChild.textContent;
  $('send').disabled = state !== 'connected';
  $('new-session').disabled = state !== 'connected';
  if (state !== 'connected') statusUnknown(state === 'offline');
  updateStop();
}

// statusUnknown replaces every status with "unknown" while the gateway is out of reach;
// the gateway itself is "unreachable" when the relay says so (else unknown as well: the
// page is connecting, or it lost the relay).
function statusUnknown(unreachable) {
  const rows = ['Gateway', 'WhatsApp', 'Telegram', 'Sessions', 'Services'];
  $('health').replaceChildren(...rows.flatMap((k) => {
    const dd = k === 'Gateway' && unreachable ? el('dd', 'bad', 'unreachable') : el('dd', 'unknown', 'unknown');
    dd.dataset.key = k.toLowerCase();
    return [el('dt', '', k), dd];
  }));
  const li = el('li', 'unknown', 'unknown while disconnected');
  $('presence').replaceChildren(li);
  setLinked(null); // nothing is offered on a state that is not known
  updateEmpty();
}

function onEvent(ev) {
  const p = ev.payload;
  switch (ev.event) {
    case 'presence': renderPresence(p.presence); back(); break;
    case 'health': renderHealth(p); back(); break;
    case 'tick': back(); break;
    case 'chat': onChat(p); break;
    case 'shutdown':
      offline = true;
      setConn('offline', `${p?.reason || 'shutdown'}; waiting for it to come back`);
      for (const [id, r] of runs) if (r.li.dataset.state !== 'done') finish(id, 'error', 'Connection to the gateway lost; the reply shows up here once it is back.');
      break;
  }
}

// back runs when an event shows the gateway is reachable again after a shutdown event.
function back() {
  if (!offline) return;
  offline = false;
  setConn('connected');
  loadHistory();
}

async function refresh() {
  try {
    renderHealth(await gw.request('health'));
    const p = await gw.request('system-presence');
    renderPresence(Array.isArray(p) ? p : p.presence);
  } catch { /* the next hello or event brings the state */ }
  loadHistory();
}

// ---- transcript ----

// bubble appends a message to the log, following it when the log was scrolled to the end.
function bubble(msg, state) {
  const li = makeBubble(msg, state);
  const log = $('log');
  const atEnd = log.scrollHeight - log.scrollTop - log.clientHeight < 80;
  log.append(li);
  if (atEnd || (msg.role === 'user' && !msg.channel)) log.scrollTop = log.scrollHeight;
  updateEmpty();
  return li;
}

// has reports whether the gateway offers a method (hello-ok features.methods): controls for
// a method show only then, which is also the honest behaviour against an older gateway.
const has = (m) => !!gw.hello?.features?.methods?.includes(m);

// updateEmpty shows the hint of what to do in a conversation without messages.
function updateEmpty() {
  $('empty').hidden = !historyShown || $('log').children.length > 0;
  $('empty-wa').hidden = !whatsAppLinkOffered();
}

// updateStop shows Stop while a reply of this conversation is under way and the gateway
// offers chat.abort.
function updateStop() {
  const busy = [...runs.values()].some((r) => ['pending', 'streaming'].includes(r.li.dataset.state));
  $('stop').hidden = !(busy && gw.connected && has('chat.abort'));
}

// stop aborts the runs under way; each one's chat event (state "aborted") then marks its
// bubble "stopped", its partial text kept.
async function stop() {
  $('stop').disabled = true;
  try {
    for (const runId of [...runs.keys()]) await gw.request('chat.abort', { sessionKey: session, runId });
  } catch (e) {
    showError(`Could not stop the reply: ${e.message}`);
  } finally {
    $('stop').disabled = false;
  }
}

async function loadHistory() {
  const gen = ++historyGen;
  try {
    const h = await gw.request('chat.history', { sessionKey: session, limit: 200 });
    if (gen !== historyGen) return;
    runs.clear(); // history is the truth; runs still going re-attach on their next event
    $('log').replaceChildren();
    historyShown = true;
    for (const m of h.messages) bubble(m);
    updateEmpty();
    updateStop();
    if ([...$('thinking').options].some((o) => o.value === h.thinkingLevel)) $('thinking').value = h.thinkingLevel;
  } catch (e) {
    if (gen === historyGen) showError(`Could not load the history: ${e.message}`);
  }
}

function onChat(p) {
  if (p.state !== 'delta') loadSessions(); // a finished turn changes the list's preview and time
  if (p.sessionKey !== session) return;
  let r = runs.get(p.runId);
  if (!r) { // a run started elsewhere (another tab, or before a reload)
    if (p.state !== 'delta') { loadHistory(); return; }
    r = { li: bubble({ role: 'assistant', content: [], timestamp: p.message?.timestamp }, 'pending'), foreign: true };
    runs.set(p.runId, r);
  }
  const text = textOf(p.message);
  if (p.state === 'delta') {
    setText(r.li, text);
    r.li.dataset.state = 'streaming';
    if (p.message?.timestamp) stamp(r.li, p.message.timestamp);
    updateStop();
  } else if (p.state === 'final') {
    finish(p.runId, 'done', '', text);
    if (r.foreign) loadHistory();
  } else if (p.state === 'aborted') {
    finish(p.runId, 'aborted', 'stopped', text);
  } else {
    finish(p.runId, 'error', `The agent failed: ${p.errorMessage || 'no reason given'}`, text);
  }
}

// finish ends a run's bubble in state "done", "aborted" or "error". A final text replaces
// what streamed; without one the partial reply stays, and why (a stop or a failure) is
// shown under it.
function finish(runId, state, why, text) {
  const r = runs.get(runId);
  if (!r) return;
  runs.delete(runId);
  r.li.dataset.state = state;
  if (text) setText(r.li, text);
  if (state === 'error') r.li.classList.add('error');
  if (why) note(r.li, state === 'aborted' ? 'stopped' : 'error', why);
  $('log').scrollTop = $('log').scrollHeight;
  updateStop();
}

// ---- sending ----

function newKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  return [...crypto.getRandomValues(new Uint8Array(16))].map((b) => b.toString(16).padStart(2, '0')).join('');
}

async function send() {
  const text = $('input').value.trim();
  if ((!text && !attachments.length) || !gw.connected) return;
  const params = {
    sessionKey: session, message: text, thinking: $('thinking').value, idempotencyKey: newKey(),
    attachments: attachments.map((a) => ({ type: 'image', mimeType: a.mimeType, fileName: a.name, content: a.data })),
  };
  const size = JSON.stringify(params).length + 200;
  if (size > maxPayload) {
    showError(`Too large to send: ${Math.round(size / 1024)} KiB, the limit is ${Math.round(maxPayload / 1024)} KiB. Remove an image.`);
    return;
  }
  showError('');
  bubble({ role: 'user', content: [{ type: 'text', text }, ...attachments.map((a) => ({ type: 'image', url: a.url }))], timestamp: Date.now() });
  runs.set(params.idempotencyKey, { li: bubble({ role: 'assistant', content: [], timestamp: Date.now() }, 'pending') });
  updateStop();
  $('input').value = '';
  attachments = [];
  renderAttachments();
  try {
    await gw.request('chat.send', params);
  } catch (e) {
    finish(params.idempotencyKey, 'error', `Not sent: ${e.message}${e.retryable ? ' (try again)' : ''}`);
  }
}

// ---- attachments ----

async function addFiles(files) {
  for (const f of files) {
    if (!f.type.startsWith('image/')) { showError(`${f.name}: only images can be attached`); continue; }
    try {
      let url = await readURL(f);
      if (url.length > maxPayload * 0.6) url = await shrink(f);
      attachments.push({ name: f.name || 'pasted.png', mimeType: url.slice(5, url.indexOf(';')), data: url.slice(url.indexOf(',') + 1), url });
    } catch (e) {
      showError(`${f.name}: ${e.message}`);
    }
  }
  renderAttachments();
}

function readURL(f) {
  return new Promise((resolve, reject) => {
    const r = new FileReader();
    r.onload = () => resolve(r.result);
    r.onerror = () => reject(new Error('could not read the file'));
    r.readAsDataURL(f);
  });
}

// shrink re-encodes a large image as JPEG, smaller each round, until it fits in a frame.
async function shrink(f) {
  const img = await createImageBitmap(f);
  let scale = Math.min(1, 1600 / Math.max(img.width, img.height));
  for (let i = 0; i < 8; i++, scale *= 0.7) {
    const c = el('canvas');
    c.width = Math.max(1, Math.round(img.width * scale));
    c.height = Math.max(1, Math.round(img.height * scale));
    c.getContext('2d').drawImage(img, 0, 0, c.width, c.height);
    const url = c.toDataURL('image/jpeg', 0.85);
    if (url.length <= maxPayload * 0.6) return url;
  }
  throw new Error('image too large');
}

function renderAttachments() {
  const box = $('attachments');
  box.replaceChildren(...attachments.map((a, i) => {
    const fig = el('figure');
    const img = el('img');
    img.src = a.url;
    img.alt = a.name;
    const x = el('button', '', '×');
    x.type = 'button';
    x.title = `Remove ${a.name}`;
    x.onclick = () => { attachments.splice(i, 1); renderAttachments(); };
    fig.append(img, x);
    return fig;
  }));
}

// ---- sidebar ----

function renderPresence(list) {
  $('presence').replaceChildren(...(list || []).map((p) => {
    const li = el('li');
    li.dataset.mode = p.mode || '';
    li.append(el('b', '', p.host || p.instanceId || p.text || '?'),
      el('small', '', [p.mode, p.ip, p.version && `v${p.version}`, p.reason, ago(p.ts)].filter(Boolean).join(' · ')));
    return li;
  }));
}

function renderHealth(h) {
  if (!h) return;
  setLinked(h.web);
  updateEmpty();
  const tg = h.telegram.probe?.bot ? `${h.telegram.state} (@${h.telegram.probe.bot.username})` : h.telegram.state;
  const off = (st) => ['disabled', 'unconfigured'].includes(st) ? 'off' : 'bad';
  const rows = [
    ['Gateway', h.ok ? 'ok' : 'degraded', h.ok ? 'good' : 'bad'],
    ['WhatsApp', h.web.state + (h.web.lastError ? ` – ${h.web.lastError}` : ''), h.web.connected ? 'good' : off(h.web.state)],
    ['Telegram', tg, ['polling', 'webhook'].includes(h.telegram.state) ? 'good' : off(h.telegram.state)],
    ['Sessions', String(h.sessions.count), ''],
    ['Services', h.services.length ? h.services.map((s) => `${s.name} ${s.ok ? '✓' : '✗'}`) : '–', h.services.every((s) => s.ok) ? 'good' : 'bad'],
  ];
  $('health').replaceChildren(...rows.flatMap(([k, v, cls]) => {
    // A list (the services) wraps between its items only.
    const dd = Array.isArray(v) ? el('dd', cls) : el('dd', cls, v);
    if (Array.isArray(v)) dd.append(...v.flatMap((x, i) => (i ? [', ', el('span', 'item', x)] : [el('span', 'item', x)])));
    dd.dataset.key = k.toLowerCase();
    return [el('dt', '', k), dd];
  }));
  const keys = new Set([session, 'main', ...h.sessions.recent.map((r) => r.key)]);
  $('sessions').replaceChildren(...[...keys].map((k) => { const o = el('option'); o.value = k; return o; }));
}

function showError(msg) {
  $('error').textContent = msg;
  $('error').hidden = !msg;
}

// ---- wiring ----

// switchSession shows another conversation and keeps ?session= in the address in sync.
function switchSession(key) {
  session = key.trim() || 'main';
  $('session').value = session;
  const u = new URL(location.href);
  u.searchParams.set('session', session);
  history.replaceState(null, '', u);
  cleared(false);
  loadHistory();
  loadSessions();
}

// cleared empties the view: known is true for a new conversation (known to be empty),
// false while another conversation's history loads.
function cleared(known = true) {
  runs.clear();
  historyShown = known;
  $('log').replaceChildren();
  updateEmpty();
  updateStop();
}

$('session').value = session;
$('session').addEventListener('change', () => switchSession($('session').value));
$('stop').addEventListener('click', stop);
$('composer').addEventListener('submit', (e) => { e.preventDefault(); send(); });
$('input').addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); send(); }
});
$('file').addEventListener('change', (e) => { addFiles([...e.target.files]); e.target.value = ''; });
document.addEventListener('paste', (e) => {
  const files = [...(e.clipboardData?.files || [])].filter((f) => f.type.startsWith('image/'));
  if (files.length) { e.preventDefault(); addFiles(files); }
});
window.addEventListener('dragover', (e) => { e.preventDefault(); $('drop').hidden = false; });
window.addEventListener('dragleave', (e) => { if (!e.relatedTarget) $('drop').hidden = true; });
window.addEventListener('drop', (e) => {
  e.preventDefault();
  $('drop').hidden = true;
  addFiles([...(e.dataTransfer?.files || [])]);
});

// ---- the drawer (phone width): a toggle, a close button, Esc and a click outside close it ----

const drawerOpen = () => document.body.classList.contains('side-open');
function setDrawer(open, focusToggle) {
  document.body.classList.toggle('side-open', open);
  $('side-toggle').setAttribute('aria-expanded', String(open));
  if (focusToggle) $('side-toggle').focus();
}
$('side-toggle').addEventListener('click', () => setDrawer(!drawerOpen()));
$('side-close').addEventListener('click', () => setDrawer(false, true));
document.addEventListener('keydown', (e) => {
  if (e.key === 'Escape' && drawerOpen()) setDrawer(false, true);
});
document.addEventListener('pointerdown', (e) => {
  if (drawerOpen() && !$('side').contains(e.target) && !$('side-toggle').contains(e.target)) setDrawer(false);
});
const header = document.querySelector('header');
new ResizeObserver(() => {
  document.documentElement.style.setProperty('--header-h', `${header.getBoundingClientRect().bottom}px`);
}).observe(header);
initPanels({
  gw, has, showError, cleared,
  current: () => session,
  switchTo: (key) => { setDrawer(false); if (key !== session) switchSession(key); },
  openDrawer: () => setDrawer(true),
});
setConn('connecting');
gw.start();
