// The relay's inbox API: JSON in and out, the session cookie sent by the browser, the
// CSRF token (from the session JSON) on every POST. A refusal throws an ApiError with
// the relay's status, code, message and reason. Emits 'unauthorized' when a request
// answers 401 while signed in (the session was revoked or signed out elsewhere).

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
    if (!response.ok) {
      const error = new ApiError(response.status, data);
      if (response.status === 401 && this.csrf) {
        this.csrf = '';
        this.dispatchEvent(new CustomEvent('unauthorized', { detail: error }));
      }
      throw error;
    }
    return data;
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

  reply(thread, body, clientId) {
    return this.post(`/threads/${encodeURIComponent(thread)}/messages`, { body, client_id: clientId });
  }

  setStatus(thread, status) {
    return this.post(`/threads/${encodeURIComponent(thread)}/status`, { status });
  }

  markRead(thread, seq) {
    return this.post(`/threads/${encodeURIComponent(thread)}/read`, { seq });
  }
}
