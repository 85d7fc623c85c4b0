// The visitor's conversation: what is stored in this browser, the relay's HTTP API
// and its live socket. Messages are de-duplicated by seq; sends are idempotent by
// client_id, so a retry (after a drop, a reload, or from another tab) is never doubled.
// Emits: 'change' (messages or outbox changed), 'typing', 'read', 'status', 'token',
// 'presence' (detail: is an owner at the inbox now).
// A message may carry photos and files: uploads.js, loaded the first time one does,
// uploads them before the message goes.
// One send path: text goes over the live socket once it is ready (its ack carries the
// stored message, in place of the copy the visitor's other tabs get), else over HTTP;
// a conversation starts, and files go, over HTTP. A socket that closes before the ack
// leaves the message queued: it goes again, same client_id, and is stored once.

// ms: the first reconnect delay.
const BACKOFF_MIN = 500;
// ms: the longest, so a long outage is retried twice a minute.
const BACKOFF_MAX = 30000;
// ms: the relay ignores typing frames sent more often.
const TYPING_EVERY = 2000;
// History pages fetched at most per sync (50,000 messages).
const PAGE_MORE_LIMIT = 50;
// ms: no ack by then on an open socket (a connection that died without a word): it is
// closed and the message goes again. The relay acks within about 2 s even when slow.
const ACK_WITHIN = 10000;

export class Conversation extends EventTarget {
  #relay; #site; #storageKey;
  #socket = null;
  #attempt = 0;
  #reconnectTimer = 0;
  #flushing = false;
  // Until connect(): no socket, no sends.
  #stopped = true;
  #abort = null;
  #retryTimers = new Set();
  #typingAt = 0;
  #wantLive = false;
  #contact = null;
  #email = null;
  // {id, hash}: verified, no thread yet; sent with the first message, never stored.
  #identity = null;
  // A promise of the Uploads (uploads.js), once a message carries files.
  #uploads = null;
  // The send awaiting its answer on the socket: called with its ack or error frame, or
  // null when the socket closes first.
  #pending = null;

  constructor({ relay, site, language }) {
    super();
    this.#relay = relay;
    this.#site = site;
    // Sent with the first message: automatic replies use it.
    this.language = language;
    this.#storageKey = `porch:${site}`;
    // seq -> message.
    this.messages = new Map();
    this.lastSeq = 0;
    this.ownerReadSeq = 0;
    this.visitorReadSeq = 0;
    this.online = navigator.onLine;
    this.connected = false;
    const saved = this.#load();
    this.token = saved.token || null;
    // [{client_id, body, created_at, failed?, error?, files?: [{key, name, size, type, id?, error?}]}]
    this.outbox = saved.outbox || [];
    // File key -> its bytes, for this page view (uploads.js keeps them longer).
    this.blobs = new Map();
    // 'saved' | 'skipped' | 'confirmed': no email offer.
    this.#contact = saved.contact || null;
    // The address the visitor last gave us, to prefill.
    this.#email = saved.email || null;
  }

