// "Notify me here when they answer" (#18), a part of the chat that app.js loads once
// there is a conversation, in a browser that can take pushes. Offered beside the email
// offer when the site serves /porch-sw.js (one line importing the relay's porch-sw.js):
// a service worker must come from the page's own origin. The relay checks that file for
// the page (a site's CSP may let the widget reach only the relay, and a page asking for
// a file the site lacks logs a 404 on its console). Nothing is asked or stored
// before the visitor clicks; then the browser asks its permission, the worker registers
// at a scope of its own (/porch-push/: never the site's own worker's), the device
// subscribes with the relay's key, and the relay keeps it (POST /v1/thread/push).
// What the visitor chose is kept for this conversation only: a device passed to someone
// else (a sign-out, a resume link) stops taking its pushes, and is offered again.
import { Controller } from './controller.js';
import { el } from './view.js';

// Served by the relay: this module's origin is the relay's.
const RELAY = new URL(import.meta.url).origin;
// On the page's origin, whatever the page's <base>.
const WORKER = new URL('/porch-sw.js', location.origin).href;
const SCOPE = new URL('/porch-push/', location.origin).href;
const SUPPORTED = 'serviceWorker' in navigator && 'Notification' in window;
const CSS = `
.push { margin: 0 12px 8px; display: flex; flex-wrap: wrap; gap: 6px; justify-content: flex-end; }
.push[hidden] { display: none; }
.push button { height: 30px; font-size: 13px; }`;

// Whether the site serves the worker (as JavaScript: else it cannot register), asked
// of the relay once per page view.
let served = null;

export class Push extends Controller {
  #box; #on; #skip;
  #token = null; // the conversation the offer (or the subscription) is for
  #state = null; // what the visitor chose for it: 'on' | 'skipped' | null
  #language = '';

