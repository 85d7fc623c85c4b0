// The conversation UI, loaded by embed.js on first interaction. The Chat wires its
// parts together and keeps the public Porch() API; each part is a controller of its
// own module (panel.js, privacy.js, attention.js, composer.js) that connects and
// disconnects with the <porch-chat> element, so the element can be removed and put back.
// Photos and files (files.js) are a part loaded as the panel first opens; the owner's
// answers (answers.js), one loaded as a visitor first types or an automatic answer shows;
// notifications of replies (push.js), one loaded once there is a conversation.
import { Attention } from './attention.js';
import { Composer } from './composer.js';
import { Conversation } from './conversation.js';
import { Panel } from './panel.js';
import { Privacy } from './privacy.js';
import { statusLine } from './status.js';
import { View } from './view.js';

const COMMANDS = new Set(['open', 'close', 'toggle', 'send', 'on', 'off', 'setLanguage', 'identify']);
const EVENTS = new Set(['message', 'open', 'close', 'unread']);
const RESUME_REFUSALS = new Set(['expired', 'used', 'invalid', 'revoked', 'other_site']); // the relay's `reason`

export function start({ element, relay, site, version, options, queue, resume }) {
  const chat = new Chat({ element, relay, site, base: `${relay}/widget/${version}/`, options, resume });
  for (const args of queue.splice(0)) chat.call(...args);
  return chat;
}

class Chat {
  // What the controllers share: read, never replaced after load.
  element; root; launcher; view = null; conversation; attention = null;
  attachments = null; // the photos and files part, once loaded
  site = { name: '', greeting: '' };
  #catalogue = {};
  #language = 'en';
  #options;
  #listeners = new Map([...EVENTS].map((name) => [name, new Set()]));
  #queue; // commands run in order, each after the UI is ready
  #parts = []; // the controllers, in connect order
  #panel; #privacy; #composer;
  #abort = null; // set while connected
  #connectedBefore = false;
  #synced = false;
  #attaching = null; // a promise of the attachments part
  #answering = null; // a promise of the answers part
  // A promise of the notifications part.
  #pushing = null;

