// The conversation UI, loaded by embed.js on first interaction. It owns the panel,
// the public Porch() API and the page-level touches (title count, sound, events).
import { Conversation } from './conversation.js';
import { sameDay, timeLabel } from './text.js';
import { View } from './view.js';

const TYPING_SHOWN_FOR = 6000; // ms an owner "typing" line stays without a new event
const COMMANDS = new Set(['open', 'close', 'toggle', 'send', 'on', 'off', 'setLanguage', 'identify']);
const EVENTS = new Set(['message', 'open', 'close', 'unread']);
const RESUME_REFUSALS = new Set(['expired', 'used', 'invalid', 'revoked', 'other_site']); // the relay's `reason`

export function start({ element, relay, site, version, options, queue, resume }) {
  const chat = new Chat({ element, relay, site, base: `${relay}/widget/${version}/`, options, resume });
  for (const args of queue.splice(0)) chat.call(...args);
  return chat;
}

class Chat {
  #element; #root; #launcher; #badge; #view = null; #conversation;
  #site = { name: '', greeting: '' };
  #catalogue = {};
  #language = 'en';
  #options;
  #listeners = new Map([...EVENTS].map((name) => [name, new Set()]));
  #queue; // commands run in order, each after the UI is ready
  #abort = new AbortController();
  #typingTimer = 0;
  #unread = 0;
  #pageTitle = document.title;
  #leader = false; // this tab plays the sound for every tab of the visitor
  #attending = new Set(); // tabs where the visitor is looking at the open panel
  #channel;
  #tab = crypto.randomUUID();
  #synced = false;
  #audio = null;
  #pending = null; // the action waiting in the confirm step: 'delete' | 'sign_out_all'

  constructor({ element, relay, site, base, options, resume }) {
    this.#element = element;
    this.#root = element.shadowRoot;
    this.#launcher = this.#root.querySelector('.launcher');
    this.#badge = this.#root.querySelector('.badge');
    this.#options = options;
    this.#language = pickLanguage(options.lang);
    this.#conversation = new Conversation({ relay, site, language: this.#language });
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
    this.#site = config;
    const sheet = new CSSStyleSheet();
    sheet.replaceSync(css);
    this.#root.adoptedStyleSheets = [...this.#root.adoptedStyleSheets, sheet];
    this.#applyColor(this.#options.color || config.color);
    this.#view = new View(this.#root, (key, vars) => this.#t(key, vars));
    this.#label();
    this.#wire();
    const c = this.#conversation;
    const refused = resume && await c.resume(resume).then(() => '', (error) => error.reason || 'failed');
    if (c.hasThread) {
      await c.sync().catch(() => {});
      c.live();
    }
    this.#synced = true;
    this.#render();
    c.flush();
    if (resume) {
      this.open();
      if (refused) this.#view.showNotice(this.#t(`resume.${RESUME_REFUSALS.has(refused) ? refused : 'failed'}`));
    }
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
    else if (command === 'send') this.#send(String(argument ?? ''));
    else if (command === 'setLanguage') this.#setLanguage(argument);
    else if (command === 'identify') return this.#identify(argument);
  }

  // Porch('identify', {id, hash, name?, email?}): the site's logged-in user. Never throws
  // (a failure must not stop the commands queued after it).
  async #identify(user) {
    const text = (value) => (['string', 'number'].includes(typeof value) && String(value).trim()) || undefined;
    const [id, hash, name, email] = ['id', 'hash', 'name', 'email'].map((key) => text(user?.[key]));
    if (!id || !hash) return console.warn("[porch] Porch('identify', {id, hash, name, email}): id and hash are required");
    const view = this.#view;
    view.contactName.value ||= name || '';
    view.contactEmail.value ||= email || '';
    view.handoffEmail.value ||= email || '';
    const c = this.#conversation;
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
    if (command === 'on' && name === 'unread') callback(this.#unread);
  }

