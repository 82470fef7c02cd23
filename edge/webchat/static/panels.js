// The panels of the newer methods: the conversation list (sessions.list, sessions.reset)
// and WhatsApp linking (web.login.start / web.login.wait). Each control shows only when the
// gateway offers its methods (hello-ok features.methods).
import { el } from './messages.js';

const $ = (id) => document.getElementById(id);

// ago is a short relative time ("5s ago", "3m ago", "2h ago", "4d ago").
export function ago(ts) {
  const s = Math.max(0, Math.round((Date.now() - ts) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.round(s / 60)}m ago`;
  if (s < 86400) return `${Math.round(s / 3600)}h ago`;
  return `${Math.round(s / 86400)}d ago`;
}

// ctx: {gw, has(method), current() → session key, switchTo(key), cleared(), showError(msg)}
let ctx = null;
let listGen = 0;
let loginGen = 0;
let linkable = false; // health says WhatsApp runs and is not linked

export function initPanels(c) {
  ctx = c;
  $('new-session').addEventListener('click', newConversation);
  $('wa-link').addEventListener('click', linkWhatsApp);
  $('empty-wa-link').addEventListener('click', () => { c.openDrawer(); linkWhatsApp(); });
  $('wa-close').addEventListener('click', closeLogin);
}

// panelsHello shows the controls the gateway offers and loads the conversation list.
export function panelsHello() {
  $('sessions-panel').hidden = !ctx.has('sessions.list');
  $('new-session').hidden = !ctx.has('sessions.reset');
  updateLinkButton();
  loadSessions();
}

// ---- conversations ----

export async function loadSessions() {
  if (!ctx.has('sessions.list')) return;
  const gen = ++listGen;
  try {
    const r = await ctx.gw.request('sessions.list', { limit: 50 });
    if (gen === listGen) renderSessions(r.sessions || []);
  } catch (e) {
    if (gen === listGen) $('session-list').replaceChildren(el('li', 'unknown', `Could not list the conversations: ${e.message}`));
  }
}

function renderSessions(rows) {
  const cur = ctx.current();
  // The current conversation is listed even before its first message.
  if (!rows.some((r) => r.key === cur)) rows = [{ key: cur }, ...rows];
  $('session-list').replaceChildren(...rows.map((r) => {
    const b = el('button', 'session');
    b.type = 'button';
    b.dataset.key = r.key;
    if (r.key === cur) b.setAttribute('aria-current', 'true');
    const when = el('time', '', r.updatedAt ? ago(r.updatedAt) : 'new');
    if (r.updatedAt) {
      when.dateTime = new Date(r.updatedAt).toISOString();
      when.title = new Date(r.updatedAt).toLocaleString();
    }
    b.append(el('span', 'key', r.key), when,
      el('small', 'preview', r.lastMessagePreview || (r.updatedAt ? '' : 'no messages yet')));
    b.addEventListener('click', () => ctx.switchTo(r.key));
    const li = el('li');
    li.append(b);
    return li;
  }));
}

// newConversation starts a new conversation under the current key (the old transcript stays
// on the gateway's disk) and clears the view.
async function newConversation() {
  const btn = $('new-session');
  btn.disabled = true;
  try {
    await ctx.gw.request('sessions.reset', { sessionKey: ctx.current() });
    ctx.cleared();
    loadSessions();
  } catch (e) {
    ctx.showError(`Could not start a new conversation: ${e.message}`);
  } finally {
    btn.disabled = !ctx.gw.connected;
  }
}

// ---- WhatsApp linking ----

const canLink = () => ctx.has('web.login.start') && ctx.has('web.login.wait');

// setLinked takes health's web section: linking is offered while WhatsApp runs (not
// "disabled") without credentials; null while the state is unknown (not connected).
export function setLinked(web) {
  linkable = !!web && !web.linked && web.state !== 'disabled';
  updateLinkButton();
}

function updateLinkButton() {
  $('wa-link').hidden = !linkable || !canLink() || !$('wa-login').hidden;
}

export const whatsAppLinkOffered = () => linkable && !!ctx && canLink();

function waStatus(text, cls = '') {
  $('wa-status').textContent = text;
  $('wa-status').className = cls;
}

// setQR shows a QR image; only data: image URLs are taken (the page's CSP allows no others).
function setQR(url) {
  const img = $('wa-qr');
  const ok = typeof url === 'string' && /^data:image\/(?:png|jpeg|gif|webp);base64,/.test(url);
  img.hidden = !ok;
  if (ok) img.src = url;
  else img.removeAttribute('src');
}

// linkWhatsApp asks for a code, shows it, and waits: a rotated code replaces the image,
// a scan ends with "Linked as +…", an error is shown. Closing the panel abandons the loop.
async function linkWhatsApp() {
  const gen = ++loginGen;
  $('wa-login').hidden = false;
  updateLinkButton();
  setQR('');
  waStatus('Asking WhatsApp for a code…');
  try {
    const start = await ctx.gw.request('web.login.start', {});
    if (gen !== loginGen) return;
    setQR(start.qrDataUrl);
    waStatus('Scan the code with WhatsApp on your phone: Settings › Linked devices › Link a device.');
    for (;;) {
      const w = await ctx.gw.request('web.login.wait', { timeoutMs: 120000 });
      if (gen !== loginGen) return;
      if (w.linked) {
        setQR('');
        const who = w.phone ? (w.phone.startsWith('+') ? w.phone : `+${w.phone}`) : w.jid;
        waStatus(`Linked as ${who}`, 'good');
        return;
      }
      if (w.qrDataUrl) setQR(w.qrDataUrl);
    }
  } catch (e) {
    if (gen !== loginGen) return;
    setQR('');
    waStatus(`Linking failed: ${e.message}`, 'bad');
  }
}

function closeLogin() {
  loginGen++;
  $('wa-login').hidden = true;
  setQR('');
  updateLinkButton();
}