  constructor({ element, relay, site, base, options, resume }) {
    this.element = element;
    this.root = element.shadowRoot;
    this.launcher = this.root.querySelector('.launcher');
    this.#options = options;
    this.#language = pickLanguage(options.lang);
    this.conversation = new Conversation({ relay, site, language: this.#language });
    this.#queue = this.#load(relay, site, base, resume);
    this.#queue.catch((error) => console.error('[porch] the chat could not start:', error));
  }

  // `resume`: the token of a "continue on another device" link this page was opened with.
  async #load(relay, site, base, resume) {
    const [catalogue, css, config] = await Promise.all([
      fetch(`${base}messages.json`).then(ok).then((r) => r.json()),
      fetch(`${base}styles.css`).then(ok).then((r) => r.text()),
      fetch(`${relay}/v1/sites/${encodeURIComponent(site)}/config`, { credentials: 'omit' }).then(ok).then((r) => r.json()),
    ]);
    this.#catalogue = catalogue;
    this.site = config;
    const sheet = new CSSStyleSheet();
    sheet.replaceSync(css);
    this.root.adoptedStyleSheets = [...this.root.adoptedStyleSheets, sheet];
    this.#applyColor(this.#options.color || config.color);
    this.view = new View(this.root, this.t, config.channels);
    this.attention = new Attention(this);
    this.#privacy = new Privacy(this);
    this.#composer = new Composer(this);
    this.#panel = new Panel(this, (event) => this.#privacy.onKey(event));
    this.#parts = [this.attention, this.#privacy, this.#composer, this.#panel];
    this.#label();
    if (this.element.isConnected) this.connect();
    const c = this.conversation;
    const refused = resume && await c.resume(resume).then(() => '', (error) => error.reason || 'failed');
    if (c.hasThread) {
      await c.sync().catch(() => {});
      c.live();
    }
    this.#synced = true;
    this.render();
    c.flush();
    if (resume) {
      this.open();
      if (refused) this.view.showNotice(this.t(`resume.${RESUME_REFUSALS.has(refused) ? refused : 'failed'}`));
    }
  }

  // -- lifecycle: embed.js calls these from the element's (dis)connectedCallback ---------

  connect() {
    if (this.#abort || !this.view) return; // already, or not loaded yet (#load connects)
    this.#abort = new AbortController();
    const signal = this.#abort.signal;
    const c = this.conversation;
    for (const part of this.#parts) part.connect();
    for (const type of ['change', 'status', 'read', 'token']) c.addEventListener(type, () => this.render(), { signal });
    c.addEventListener('message', ({ detail }) => {
      this.emit('message', detail);
      if (detail.author !== 'visitor' && this.#synced) {
        this.#composer.ownerTyping(false);
        this.attention.replied();
      }
      this.attention.attend();
    }, { signal });
    c.addEventListener('typing', () => this.#composer.ownerTyping(true), { signal });
    c.addEventListener('presence', ({ detail }) => {
      if (this.site.availability) this.site.availability.online = detail;
      this.#label();
    }, { signal });
    c.connect(this.#connectedBefore);
    this.#connectedBefore = true;
    this.render();
  }

  disconnect() {
    if (!this.#abort) return;
    this.#abort.abort();
    this.#abort = null;
    for (const part of [...this.#parts].reverse()) part.disconnect();
    this.conversation.disconnect();
  }

  // -- the public API ----------------------------------------------------------------

  call(command, ...args) {
    if (!COMMANDS.has(command)) {
      console.warn(`[porch] unknown command ${JSON.stringify(command)}; expected one of ${[...COMMANDS].join(', ')}`);
      return undefined;
    }
    if (command === 'on' || command === 'off') return this.#subscribe(command, ...args);
    this.#queue = this.#queue.then(() => this.#run(command, ...args));
    return this.#queue;
  }

  #run(command, argument) {
    if (command === 'open') this.open();
    else if (command === 'close') this.close();
    else if (command === 'toggle') (this.isOpen ? this.close() : this.open());
    else if (command === 'send') this.#composer.send(String(argument ?? ''));
    else if (command === 'setLanguage') this.#setLanguage(argument);
    else if (command === 'identify') return this.#identify(argument);
  }

  // Porch('identify', {id, hash, name?, email?}): the site's logged-in user. Never throws
  // (a failure must not stop the commands queued after it).
  async #identify(user) {
    const text = (value) => (['string', 'number'].includes(typeof value) && String(value).trim()) || undefined;
    const [id, hash, name, email] = ['id', 'hash', 'name', 'email'].map((key) => text(user?.[key]));
    if (!id || !hash) return console.warn("[porch] Porch('identify', {id, hash, name, email}): id and hash are required");
    const view = this.view;
    view.contactName.value ||= name || '';
    view.contactEmail.value ||= email || '';
    view.handoffEmail.value ||= email || '';
    const c = this.conversation;
    try {
      if (await c.identify({ id, hash, name, email })) {
        await c.sync().catch(() => {});
        c.live();
        c.flush();
      }
    } catch (error) {
      console.warn('[porch] identify failed:', error.message);
    }
  }

  #subscribe(command, name, callback) {
    if (!EVENTS.has(name) || typeof callback !== 'function') {
      console.warn(`[porch] Porch('${command}', event, fn): event is one of ${[...EVENTS].join(', ')}`);
      return;
    }
    if (command === 'on') this.#listeners.get(name).add(callback);
    else this.#listeners.get(name).delete(callback);
    if (command === 'on' && name === 'unread') callback(this.attention?.unread ?? 0);
  }

  emit(name, detail, cancelable = false) {
    for (const callback of this.#listeners.get(name)) {
      try { callback(detail); } catch (error) { console.error('[porch] a Porch("on") callback failed:', error); }
    }
    const event = new CustomEvent(`porch-chat-${name}`, { detail, bubbles: true, composed: true, cancelable });
    return this.element.dispatchEvent(event);
  }

  get isOpen() { return Boolean(this.#panel?.isOpen); }

  open() {
    this.#panel.open();
    this.attach([]);
  }

  // Files the visitor chose, dropped or pasted. The part (files.js) loads as the panel
  // first opens, not with the chat: a drop or a paste finds it there. What sending takes
  // (uploads.js, and filestore.js it imports) is fetched beside it, all at once: a
  // visitor who then goes offline can still attach.
  attach(files) {
    this.#attaching ||= Promise.all([import('./files.js'), this.conversation.uploads(), import('./filestore.js')])
      .then(([{ Files }]) => (this.attachments = this.#add(new Files(this))));
    this.#attaching.then((part) => part.add(files), (error) => {
      this.#attaching = null;
      console.warn('[porch] photos and files could not load (tried again on the next open):', error.message);
    });
  }

  // The owner's answers (answers.js): suggestions as a visitor types with no conversation
  // yet, and what goes under an automatic answer. Loaded the first time either is needed.
  answers() {
    this.#answering ||= import('./answers.js').then(({ Answers }) => this.#add(new Answers(this)), () => { this.#answering = null; });
  }

  // "Notify me here when they answer" (push.js): offered once there is a conversation.
  push() {
    this.#pushing ||= import('./push.js').then(({ Push }) => this.#add(new Push(this)), () => { this.#pushing = null; });
  }

  // A part loaded after the chat: it connects (and draws) as those before it did.
  #add(part) {
    this.#parts.push(part);
    if (this.#abort) part.connect();
    this.render();
    return part;
  }

  close() { this.#panel.close(); }

  // This device forgot the conversation: a fresh panel, and why.
  reset(notice) {
    const view = this.view;
    this.#privacy.ask(null);
    this.#composer.showHandoff(false);
    view.input.value = '';
    view.autosize();
    view.showTyping('');
    view.showNotice(notice && this.t(notice));
    this.render();
    if (this.isOpen) view.input.focus();
  }

  // -- drawing -----------------------------------------------------------------------

  render() {
    const view = this.view;
    if (!view) return;
    const c = this.conversation;
    const messages = c.sorted();
    view.render({
      greeting: this.site.greetings?.[this.#language] || this.site.greeting || this.t('panel.greeting'),
      messages, outbox: c.outbox, ownerReadSeq: c.ownerReadSeq, language: this.locale(),
      siteName: this.site.name, online: c.online, onRetry: (id) => c.retry(id), parts: this.#parts,
    });
    if (messages.some((m) => m.answer)) this.answers();
    // Web Push in this browser (only on secure pages): push.js checks the rest.
    if (c.hasThread && window.PushManager) this.push();
    view.contact.hidden = !(c.hasThread && !c.contact);
    view.footer.hidden = view.menuButton.hidden = !c.hasThread;
    if (!c.hasThread) this.#privacy.forgotten();
    if (!c.online) view.showNotice(this.t('status.offline'));
    else if (view.notice.textContent === this.t('status.offline')) view.showNotice('');
    this.attention.count(messages);
    this.#label();
  }

  #label() {
    this.attention.label();
    this.view.label(this.site);
    this.view.showStatus(...statusLine(this.site.availability || {}, this.t, this.#language, this.locale()));
  }

  // Dates and times: the browser's own locale when it speaks the widget's language
  // (en-GB gets 24-hour times), else the plain language.
  locale() {
    const browser = navigator.language || '';
    return browser.slice(0, 2).toLowerCase() === this.#language ? browser : this.#language;
  }

  #setLanguage(language) {
    this.#language = pickLanguage(language);
    this.conversation.language = this.#language;
    this.view.nodes.clear();
    this.view.log.replaceChildren();
    this.render();
  }

  #applyColor(color) {
    if (!/^#[0-9a-f]{6}$/i.test(color || '')) return;
    this.element.style.setProperty('--porch-accent', color);
    // White text where it reaches WCAG AA contrast on the accent, else near-black.
    this.element.style.setProperty('--porch-on-accent', contrast(color, '#ffffff') >= 4.5 ? '#ffffff' : '#111111');
  }

  // An arrow function: the controllers and the View call it unbound.
  t = (key, vars = {}) => {
    const text = this.#catalogue[this.#language]?.[key] ?? this.#catalogue.en?.[key] ?? key;
    return text.replace(/\{(\w+)\}/g, (_, name) => String(vars[name] ?? ''));
  };
}

function pickLanguage(wanted) {
  const source = wanted || document.documentElement.lang || navigator.language || 'en';
  return source.slice(0, 2).toLowerCase() === 'fr' ? 'fr' : 'en';
}

function ok(response) {
  if (!response.ok) throw new Error(`${response.url} answered ${response.status}`);
  return response;
}

function luminance(hex) {
  const [r, g, b] = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16) / 255)
    .map((c) => (c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4));
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}

function contrast(a, b) {
  const [light, dark] = [luminance(a), luminance(b)].sort((x, y) => y - x);
  return (light + 0.05) / (dark + 0.05);
}
