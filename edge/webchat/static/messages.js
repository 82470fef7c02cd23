// Transcript bubbles: one <li> per message with its text (assistant replies as Markdown,
// everything else as plain text), images, who it came from when a provider brought it, a
// note when it was stopped or failed, and its time.
import { renderMarkdown } from './markdown.js';

export const el = (tag, cls, text) => {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
};

const CHANNELS = { whatsapp: 'WhatsApp', telegram: 'Telegram' };

// The autoreply envelope "[Telegram <from> <RFC 3339 time>] " that provider messages carry
// for the agent; it is dropped for display only (bounded, so no backtracking blow-up).
const envelopeRe = /^\[(?:Telegram|WhatsApp) [^\]\n]{0,300}\] ?/;

export function textOf(msg) {
  return (msg?.content || []).filter((c) => c.type === 'text').map((c) => c.text).join('');
}

// fromLabel is "Telegram · Ada" for a message that came from a provider, else ''.
export function fromLabel(msg) {
  if (!msg?.channel) return '';
  const ch = CHANNELS[msg.channel] || msg.channel;
  return msg.sender ? `${ch} · ${msg.sender}` : ch;
}

// displayText is what a message shows: its text without a provider envelope.
export function displayText(msg) {
  const t = textOf(msg);
  return msg?.channel ? t.replace(envelopeRe, '') : t;
}

// setText shows text in the bubble: replies as Markdown (DOM nodes from markdown.js),
// the owner's and incoming messages as plain text.
export function setText(li, text) {
  const box = li.querySelector('.text');
  if (li.classList.contains('assistant')) box.replaceChildren(renderMarkdown(text));
  else box.textContent = text;
}

// stamp fills the bubble's time: a short local time (with the date when not today), the
// full date in the title.
export function stamp(li, ts) {
  const t = li.querySelector('time');
  const d = new Date(ts || Date.now());
  const today = d.toDateString() === new Date().toDateString();
  t.dateTime = d.toISOString();
  t.textContent = today
    ? d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })
    : d.toLocaleString([], { day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit' });
  t.title = d.toLocaleString([], { dateStyle: 'full', timeStyle: 'medium' });
}

// note puts a line under the text: kind "stopped" (an aborted reply) or "error" (why the
// run failed); the text above it stays.
export function note(li, kind, text) {
  let n = li.querySelector('.note');
  if (!n) {
    n = el('div', 'note');
    li.querySelector('.meta').before(n);
  }
  n.dataset.kind = kind;
  n.textContent = text;
}

// bubble builds the <li> of a transcript message (role, content, timestamp and the optional
// aborted, channel, sender); state is "done", "pending" or "streaming".
export function bubble(msg, state = 'done') {
  const incoming = msg.role === 'user' && !!msg.channel;
  const li = el('li', `msg ${msg.role}${incoming ? ' incoming' : ''}`);
  li.dataset.state = state;
  if (incoming) {
    li.dataset.channel = msg.channel;
    li.append(el('div', 'from', fromLabel(msg)));
  }
  li.append(el('div', 'text'));
  for (const c of msg.content || []) {
    if (c.type === 'image') {
      const img = el('img');
      img.alt = 'image';
      img.src = c.url || `data:${c.mimeType};base64,${c.data}`;
      li.append(img);
    }
  }
  const meta = el('div', 'meta');
  meta.append(el('time'));
  li.append(meta);
  setText(li, displayText(msg));
  stamp(li, msg.timestamp);
  if (msg.aborted) note(li, 'stopped', 'stopped');
  return li;
}