  #emit(name, detail, cancelable = false) {
    for (const callback of this.#listeners.get(name)) {
      try { callback(detail); } catch (error) { console.error('[porch] a Porch("on") callback failed:', error); }
    }
    const event = new CustomEvent(`porch-chat-${name}`, { detail, bubbles: true, composed: true, cancelable });
    return this.#element.dispatchEvent(event);
  }

  get isOpen() { return Boolean(this.#view && !this.#view.panel.hidden); }

  open() {
    if (this.isOpen || !this.#emit('open', undefined, true)) return;
    this.#view.panel.hidden = false;
    this.#element.toggleAttribute('open', true);
    this.#launcher.setAttribute('aria-expanded', 'true');
    this.#render();
    this.#view.scrollToEnd();
    this.#view.input.focus();
    this.#conversation.markRead(); // opening the panel is reading it, focused or not
    this.#attend();
  }

  close() {
    if (!this.isOpen || !this.#emit('close', undefined, true)) return;
    this.#view.panel.hidden = true;
    this.#element.toggleAttribute('open', false);
    this.#launcher.setAttribute('aria-expanded', 'false');
    this.#launcher.focus();
    this.#attend();
  }

  stop() {
    this.#abort.abort();
    this.#conversation.stop();
    this.#channel?.close();
    clearTimeout(this.#typingTimer);
    this.#audio?.close();
    document.title = this.#pageTitle;
  }

  // -- wiring ------------------------------------------------------------------------

  #wire() {
    const signal = this.#abort.signal;
    const view = this.#view;
    const c = this.#conversation;
    view.closeButton.addEventListener('click', () => this.close(), { signal });
    view.composer.addEventListener('submit', (event) => {
      event.preventDefault();
      this.#send(view.input.value);
    }, { signal });
    view.input.addEventListener('keydown', (event) => {
      // Enter sends, Shift+Enter breaks the line; never in the middle of an IME composition.
      if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        this.#send(view.input.value);
      }
    }, { signal });
    view.input.addEventListener('input', () => {
      view.autosize();
      c.typing();
    }, { signal });
    view.contact.addEventListener('submit', (event) => this.#saveContact(event), { signal });
    view.contactSkip.addEventListener('click', () => this.#dismissContact('skipped'), { signal });
    view.handoffToggle.addEventListener('click', () => this.#showHandoff(view.handoff.hidden), { signal });
    view.handoffCancel.addEventListener('click', () => this.#showHandoff(false), { signal });
    view.handoff.addEventListener('submit', (event) => this.#sendLink(event), { signal });
    view.menuButton.addEventListener('click', () => this.#showMenu(view.menu.hidden), { signal });
    view.menu.addEventListener('click', (event) => this.#act(event.target.closest('[data-action]')?.dataset.action), { signal });
    view.confirmCancel.addEventListener('click', () => this.#ask(null), { signal });
    view.confirmOk.addEventListener('click', () => this.#confirmed(), { signal });
    // A press anywhere else (in the panel or on the page) puts the menu away.
    document.addEventListener('pointerdown', (event) => {
      const path = event.composedPath();
      if (!view.menu.hidden && !path.includes(view.menu) && !path.includes(view.menuButton)) this.#showMenu(false, false);
    }, { signal });
    this.#root.addEventListener('keydown', (event) => this.#onKey(event), { signal });
    for (const type of ['pointerdown', 'keydown']) this.#root.addEventListener(type, this.#unlockAudio, { signal });
    for (const type of ['focus', 'blur', 'visibilitychange']) {
      (type === 'visibilitychange' ? document : window).addEventListener(type, () => this.#attend(), { signal });
    }
    for (const type of ['change', 'status', 'read']) c.addEventListener(type, () => this.#render(), { signal });
    c.addEventListener('token', () => this.#render(), { signal });
    c.addEventListener('message', (event) => this.#onMessage(event.detail), { signal });
    c.addEventListener('typing', () => this.#onTyping(), { signal });
    c.addEventListener('presence', ({ detail }) => {
      if (this.#site.availability) this.#site.availability.online = detail;
      this.#label();
    }, { signal });
    this.#channel = new BroadcastChannel(`porch:${this.#site.site}`);
    this.#channel.onmessage = ({ data }) => {
      if (data.attending) this.#attending.add(data.tab);
      else this.#attending.delete(data.tab);
    };
    // One tab at a time holds this lock for its whole life: it is the one that rings.
    navigator.locks?.request(`porch:${this.#site.site}:sound`, { signal }, () => {
      this.#leader = true;
      return new Promise(() => {});
    }).catch(() => {});
  }

  #onKey(event) {
    const view = this.#view;
    if (!view.menu.hidden) {
      const items = view.menuItems();
      const index = items.indexOf(this.#root.activeElement);
      const next = { ArrowDown: index + 1, ArrowUp: index - 1, Home: 0, End: -1 }[event.key];
      if (event.key === 'Escape' || event.key === 'Tab') {
        if (event.key === 'Escape') event.preventDefault();
        return this.#showMenu(false, event.key === 'Escape');
      }
      if (next !== undefined) {
        event.preventDefault();
        return items.at(next % items.length)?.focus();
      }
    }
    if (event.key === 'Escape' && !view.confirm.hidden) {
      event.preventDefault();
      return this.#ask(null);
    }
    if (event.key === 'Escape' && this.isOpen) {
      event.preventDefault();
      this.close();
      return;
    }
    // On a phone the panel covers the page: keep Tab inside it.
    if (event.key === 'Tab' && this.isOpen && innerWidth <= 480) {
      const items = this.#view.focusables();
      const active = this.#root.activeElement;
      const index = items.indexOf(active);
      const next = event.shiftKey ? (index <= 0 ? items.length - 1 : index - 1) : (index + 1) % items.length;
      event.preventDefault();
      items[next]?.focus();
    }
  }

  // -- conversation ------------------------------------------------------------------

  #send(text) {
    const body = text.trim();
    if (!body || !this.#view) return;
    this.#conversation.send(body);
    this.#view.scrollToEnd();
    this.#view.input.value = '';
    this.#view.autosize();
    this.#conversation.live();
  }

  #onMessage(message) {
    this.#emit('message', message);
    if (message.author !== 'visitor' && this.#synced) {
      this.#view.showTyping('');
      if (!this.#attendingAnywhere() && this.#leader) this.#ring();
    }
    this.#attend();
  }

  #onTyping() {
    this.#view.showTyping(this.#t('typing.owner', { site: this.#site.name }));
    clearTimeout(this.#typingTimer);
    this.#typingTimer = setTimeout(() => this.#view.showTyping(''), TYPING_SHOWN_FOR);
  }

  // Is the visitor looking at the open panel here? Then replies are read as they come.
  #attend() {
    const attending = this.isOpen && document.visibilityState === 'visible' && document.hasFocus();
    this.#channel?.postMessage({ tab: this.#tab, attending });
    if (attending) this.#conversation.markRead();
    this.#render();
  }

  #attendingAnywhere() {
    return (this.isOpen && document.hasFocus()) || this.#attending.size > 0;
  }

  // Browsers let a page start audio only after a user gesture: make the one context
  // the first time the visitor touches the widget, and reuse it.
  #unlockAudio = () => {
    this.#audio ||= new AudioContext();
  };

  #ring() {
    this.#element.dispatchEvent(new CustomEvent('porch-chat-notify', { bubbles: true, composed: true }));
    const audio = this.#audio;
    if (!audio) return; // the visitor has not touched the widget yet: the badge still shows
    try {
      // A short two-note chime, synthesised: no audio file to fetch.
      const now = audio.currentTime;
      for (const [offset, frequency] of [[0, 880], [0.12, 1320]]) {
        const oscillator = audio.createOscillator();
        const gain = audio.createGain();
        oscillator.frequency.value = frequency;
        gain.gain.setValueAtTime(0.08, now + offset);
        gain.gain.exponentialRampToValueAtTime(0.0001, now + offset + 0.25);
        oscillator.connect(gain).connect(audio.destination);
        oscillator.start(now + offset);
        oscillator.stop(now + offset + 0.25);
      }
    } catch {
      // Audio unavailable (no output device): the badge and title still show.
    }
  }

  #saveContact(event) {
    event.preventDefault();
    const values = this.#view.contactValues();
    if (!values) return;
    this.#conversation.saveContact(values.name, values.email).then(() => {
      this.#dismissContact('saved');
      this.#view.showNotice(this.#t('contact.saved', { email: values.email }));
    }, () => { this.#view.contactError.textContent = this.#t('error.generic'); });
  }

  // "Continue on another device": the form to email a link, shown or put away.
  #showHandoff(show) {
    const view = this.#view;
    view.handoff.hidden = !show;
    view.handoffToggle.setAttribute('aria-expanded', String(show));
    if (!show) return view.handoffToggle.focus();
    view.handoffError.textContent = '';
    view.handoffEmail.value ||= this.#conversation.email || '';
    view.handoffEmail.focus();
  }

  async #sendLink(event) {
    event.preventDefault();
    const view = this.#view;
    const email = view.email(view.handoffEmail, view.handoffError);
    if (!email || view.handoffSend.disabled) return;
    view.handoffSend.disabled = true;
    try {
      await this.#conversation.sendLink(email);
      this.#showHandoff(false);
      view.showNotice(this.#t('handoff.sent', { email }));
    } catch (error) {
      view.handoffError.textContent = this.#t({ 422: 'contact.invalid', 429: 'handoff.rate_limited' }[error.status] || 'error.generic');
      view.handoffEmail.focus();
    } finally {
      view.handoffSend.disabled = false;
    }
  }

  // -- the visitor's data: download, delete, sign out --------------------------------------

  #showMenu(show, focus = true) {
    const view = this.#view;
    view.menu.hidden = !show;
    view.menuButton.setAttribute('aria-expanded', String(show));
    if (show) view.menuItems()[0].focus();
    else if (focus) view.menuButton.focus();
  }

  #act(action) {
    if (!action) return;
    this.#showMenu(false, false);
    this.#view.alert.textContent = '';
    if (action === 'delete' || action === 'sign_out_all') return this.#ask(action);
    if (action === 'sign_out') return this.#conversation.signOut(false).then(() => this.#reset('privacy.signed_out'));
    this.#view.menuButton.focus();
    this.#download(action === 'download_text' ? 'text' : 'json');
  }

  // The confirm step inside the panel (null: put it away, back to the menu button).
  #ask(action) {
    const view = this.#view;
    this.#pending = action;
    view.confirm.hidden = !action;
    if (!action) return view.menuButton.hidden ? view.input.focus() : view.menuButton.focus();
    view.confirmText.textContent = this.#t(`confirm.${action}`);
    view.confirmOk.textContent = this.#t(action === 'delete' ? 'confirm.delete_button' : 'menu.sign_out_all');
    view.confirmCancel.focus();
  }

  async #confirmed() {
    const view = this.#view;
    const action = this.#pending;
    if (!action || view.confirmOk.disabled) return;
    view.confirmOk.disabled = true;
    try {
      await (action === 'delete' ? this.#conversation.erase() : this.#conversation.signOut(true));
      this.#reset(action === 'delete' ? 'privacy.deleted' : 'privacy.signed_out_all');
    } catch {
      view.alert.textContent = this.#t('error.generic');
      if (!this.#conversation.hasThread) this.#reset(''); // refused: this token is gone anyway
    } finally {
      view.confirmOk.disabled = false;
    }
  }

  async #download(format) {
    try {
      const url = URL.createObjectURL(await this.#conversation.export(format));
      const a = document.createElement('a');
      a.href = url;
      a.download = `conversation.${format === 'text' ? 'txt' : 'json'}`;
      a.click();
      setTimeout(() => URL.revokeObjectURL(url), 1000);
    } catch {
      this.#view.alert.textContent = this.#t('error.generic');
    }
  }

  // This device forgot the conversation: a fresh panel, and why.
  #reset(notice) {
    const view = this.#view;
    this.#ask(null);
    this.#showHandoff(false);
    view.input.value = '';
    view.autosize();
    view.showTyping('');
    view.showNotice(notice && this.#t(notice));
    this.#render();
    if (this.isOpen) view.input.focus();
  }

  #dismissContact(state) {
    this.#conversation.contact = state;
    this.#render();
  }

  // -- drawing -----------------------------------------------------------------------

  #render() {
    if (!this.#view) return;
    const c = this.#conversation;
    const messages = c.sorted();
    this.#view.render({
      greeting: this.#site.greetings?.[this.#language] || this.#site.greeting || this.#t('panel.greeting'),
      messages, outbox: c.outbox, ownerReadSeq: c.ownerReadSeq, language: this.#locale(),
      siteName: this.#site.name, online: c.online, onRetry: (id) => c.retry(id),
    });
    this.#view.contact.hidden = !(c.hasThread && !c.contact);
    this.#view.footer.hidden = !c.hasThread;
    this.#view.menuButton.hidden = !c.hasThread;
    if (!c.hasThread) {
      this.#view.menu.hidden = this.#view.confirm.hidden = true; // forgotten, maybe in another tab
      this.#pending = null;
    }
    if (!c.online) this.#view.showNotice(this.#t('status.offline'));
    else if (this.#view.notice.textContent === this.#t('status.offline')) this.#view.showNotice('');
    const unread = messages.filter((m) => m.author !== 'visitor' && m.seq > c.visitorReadSeq).length;
    if (unread !== this.#unread) {
      this.#unread = unread;
      this.#emit('unread', unread);
    }
    this.#badge.textContent = unread ? String(unread) : '';
    this.#badge.hidden = !unread;
    this.#label();
    document.title = unread ? this.#t('title.unread', { count: unread, title: this.#pageTitle }) : this.#pageTitle;
  }

  #label() {
    const name = this.#site.name;
    const label = this.#t('launcher.open', { site: name });
    this.#launcher.setAttribute('aria-label', this.#unread ? `${label} (${this.#t('launcher.unread', { count: this.#unread })})` : label);
    if (!this.#view) return;
    this.#view.label(this.#site);
    this.#view.showStatus(...this.#status(this.#site.availability || {}));
  }

  // [text, online] for the header: at the inbox now; else, while open, how fast we
  // reply; else when we are back (in the visitor's own time zone) and the away text.
  #status(a) {
    const t = (key, vars) => this.#t(`availability.${key}`, vars);
    if (a.online) return [t('online'), true];
    const next = a.next_open && new Date(a.next_open);
    if (a.open || (next && next <= new Date())) { // a page left open past the opening time
      return [a.reply_seconds ? t('typical', { duration: this.#duration(a.reply_seconds) }) : this.#t('panel.availability'), false];
    }
    const away = a.away_texts?.[this.#language] || a.away_text || t('away');
    return [`${next ? this.#back(next, t) : t('closed')} ${away}`, false];
  }

  #back(next, t) {
    const locale = this.#locale();
    const now = new Date();
    const tomorrow = new Date(now);
    tomorrow.setDate(now.getDate() + 1);
    const time = timeLabel(next, locale);
    if (sameDay(next, now)) return t('back_today', { time });
    if (sameDay(next, tomorrow)) return t('back_tomorrow', { time });
    // Within the week the weekday says it; further ahead, the date too.
    const options = next - now < 6 * 864e5 ? { weekday: 'long' } : { weekday: 'long', day: 'numeric', month: 'long' };
    return t('back', { day: new Intl.DateTimeFormat(locale, options).format(next), time });
  }

  // 300 -> "5 minutes", 7200 -> "2 hours", 90000 -> "1 day", in the visitor's language.
  #duration(seconds) {
    const minutes = Math.max(1, Math.round(seconds / 60));
    const [value, unit] = minutes < 55 ? [minutes, 'minute'] : minutes < 1320 ? [Math.round(minutes / 60), 'hour'] : [Math.round(minutes / 1440), 'day'];
    return new Intl.NumberFormat(this.#locale(), { style: 'unit', unit, unitDisplay: 'long' }).format(value);
  }

  // Dates and times: the browser's own locale when it speaks the widget's language
  // (en-GB gets 24-hour times), else the plain language.
  #locale() {
    const browser = navigator.language || '';
    return browser.slice(0, 2).toLowerCase() === this.#language ? browser : this.#language;
  }

  #setLanguage(language) {
    this.#language = pickLanguage(language);
    this.#conversation.language = this.#language;
    this.#view.nodes.clear();
    this.#view.log.replaceChildren();
    this.#render();
  }

  #applyColor(color) {
    if (!/^#[0-9a-f]{6}$/i.test(color || '')) return;
    this.#element.style.setProperty('--porch-accent', color);
    // White text where it reaches WCAG AA contrast on the accent, else near-black.
    this.#element.style.setProperty('--porch-on-accent', contrast(color, '#ffffff') >= 4.5 ? '#ffffff' : '#111111');
  }

  #t(key, vars = {}) {
    const text = this.#catalogue[this.#language]?.[key] ?? this.#catalogue.en?.[key] ?? key;
    return text.replace(/\{(\w+)\}/g, (_, name) => String(vars[name] ?? ''));
  }
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