  // The <porch-chat> element is on the page. `again`: back after a disconnect, so catch
  // up on what another tab stored and on the messages missed meanwhile.
  connect(again) {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.#abort = new AbortController();
    const signal = this.#abort.signal;
    addEventListener('online', this.#onOnline, { signal });
    addEventListener('offline', this.#onOffline, { signal });
    addEventListener('storage', this.#onStorage, { signal });
    this.online = navigator.onLine;
    if (!again) return;
    this.#onStorage({ key: null });
    this.#catchUp();
  }

  // Off the page: no listener, timer or socket stays (what is stored stays stored).
  disconnect() {
    this.#stopped = true;
    this.#abort?.abort();
    clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = 0;
    for (const timer of this.#retryTimers) clearTimeout(timer);
    this.#retryTimers.clear();
    this.#dropSocket();
  }

  get hasThread() { return Boolean(this.token); }

  get contact() { return this.#contact; }

  set contact(state) {
    this.#contact = state;
    this.#save();
  }

  get email() { return this.#email; }

  // -- storage (one key; corrupt data is cleared, never trusted) ---------------------

  #load() {
    try {
      const value = JSON.parse(localStorage.getItem(this.#storageKey) || '{}');
      if (value && typeof value === 'object' && !Array.isArray(value)) {
        return {
          token: typeof value.token === 'string' ? value.token : null,
          outbox: Array.isArray(value.outbox) ? value.outbox.filter((m) => m && typeof m.body === 'string' && typeof m.client_id === 'string' && (!m.files || Array.isArray(m.files))) : [],
          contact: ['saved', 'skipped', 'confirmed'].includes(value.contact) ? value.contact : null,
          email: typeof value.email === 'string' ? value.email : null,
        };
      }
    } catch {
      console.warn('[porch] clearing unreadable stored conversation');
    }
    // Storage blocked: nothing to clear.
    try { localStorage.removeItem(this.#storageKey); } catch {}
    return {};
  }

  #save() {
    try {
      if (!this.token && !this.outbox.length) localStorage.removeItem(this.#storageKey);
      else localStorage.setItem(this.#storageKey, JSON.stringify({ token: this.token, outbox: this.outbox, contact: this.#contact, email: this.#email }));
    } catch {
      // Storage full or blocked: the conversation still works for this page view.
    }
  }

  // Another tab changed our key: adopt its token (none: it signed out or deleted) and outbox.
  #onStorage = (event) => {
    // A null key: the storage was cleared.
    if (event.key !== this.#storageKey && event.key !== null) return;
    const saved = this.#load();
    const changed = (saved.token || null) !== this.token;
    if (changed) this.#adopt(saved.token || null);
    this.outbox = saved.outbox || [];
    this.#contact = saved.contact || null;
    this.#email = saved.email || null;
    this.#emit('change');
    if (changed) {
      this.#emit('token');
      if (this.token) this.sync().then(() => this.#wantLive && this.live());
    }
  };

  // Another conversation from now on (a resume link, here or in another tab): drop
  // what this page holds of the previous one, and its socket.
  #adopt(token) {
    this.#dropSocket();
    this.token = token;
    this.messages.clear();
    this.lastSeq = this.ownerReadSeq = this.visitorReadSeq = 0;
  }

  // A resume link's token (no Authorization: it is its own proof) -> this browser
  // takes over the visitor and the thread; refused: an Error with .reason, nothing changed.
  async resume(token) {
    this.#take(await this.#post('/v1/resume', { token }, false));
  }

  #take(data) {
    this.#adopt(data.token);
    // The offer was answered (or not) by the previous visitor.
    this.#contact = null;
    if (data.thread) this.#thread(data.thread);
    this.#save();
    this.#emit('token');
    this.#emit('change');
  }

  // The site vouches for its logged-in user ({id, hash}; name, email): verified, this
  // browser takes over that user's conversation (the relay merges ours into it), or the
  // first message will start it. True when the token changed (sync and go live again).
  async identify({ id, hash, name, email }) {
    const data = await this.#post(`/v1/sites/${encodeURIComponent(this.#site)}/identify`, { id, hash, name, email });
    const verified = data.verified === true;
    this.#identity = verified && !data.token ? { id, hash } : null;
    if (!verified || !data.token || data.token === this.token) return false;
    this.#take(data);
    return true;
  }

  // Email the visitor a link that opens this conversation in another browser.
  async sendLink(email) {
    await this.#post('/v1/thread/resume-link', { email, page: location.href.slice(0, 2000) });
    this.#remember(email);
  }

  // A single-use code that binds the visitor's first message in a messaging app (the
  // site's channel `channel`) to this thread: {url, code, expires_at}.
  continueIn(channel) {
    return this.#post('/v1/thread/continue', { channel });
  }

  // -- history -----------------------------------------------------------------------

  // Offline (say, a page reloaded from a service worker's cache): the 'online' event syncs.
  async sync() {
    if (!this.token || !navigator.onLine) return;
    for (let page = 0; page < PAGE_MORE_LIMIT; page++) {
      const response = await this.#request('GET', `/v1/thread?since=${this.lastSeq}`);
      if (!response.ok) return this.#refused(response);
      const data = await response.json();
      this.#thread(data.thread);
      // An address the visitor confirmed (on any device): no need to offer to take one.
      if (data.email_confirmed && this.#contact !== 'confirmed') this.contact = 'confirmed';
      this.#merge(data.messages);
      if (!data.more) return;
    }
  }

  #thread(thread) {
    this.ownerReadSeq = Math.max(this.ownerReadSeq, thread.owner_read_seq);
    this.visitorReadSeq = Math.max(this.visitorReadSeq, thread.visitor_read_seq);
  }

  #merge(messages) {
    let added = false;
    for (const message of messages) {
      if (this.messages.has(message.seq)) continue;
      this.messages.set(message.seq, message);
      this.lastSeq = Math.max(this.lastSeq, message.seq);
      // Whoever writes has read everything before (the relay records it the same way).
      if (message.author === 'owner') this.ownerReadSeq = Math.max(this.ownerReadSeq, message.seq);
      if (message.author === 'visitor') this.visitorReadSeq = Math.max(this.visitorReadSeq, message.seq);
      added = true;
      this.dispatchEvent(new CustomEvent('message', { detail: message }));
    }
    if (added) {
      // A queued send may have been stored by another tab: drop it here too.
      const stored = new Set([...this.messages.values()].map((m) => m.client_id));
      const before = this.outbox.length;
      this.outbox = this.outbox.filter((m) => !stored.has(m.client_id));
      if (this.outbox.length !== before) this.#save();
      this.#emit('change');
    }
  }

  sorted() {
    return [...this.messages.values()].sort((a, b) => a.seq - b.seq);
  }

  // -- sending -----------------------------------------------------------------------

  // `files`: File objects; their bytes wait in `blobs`, and uploads.js keeps them longer.
  send(body, files = []) {
    const item = { client_id: crypto.randomUUID(), body, created_at: new Date().toISOString() };
    if (files.length) {
      item.files = files.map((file) => {
        const key = crypto.randomUUID();
        this.blobs.set(key, file);
        return { key, name: file.name, size: file.size, type: file.type };
      });
      this.uploads().then((uploads) => uploads.keep(item.files), () => {});
    }
    this.outbox.push(item);
    this.#changed();
    this.flush();
  }

  // Not loaded (offline on a first visit): tried again on the next call.
  uploads() {
    return this.#uploads ||= import('./uploads.js').then(({ Uploads }) => new Uploads({
      relay: this.#relay, site: this.#site, conversation: this, changed: () => this.#changed(),
    }), (error) => {
      this.#uploads = null;
      throw error;
    });
  }

  retry(clientId) {
    const item = this.outbox.find((m) => m.client_id === clientId);
    if (!item) return;
    delete item.failed;
    delete item.error;
    this.#changed();
    this.flush();
  }

  // Send queued messages one by one, in order; stop at the first that cannot go yet.
  async flush() {
    if (this.#flushing || this.#stopped) return;
    this.#flushing = true;
    try {
      while (this.online) {
        const item = this.outbox.find((m) => !m.failed);
        if (!item) break;
        const ok = await this.#deliver(item);
        if (!ok) break;
      }
    } finally {
      this.#flushing = false;
    }
  }

  async #deliver(item) {
    const start = !this.token;
    const identity = start && this.#identity;
    const files = item.files?.length;
    if (!start && !files && this.connected) return this.#deliverLive(item);
    let response;
    try {
      // A conversation starts with text: uploads.js puts it first in the outbox.
      if (start && files) return (await this.uploads()).start(item);
      response = start
        ? await this.#request('POST', `/v1/sites/${encodeURIComponent(this.#site)}/threads`,
          { body: item.body, client_id: item.client_id, page: location.href.slice(0, 2000), language: this.language, ...identity && { identity } })
        : files && await (await this.uploads()).send(item, this.token);
      // The visitor took its last file out.
      if (files && !this.outbox.includes(item)) return true;
      response ||= await this.#request('POST', '/v1/thread/messages',
        { body: item.body, client_id: item.client_id, attachments: item.files?.map((file) => file.id) });
    } catch {
      // The network is down: retry with backoff.
      this.#scheduleReconnect();
      return false;
    }
    // The relay's database restarts: retry, as if offline.
    if (response.status === 503) {
      this.#scheduleReconnect();
      return false;
    }
    if (response.status === 429) {
      const wait = Number(response.headers.get('retry-after')) || 5;
      this.#markFailed(item, 'rate_limited', wait);
      return false;
    }
    if (!response.ok) {
      const error = await response.json().catch(() => ({}));
      if (response.status === 401) return this.#refused(response);
      this.#markFailed(item, error.error || 'generic');
      // This one cannot go; the next may.
      return true;
    }
    const data = await response.json();
    const message = start ? data.message : data;
    if (start) {
      this.token = data.token;
      this.#thread(data.thread);
      this.#emit('token');
      // Bound to a known user: this may be their existing thread, history and all.
      if (identity) {
        this.#identity = null;
        await this.sync().catch(() => {});
      }
    }
    if (files) this.uploads().then((uploads) => uploads.forget(item.files.map((file) => file.key)), () => {});
    // Stored: merging it takes it out of the outbox (its client_id is now in the thread).
    this.#merge([message]);
    if (start && this.#wantLive) this.live();
    return true;
  }

  // Over the open socket: the ack is "stored", an error frame the refusal HTTP would
  // give (too fast is a close, 4429: the item then goes over HTTP, whose 429 says when
  // to try again). Closed before an answer: the item stays queued and the loop sends it
  // again, over HTTP now or the next socket, unless this conversation ended meanwhile.
  #deliverLive(item) {
    const socket = this.#socket;
    return new Promise((settle) => {
      const timer = setTimeout(() => socket.close(), ACK_WITHIN);
      this.#pending = (frame) => {
        if (frame && frame.client_id !== item.client_id) return;
        clearTimeout(timer);
        this.#pending = null;
        if (!frame) return settle(Boolean(this.token) && !this.#stopped);
        if (frame.type === 'ack') this.#merge([frame.message]);
        else this.#markFailed(item, frame.error || 'generic');
        settle(true);
      };
      socket.send(JSON.stringify({ type: 'send', body: item.body, client_id: item.client_id }));
    });
  }

  #markFailed(item, error, retryAfter = 0) {
    item.failed = true;
    item.error = error;
    this.#changed();
    if (!retryAfter) return;
    const timer = setTimeout(() => {
      this.#retryTimers.delete(timer);
      this.retry(item.client_id);
    }, retryAfter * 1000);
    this.#retryTimers.add(timer);
  }

  // -- read state, typing, contact -----------------------------------------------------

  async markRead() {
    if (!this.token || this.lastSeq <= this.visitorReadSeq) return;
    this.visitorReadSeq = this.lastSeq;
    this.#emit('read');
    // Failed: retried on the next read.
    try { await this.#request('POST', '/v1/thread/read', { seq: this.lastSeq }); } catch {}
  }

  typing() {
    const now = Date.now();
    if (now - this.#typingAt < TYPING_EVERY || !this.connected) return;
    this.#typingAt = now;
    this.#socket.send(JSON.stringify({ type: 'typing' }));
  }

  async saveContact(name, email) {
    await this.#post('/v1/thread/contact', { name: name || null, email });
    this.#remember(email);
  }

  #remember(email) {
    this.#email = email;
    this.#save();
  }

  // -- live socket ----------------------------------------------------------------------

  live() {
    this.#wantLive = true;
    if (this.#socket || !this.token || this.#stopped || !this.online) return;
    const url = `${this.#relay.replace(/^http/, 'ws')}/v1/live`;
    const socket = new WebSocket(url);
    this.#socket = socket;
    socket.onopen = () => socket.send(JSON.stringify({ type: 'hello', token: this.token, since: this.lastSeq }));
    socket.onmessage = (event) => this.#onFrame(JSON.parse(event.data));
    socket.onclose = (event) => {
      this.#socket = null;
      this.connected = false;
      this.#emit('status');
      // Its send goes again (once this handler is done: a promise's callbacks wait).
      this.#pending?.(null);
      if (event.code === 4401) return this.#forget();
      // Not allowed on this page: retrying will not help.
      if (event.code === 4403) return;
      this.#scheduleReconnect();
    };
  }

  #onFrame(frame) {
    if (frame.type === 'message') this.#merge([frame.message]);
    else if (frame.type === 'ack' || frame.type === 'error') this.#pending?.(frame);
    else if (frame.type === 'ready') {
      this.connected = true;
      this.#attempt = 0;
      this.#emit('status');
      if (typeof frame.online === 'boolean') this.dispatchEvent(new CustomEvent('presence', { detail: frame.online }));
      this.flush();
    } else if (frame.type === 'typing' && frame.author === 'owner') this.#emit('typing');
    else if (frame.type === 'presence') this.dispatchEvent(new CustomEvent('presence', { detail: frame.online === true }));
    else if (frame.type === 'read') {
      if (frame.author === 'owner') this.ownerReadSeq = Math.max(this.ownerReadSeq, frame.seq);
      else this.visitorReadSeq = Math.max(this.visitorReadSeq, frame.seq);
      this.#emit('read');
    }
  }

  #scheduleReconnect() {
    if (this.#stopped || this.#reconnectTimer || !this.online) return;
    // Exponential backoff with full jitter, so a relay restart is not stampeded.
    const ceiling = Math.min(BACKOFF_MAX, BACKOFF_MIN * 2 ** this.#attempt++);
    const delay = ceiling / 2 + Math.random() * ceiling / 2;
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = 0;
      this.#catchUp();
    }, delay);
  }

  #catchUp() {
    this.sync().catch(() => {}).finally(() => {
      if (this.#wantLive) this.live();
      this.flush();
    });
  }

  // Closed by us: no reconnect.
  #dropSocket() {
    const socket = this.#socket;
    if (!socket) return;
    socket.onopen = socket.onclose = socket.onmessage = null;
    socket.close();
    this.#socket = null;
    this.connected = false;
    this.#pending?.(null);
  }

  #onOnline = () => {
    this.online = true;
    this.#attempt = 0;
    clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = 0;
    this.#emit('status');
    this.#catchUp();
  };

