// The relay's inbox API: JSON in and out (files go up as multipart), the session
// cookie sent by the browser, the CSRF token (from the session JSON) on every POST. A
// refusal throws an ApiError with the relay's status, code, message and reason. Emits
// 'unauthorized' when a request answers 401 while signed in (the session was revoked or
// signed out elsewhere).

const BASE = '/inbox/api';

export class ApiError extends Error {
  constructor(status, data = {}) {
    super(data.message || data.error || `the relay answered ${status}`);
    this.status = status; // 0: the network failed
    this.code = data.error || (status ? 'error' : 'network');
    this.reason = data.reason || null;
  }
}

export class Api extends EventTarget {
  csrf = '';

  async request(method, path, body) {
    const headers = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (method !== 'GET' && this.csrf) headers['x-csrf-token'] = this.csrf;
    let response;
    try {
      response = await fetch(BASE + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: 'same-origin',
        cache: 'no-store',
      });
    } catch {
      throw new ApiError(0, { message: 'network' });
    }
    if (response.status === 204) return null;
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw this.#refused(response.status, data);
    return data;
  }

  #refused(status, data) {
    const error = new ApiError(status, data);
    if (status === 401 && this.csrf) {
      this.csrf = '';
      this.dispatchEvent(new CustomEvent('unauthorized', { detail: error }));
    }
    return error;
  }

  get(path) {
    return this.request('GET', path);
  }

  post(path, body = {}) {
    return this.request('POST', path, body);
  }

  // -- signing in and out --------------------------------------------------------------

  async me() {
    const me = await this.get('/session');
    this.csrf = me.csrf;
    return me;
  }

  askLink(email, language) {
    return this.post('/login', { email, language });
  }

  async signIn(token) {
    const me = await this.post('/session', { token });
    this.csrf = me.csrf;
    return me;
  }

  async signOut(everywhere = false) {
    await this.post('/logout', { everywhere });
    this.csrf = '';
  }

  revoke(session) {
    return this.post(`/sessions/${encodeURIComponent(session)}/revoke`);
  }

  saveMe(changes) {
    return this.post('/me', changes);
  }

  saveSite(site, changes) {
    return this.post(`/sites/${encodeURIComponent(site)}/settings`, changes);
  }

  // -- the owner's devices that take pushes (push_devices.js) --------------------------

  // {key: the relay's VAPID public key, devices: [{id, label, created_at, this_session}]}
  pushDevices() {
    return this.get('/push');
  }

  // `subscription`: what PushSubscription.toJSON() gives → {id}.
  addPushDevice({ endpoint, keys }) {
    return this.post('/push', { endpoint, keys });
  }

  removePushDevice(id) {
    return this.post(`/push/${encodeURIComponent(id)}/remove`);
  }

  // -- messaging apps (a site's accounts, a closed reply window's template) ------------

  addChannel(site, kind, options, template = null) {
    return this.post(`/sites/${encodeURIComponent(site)}/channels`, { kind, options, template });
  }

  removeChannel(site, channel) {
    return this.post(`/sites/${encodeURIComponent(site)}/channels/${encodeURIComponent(channel)}/remove`);
  }

  sendTemplate(thread, channel) {
    return this.post(`/threads/${encodeURIComponent(thread)}/template`, { channel });
  }

  // -- automatic answers (answers.js) --------------------------------------------------

  answers(site) {
    return this.get(`/sites/${encodeURIComponent(site)}/answers`);
  }

  // `fields`: {question, answer, language, alternatives: [text, …]}.
  addAnswer(site, fields) {
    return this.post(`/sites/${encodeURIComponent(site)}/answers`, fields);
  }

  saveAnswer(site, id, fields) {
    return this.post(`/sites/${encodeURIComponent(site)}/answers/${encodeURIComponent(id)}`, fields);
  }

  removeAnswer(site, id) {
    return this.post(`/sites/${encodeURIComponent(site)}/answers/${encodeURIComponent(id)}/remove`);
  }

  // What the relay would send for `text` (nothing is sent): {answered, question, answer,
  // score, candidates, refused}.
  askAnswers(site, text, language) {
    return this.post(`/sites/${encodeURIComponent(site)}/answers/ask`, { text, language });
  }

  // -- threads -------------------------------------------------------------------------

  // `before`: the `next` of the previous answer, for the page after it.
  threads({ site, status, q }, before = null) {
    const query = new URLSearchParams({ status });
    if (site) query.set('site', site);
    if (q) query.set('q', q);
    if (before) query.set('before', before);
    return this.get(`/threads?${query}`);
  }

  thread(id, since = 0) {
    return this.get(`/threads/${encodeURIComponent(id)}?since=${since}`);
  }

  // `attachments`: the ids of files uploaded for this reply (the body may then be empty).
  reply(thread, body, clientId, attachments = []) {
    const sent = { body, client_id: clientId };
    if (attachments.length) sent.attachments = attachments;
    return this.post(`/threads/${encodeURIComponent(thread)}/messages`, sent);
  }

  // One file for a reply in `thread` (multipart, one part "file") → {id, name, type,
  // size, url}. By XMLHttpRequest: fetch cannot tell how much of a body has gone.
  // `onProgress(sent, total)`; `signal` cancels, rejecting with an AbortError.
  upload(thread, file, { onProgress, signal } = {}) {
    return new Promise((resolve, reject) => {
      const request = new XMLHttpRequest();
      request.open('POST', `${BASE}/threads/${encodeURIComponent(thread)}/attachments`);
      request.setRequestHeader('accept', 'application/json');
      if (this.csrf) request.setRequestHeader('x-csrf-token', this.csrf);
      request.upload.onprogress = (event) => onProgress?.(event.loaded, event.lengthComputable ? event.total : file.size);
      request.onload = () => {
        let data = {};
        try {
          data = JSON.parse(request.responseText);
        } catch {
          // not JSON (a proxy's error page): the status says enough
        }
        if (request.status === 201) resolve(data);
        else reject(this.#refused(request.status, data));
      };
      request.onerror = () => reject(new ApiError(0, { message: 'network' }));
      request.onabort = () => reject(new DOMException('the upload was cancelled', 'AbortError'));
      signal?.addEventListener('abort', () => request.abort(), { once: true });
      const form = new FormData();
      form.append('file', file, file.name);
      request.send(form);
    });
  }

  setStatus(thread, status) {
    return this.post(`/threads/${encodeURIComponent(thread)}/status`, { status });
  }

  markRead(thread, seq) {
    return this.post(`/threads/${encodeURIComponent(thread)}/read`, { seq });
  }
}
