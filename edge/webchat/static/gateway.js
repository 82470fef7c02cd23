// The page's side of the wire protocol (SPEC §5) over the same-origin relay at /ws:
// hello, requests with their responses, events with seq-gap detection, and automatic
// reconnect with backoff. The relay holds the gateway token for its own connection; when one
// is configured the page must present the same token in its hello (SPEC §10).

export class Gateway {
  #ws = null;
  #pending = new Map();
  #nextId = 0;
  #lastSeq = 0;
  #attempt = 0;
  #timer = 0;

  // handlers: onState(state, detail), onHello(helloOk), onEvent(frame), onGap().
  // state is one of "connecting", "connected", "offline" (the gateway behind the relay is
  // down), "disconnected" (the relay itself is unreachable) and "unauthorized" (the token
  // is missing or wrong: no retry until reconnect()). token() returns the token to send
  // ('' for none).
  constructor(url, handlers, token = () => '') {
    this.url = url;
    this.h = handlers;
    this.token = token;
    this.hello = null;
  }

  get connected() { return this.hello !== null; }

  start() { this.#connect(); }

  // reconnect drops the current connection, if any, and connects again at once (after a new
  // token was entered).
  reconnect() {
    const ws = this.#ws;
    this.#ws = null;
    if (ws) ws.close();
    this.hello = null;
    this.#failPending('not connected to the WebChat server');
    this.#attempt = 0;
    this.#connect();
  }

  #connect() {
    clearTimeout(this.#timer);
    this.h.onState('connecting');
    let refused = '';
    const ws = new WebSocket(this.url);
    this.#ws = ws;
    ws.onopen = () => {
      const hello = {
        type: 'hello', minProtocol: 1, maxProtocol: 1,
        client: { name: 'webchat-page', version: '1', platform: 'web', mode: 'webchat' },
        userAgent: navigator.userAgent,
      };
      const token = this.token();
      if (token) hello.auth = { token };
      ws.send(JSON.stringify(hello));
    };
    ws.onmessage = (m) => {
      let f;
      try { f = JSON.parse(m.data); } catch { return; }
      if (f.type === 'hello-error') refused = f.reason;
      else this.#frame(f);
    };
    ws.onclose = () => {
      if (this.#ws !== ws) return;
      this.hello = null;
      this.#failPending('not connected to the WebChat server');
      if (refused === 'unauthorized') {
        this.h.onState('unauthorized', refused);
        return;
      }
      const delay = Math.min(10000, 500 * 1.7 ** this.#attempt++) * (0.8 + Math.random() * 0.4);
      // The relay refuses with "gateway unavailable: <gateway URL and last error>".
      const offline = refused.startsWith('gateway unavailable');
      const retry = `retrying in ${Math.max(1, Math.round(delay / 1000))}s`;
      const why = offline ? refused.replace(/^gateway unavailable:? ?/, '') : refused;
      this.h.onState(offline ? 'offline' : 'disconnected', why ? `${why}; ${retry}` : retry);
      this.#timer = setTimeout(() => this.#connect(), delay);
    };
  }

  #frame(f) {
    switch (f.type) {
      case 'hello-ok':
        this.hello = f;
        this.#lastSeq = 0;
        this.#attempt = 0;
        this.h.onState('connected');
        this.h.onHello(f);
        break;
      case 'res': {
        const p = this.#pending.get(f.id);
        if (!p) return;
        this.#pending.delete(f.id);
        if (f.ok) p.resolve(f.payload);
        else p.reject(Object.assign(new Error(f.error?.message || 'request failed'), f.error || {}));
        break;
      }
      case 'event':
        if (typeof f.seq === 'number') {
          const gap = f.seq > this.#lastSeq + 1;
          this.#lastSeq = Math.max(this.#lastSeq, f.seq);
          if (gap) this.h.onGap();
        }
        this.h.onEvent(f);
        break;
    }
  }

  // request sends a req frame; it resolves with the payload or rejects with an Error that
  // carries the protocol error's code, message and retryable flag.
  request(method, params) {
    if (!this.connected) {
      return Promise.reject(Object.assign(new Error('not connected'), { code: 'UNAVAILABLE', retryable: true }));
    }
    const id = String(++this.#nextId);
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#ws.send(JSON.stringify({ type: 'req', id, method, params }));
    });
  }

  #failPending(message) {
    for (const p of this.#pending.values()) {
      p.reject(Object.assign(new Error(message), { code: 'UNAVAILABLE', retryable: true }));
    }
    this.#pending.clear();
  }
}