  #onOffline = () => {
    this.online = false;
    this.#emit('status');
    this.#socket?.close();
  };

  // The token no longer opens a conversation (revoked, or the relay forgot it).
  #refused(response) {
    if (response.status === 401) this.#forget();
    return false;
  }

  // Nothing of this conversation stays on this device (`all`: not even unsent messages).
  #forget(all = false) {
    this.#adopt(null);
    this.#contact = this.#email = this.#identity = null;
    if (all) {
      this.outbox = [];
      this.blobs.clear();
      // No IndexedDB: nothing kept there.
      try { indexedDB.deleteDatabase(this.#storageKey); } catch {}
    }
    this.#save();
    this.#emit('token');
    this.#emit('change');
  }

  // -- the visitor's data --------------------------------------------------------------

  // everywhere: every token of this visitor stops. This device forgets either way
  // (here only: even if the relay could not be told).
  async signOut(everywhere) {
    const response = await this.#request('POST', '/v1/thread/sign-out', { everywhere }).catch(() => null);
    if (everywhere && !response?.ok && response?.status !== 401) throw new Error('sign-out failed');
    this.#forget(true);
  }

  // The relay deletes the visitor, thread and messages; then this device forgets.
  async erase() {
    const response = await this.#request('DELETE', '/v1/thread');
    if (!response.ok) {
      this.#refused(response);
      throw Object.assign(new Error('delete failed'), { status: response.status });
    }
    this.#forget(true);
  }

  // The whole conversation as the relay keeps it: format 'text' or 'json'.
  async export(format) {
    const response = await this.#request('GET', `/v1/thread/export${format === 'text' ? '?format=text' : ''}`);
    if (!response.ok) throw Object.assign(new Error('export failed'), { status: response.status });
    return response.blob();
  }

  // -- plumbing ------------------------------------------------------------------------

  // JSON in, JSON out; a refusal throws an Error with the relay's code, status and reason.
  async #post(path, body, auth) {
    const response = await this.#request('POST', path, body, auth);
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw Object.assign(new Error(data.error || 'generic'), { status: response.status, reason: data.reason });
    return data;
  }

  #request(method, path, body, auth = true) {
    const headers = {};
    if (this.token && auth) headers.authorization = `Bearer ${this.token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    return fetch(`${this.#relay}${path}`, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
      // Tokens travel in headers; no cookies, ever.
      credentials: 'omit',
    });
  }

  #emit(type) {
    this.dispatchEvent(new Event(type));
  }

  #changed() {
    this.#save();
    this.#emit('change');
  }
}