  constructor(chat) {
    super(chat);
    const { root, view } = chat;
    const sheet = new CSSStyleSheet();
    sheet.replaceSync(CSS);
    root.adoptedStyleSheets = [...root.adoptedStyleSheets, sheet];
    this.#on = el('button', { type: 'button', class: 'secondary' });
    this.#skip = el('button', { type: 'button', class: 'secondary' });
    this.#box = el('div', { class: 'push', role: 'group', hidden: '' }, this.#on, this.#skip);
    view.contact.after(this.#box);
  }

  connect() {
    super.connect();
    this.listen(this.#on, 'click', () => this.#subscribe());
    this.listen(this.#skip, 'click', () => this.#choose('skipped'));
    this.listen(this.chat.conversation, 'token', () => this.#check());
    this.listen(this.chat.element, 'porch-chat-open', () => this.#check(true));
    // Chosen in another tab.
    this.listen(window, 'storage', (event) => event.key === this.#key() && this.#check());
    this.listen(window, 'online', () => this.#check());
    this.#check();
  }

  // View.render calls it for each message: the texts follow the chat's language.
  draw() {
    const { conversation, t } = this.chat;
    if (this.#language === conversation.language) return;
    this.#language = conversation.language;
    this.#on.textContent = t('push.offer');
    this.#skip.textContent = t('contact.skip');
    this.#box.setAttribute('aria-label', t('push.offer'));
  }

  // Offered while the visitor has not chosen for this conversation, the browser has
  // not blocked notifications and the site serves the worker. Whether it does is asked
  // last, only as the panel shows (`opening`: it is about to): a visitor who does not
  // open the chat costs no request.
  async #check(opening = false) {
    const token = this.chat.conversation.token;
    if (token !== this.#token) {
      // The pushes were for the conversation this device no longer holds.
      if (this.#state === 'on') this.#unsubscribe();
      this.#token = token;
    }
    this.#state = this.#stored();
    // Taken back in the browser's settings: the device takes no pushes any more.
    if (this.#state === 'on' && (!SUPPORTED || Notification.permission !== 'granted')) this.#choose(null);
    const offer = Boolean(token) && !this.#state && SUPPORTED && Notification.permission !== 'denied' && this.#kept()
      && (opening || this.chat.isOpen) && navigator.onLine && await workerServed(this.chat.site.site);
    if (token !== this.chat.conversation.token) return; // changed meanwhile: checked again
    this.draw();
    this.#box.hidden = !offer;
  }

  // On the visitor's click: the browser's permission must be asked in it, first.
  async #subscribe() {
    const { view, t, conversation, site } = this.chat;
    // aria-disabled, not disabled: the button keeps the keyboard's focus.
    if (this.#on.getAttribute('aria-disabled')) return;
    this.#on.setAttribute('aria-disabled', 'true');
    let outcome = 'push.failed';
    try {
      const permission = await Notification.requestPermission();
      if (permission !== 'granted') {
        // Dismissed ('default'): offered still, said nothing.
        outcome = permission === 'denied' ? 'push.blocked' : '';
        return;
      }
      const registration = await active(await navigator.serviceWorker.register(WORKER, { scope: SCOPE }));
      const subscription = await registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: bytes(site.push_key) });
      const response = await fetch(`${RELAY}/v1/thread/push`, {
        method: 'POST',
        headers: { authorization: `Bearer ${conversation.token}`, 'content-type': 'application/json' },
        body: JSON.stringify(subscription.toJSON()),
        credentials: 'omit',
      });
      if (!response.ok) {
        // Refused (or this conversation is gone): nothing left subscribed on the device.
        await subscription.unsubscribe().catch(() => {});
        throw new Error(`the relay answered ${response.status}`);
      }
      this.#choose('on');
      outcome = 'push.on';
    } catch (error) {
      console.warn('[porch] notifications could not be turned on:', error.message);
    } finally {
      this.#on.removeAttribute('aria-disabled');
      await this.#check();
      if (this.#box.hidden) view.input.focus(); // the button it was on is gone
      view.showNotice(outcome && t(outcome));
    }
  }

  #choose(state) {
    this.#state = state;
    try {
      if (state) localStorage.setItem(this.#key(), JSON.stringify({ for: tail(this.#token), state }));
      else localStorage.removeItem(this.#key());
    } catch { /* storage blocked: asked again on the next page */ }
    this.#box.hidden = true;
    if (state === 'skipped') this.chat.view.input.focus();
  }

  #stored() {
    try {
      const saved = JSON.parse(localStorage.getItem(this.#key()) || 'null');
      if (saved && saved.for === tail(this.#token)) return saved.state;
    } catch { /* unreadable or blocked: nothing chosen */ }
    return null;
  }

  // Storage blocked: the conversation lasts this page view, and a tap on a
  // notification could not bring it back.
  #kept() {
    try { return localStorage.getItem(`porch:${this.chat.site.site}`) !== null; } catch { return false; }
  }

  #key() {
    return `porch:${this.chat.site.site}:push`;
  }

  // The browser forgets the subscription: its push service then tells the relay it is
  // gone (410), and the relay forgets it too.
  #unsubscribe() {
    this.#choose(null);
    navigator.serviceWorker.getRegistration(SCOPE)
      .then((registration) => registration?.pushManager.getSubscription())
      .then((subscription) => subscription?.unsubscribe())
      .catch(() => {});
  }
}

// The relay fetches the page origin's /porch-sw.js (GET /v1/sites/{site}/push-worker)
// and says whether it is there, as JavaScript; a refusal (429) is a no for this page.
function workerServed(site) {
  const url = `${RELAY}/v1/sites/${encodeURIComponent(site)}/push-worker?origin=${encodeURIComponent(location.origin)}`;
  return served ||= fetch(url, { credentials: 'omit' })
    .then((response) => (response.ok ? response.json() : {}))
    .then((answer) => answer.served === true, () => {
      served = null; // the network, not the site: asked again
      return false;
    });
}

// A worker just registered installs first; a device subscribes with an active one.
function active(registration) {
  const worker = registration.installing || registration.waiting;
  if (registration.active || !worker) return registration;
  return new Promise((resolve, reject) => worker.addEventListener('statechange', () => {
    if (worker.state === 'activated') resolve(registration);
    else if (worker.state === 'redundant') reject(new Error('the service worker did not start'));
  }));
}

// The key as applicationServerKey takes it everywhere: bytes, from base64url.
function bytes(base64url) {
  return Uint8Array.from(atob(base64url.replace(/-/g, '+').replace(/_/g, '/')), (c) => c.charCodeAt(0));
}

function tail(token) {
  return token ? token.slice(-16) : null;
}
