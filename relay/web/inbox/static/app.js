// The signed-in inbox: wires the model (threads.js), the live socket (live.js) and the
// views (header, list, thread, settings) together. The open thread is in the address
// (#t=<id>), so reload, back and links work.
import { AnswerBook } from './answers.js';
import { inFlight } from './apps.js';
import { el } from './dom.js';
import { summary } from './files.js';
import { Header } from './header.js';
import { HeldReplies } from './held.js';
import { Live } from './live.js';
import { ThreadList } from './list.js';
import { Notifier } from './notify.js';
import { Settings } from './settings.js';
import { installShortcuts, shortcutsDialog } from './shortcuts.js';
import { ThreadView } from './thread.js';
import { Threads } from './threads.js';
import { pickLanguage, rememberLanguage, Text } from './text.js';

const TICK_EVERY = 30_000; // ms between refreshes of "5 min ago"
const RETRY_MIN = 1000; // ms; first retry of the thread list when it cannot load
const RETRY_MAX = 30_000; // ms
const TYPING_EVERY = 2000; // ms; at most one typing frame per thread this often
const THREAD = /^#t=([^&]+)$/;
// What became of a reply (queued, sent, delivered, read, failed) comes with the thread,
// not over the socket: it is fetched again this long after a message in the open thread
// (the reply has usually left by then), then while a send is still on its way.
const DELIVERIES_AFTER = 2000; // ms
const DELIVERIES_EVERY = 5000; // ms between looks while a send is queued or on its way
const DELIVERIES_LOOKS = 6; // then the next message, the window's focus or a reload tells

export class App {
  #api;
  #catalogue;
  #me;
  #abort = new AbortController();
  #views = null;
  #typingAt = 0;
  #navigated = false; // a thread was opened from inside the app: "back" may go back
  #everConnected = false;
  #here = true; // what the relay believes: a new socket counts as here until told
  #deliveriesTimer = 0;
  selected = null;

  constructor(api, catalogue, me, onSignedOut) {
    this.#api = api;
    this.#catalogue = catalogue;
    this.#me = me;
    this.onSignedOut = onSignedOut;
    this.live = new Live();
    this.threads = new Threads(api, this.live);
    this.answers = new AnswerBook(api); // each site's automatic answers, when first needed
    this.held = new HeldReplies(api); // emailed replies waiting for the owner's decision
  }

  get sites() {
    return new Map((this.#me.sites || []).map((site) => [site.id, site.name || site.id]));
  }

  async start() {
    const signal = this.#abort.signal;
    this.#mount();
    const { threads, live } = this;
    this.#api.addEventListener('unauthorized', () => this.signOut('signin.signed_out'), { signal });
    live.addEventListener('signedout', () => this.signOut('signin.signed_out'), { signal });
    live.addEventListener('frame', (event) => this.#onFrame(event.detail), { signal });
    live.addEventListener('status', () => this.#connection(), { signal });
    addEventListener('offline', () => this.#connection(), { signal });
    addEventListener('online', () => this.#connection(), { signal });
    live.addEventListener('ready', (event) => {
      this.#everConnected = true;
      this.#here = true;
      this.#tellPresence();
      if (!event.detail.first) this.#catchUp(); // status changes and reads are not replayed
    }, { signal });
    threads.addEventListener('change', () => this.#renderList(), { signal });
    this.held.addEventListener('change', () => {
      this.#renderList();
      this.#renderThread();
    }, { signal });
    this.answers.addEventListener('change', (event) => {
      if (this.threads.byId.get(this.selected)?.site === event.detail) this.#renderThread();
    }, { signal });
    threads.addEventListener('history', (event) => event.detail === this.selected && this.#renderThread(), { signal });
    threads.addEventListener('gone', (event) => {
      if (event.detail !== this.selected) return;
      this.announce(this.#views.text.t('announce.deleted'));
      this.#clearRoute();
    }, { signal });
    addEventListener('hashchange', () => {
      this.#navigated = true;
      this.#route();
    }, { signal });
    document.addEventListener('visibilitychange', () => {
      this.#views.notifier.refresh();
      this.#tellPresence();
      this.#readIfAttending();
      if (!document.hidden) this.#followDeliveries(0);
    }, { signal });
    addEventListener('focus', () => {
      this.#tellPresence();
      this.#readIfAttending();
      this.#followDeliveries(0);
    }, { signal });
    addEventListener('blur', () => this.#tellPresence(), { signal });
    // A file dropped beside the open thread (which takes it) must not replace the inbox.
    addEventListener('dragover', (event) => {
      if (event.defaultPrevented || !event.dataTransfer?.types.includes('Files')) return;
      event.preventDefault();
      event.dataTransfer.dropEffect = 'none';
    }, { signal });
    const tick = setInterval(() => this.#views.list.tick(), TICK_EVERY);
    signal.addEventListener('abort', () => clearInterval(tick));
    installShortcuts(this.#shortcutActions(), signal);
    this.#route();
    // The socket resumes from the list's cursor: never start it without one (from 0 it
    // would replay every message ever stored).
    for (let wait = RETRY_MIN; !signal.aborted; wait = Math.min(RETRY_MAX, wait * 2)) {
      try {
        live.seq = (await threads.load()).seq;
        this.#loadHeld();
        break;
      } catch (error) {
        this.#loadFailed(error);
        await new Promise((resolve) => setTimeout(resolve, wait));
      }
    }
    if (!signal.aborted) live.start();
  }

  // Build (or rebuild, after a language change) every view from the model.
  #mount() {
    const text = new Text(this.#catalogue, this.#me.language || navigator.language);
    document.documentElement.lang = text.language;
    const t = text.t;
    const header = new Header(text, {
      onSite: (site) => this.#filter({ site }),
      onSearch: (q) => this.#filter({ q }),
    });
    const list = new ThreadList(text, { onFilter: (status) => this.#filter({ status }), onOlder: () => this.#older() });
    const thread = new ThreadView(text, {
      onSend: (body, files) => {
        this.threads.reply(this.selected, body, files);
        this.#followDeliveries();
      },
      onUpload: (thread, file, options) => this.#api.upload(thread, file, options),
      onRenewLinks: (seq) => this.threads.renewLinks(this.selected, seq),
      announce: (message) => this.announce(message),
      onInput: () => this.#typing(),
      onToggleStatus: () => this.#toggleStatus(),
      onBack: () => this.#back(),
      onRetry: (clientId) => this.threads.retry(this.selected, clientId),
      onTemplate: async (thread, channel) => {
        await this.#api.sendTemplate(thread, channel);
        this.#followDeliveries(0);
      },
      answersOf: (site, wanted) => this.answers.known(site, wanted),
      onSaveAnswer: (seq) => this.#saveAsAnswer(seq),
      onRelease: (reply) => this.#release(reply),
      onDiscard: async (reply) => {
        await this.held.discard(reply);
        this.announce(t('held.discarded'));
      },
    });
    const settings = new Settings(this.#api, text, {
      onMe: (me) => this.#meChanged(me),
      onSite: (site) => this.#siteChanged(site),
      onSignedOut: (notice) => this.signOut(notice),
    }, this.answers);
    const help = shortcutsDialog(text);
    const notifier = new Notifier(header.notifyButton, (id) => this.open(id));
    header.setSites(this.#me.sites || [], this.threads.filters.site);
    header.search.value = this.threads.filters.q;
    list.setFilter(this.threads.filters.status);
    header.settingsButton.addEventListener('click', () => this.#openSettings());
    header.helpButton.addEventListener('click', () => help.showModal());
    header.signOutButton.addEventListener('click', () => this.#signOutHere());
    const main = el('main', { class: 'layout', id: 'main', 'aria-labelledby': 'page-title' },
      el('h1', { id: 'page-title', class: 'sr-only' }, t('title')), list.root, thread.root);
    const previous = this.#views;
    if (previous) {
      previous.root.remove();
      previous.settings.dialog.remove();
      previous.help.remove();
    }
    const root = el('div', { class: 'app' }, header.root, main);
    document.getElementById('app').replaceChildren(root);
    document.body.append(settings.dialog, help);
    this.#views = { root, text, header, list, thread, settings, help, notifier };
    if (previous) {
      const old = previous.thread;
      if (old.id) old.drafts.set(old.id, old.input.value); // the reply being typed survives
      thread.drafts = old.drafts;
      thread.trays = old.trays; // and its files, uploads still on their way included
    }
    this.#renderList();
    this.#connection();
  }

  // -- routing ---------------------------------------------------------------------------

  open(id) {
    // Now, not at hashchange: a quick second "j" moves on from here, and a reply typed
    // right after the key is the new thread's draft, not the old one's.
    this.selected = id;
    this.#views?.thread.select(id);
    location.hash = `#t=${encodeURIComponent(id)}`;
  }

  async #route() {
    const match = location.hash.match(THREAD);
    const id = match ? decodeURIComponent(match[1]) : null;
    const view = this.#views.thread;
    this.selected = id;
    document.body.classList.toggle('has-thread', Boolean(id));
    view.select(id);
    this.#renderList();
    if (!id) return;
    this.#renderThread();
    try {
      await this.threads.sync(id);
    } catch (error) {
      if (error.status === 404) {
        this.announce(this.#views.text.t('announce.not_found'));
        return this.#clearRoute();
      }
      if (error.status !== 401) this.announce(this.#views.text.t('error.load_thread'));
      return;
    }
    if (this.selected === id) this.#readIfAttending();
  }

  #clearRoute() {
    history.replaceState(null, '', location.pathname + location.search);
    this.#route();
  }

  // The phone's back button: to the list, as the browser's back would.
  #back() {
    const id = this.selected;
    if (this.#navigated) history.back();
    else this.#clearRoute();
    requestAnimationFrame(() => this.#views.list.link(id)?.focus());
  }

  // -- the list ----------------------------------------------------------------------------

  async #filter(changes) {
    Object.assign(this.threads.filters, changes);
    try {
      await this.threads.load();
    } catch (error) {
      this.#loadFailed(error);
    }
  }

  // "Show older conversations": the next page joins the end of the list. Focus was on
  // the button (gone when nothing older is left): it moves to the first thread added.
  async #older() {
    const button = this.#views.list.older;
    let added;
    try {
      added = await this.threads.loadOlder();
    } catch (error) {
      return this.#loadFailed(error);
    }
    const lost = document.activeElement === button || document.activeElement === document.body;
    if (added.length && lost && button === this.#views.list.older) this.#views.list.link(added[0]).focus();
  }

  #loadFailed(error) {
    if (error.status === 401) return;
    this.announce(this.#views.text.t(error.status ? 'error.load_list' : 'error.network'));
  }

  #renderList() {
    if (!this.#views) return;
    const { list, text } = this.#views;
    list.render({ threads: this.threads.visible(), selected: this.selected, sites: this.sites, filters: this.threads.filters, loaded: this.threads.loaded, more: Boolean(this.threads.next), held: (id) => this.held.count(id) });
    const unread = this.threads.unreadTotal;
    document.title = unread ? text.t('title.unread', { count: unread, title: text.t('title') }) : text.t('title');
  }

  #renderThread() {
    const id = this.selected;
    const thread = this.threads.byId.get(id);
    if (!thread || !this.#views) return;
    const site = (this.#me.sites || []).find((one) => one.id === thread.site);
    this.#views.thread.render({ thread, history: this.threads.history(id), siteName: this.sites.get(thread.site) || '', typing: this.threads.isTyping(id), site, held: this.held.of(id) });
  }

  // -- live ---------------------------------------------------------------------------------

  #onFrame(frame) {
    const threads = this.threads;
    if (frame.type === 'message') this.#onMessage(frame.message);
    else if (frame.type === 'read') threads.applyRead(frame);
    else if (frame.type === 'typing') threads.applyTyping(frame);
    else if (frame.type === 'status') threads.applyStatus(frame);
    else if (frame.type === 'deleted') threads.applyDeleted(frame);
    else if (frame.type === 'ack') { // stored: the ack carries it, and no copy follows
      threads.applyAck(frame);
      if (frame.message) this.#onMessage(frame.message);
    }
    else if (frame.type === 'held') this.#loadHeld(); // a reply held, released or discarded
  }

  async #onMessage(message) {
    if (message.thread === this.selected) this.#followDeliveries();
    const reading = message.thread === this.selected && attending();
    let news = this.threads.addMessage(message, { reading });
    if (news === null) { // a thread new to this page: news, whatever its summary says
      try {
        await this.threads.fetchThread(message.thread, message.seq);
      } catch (error) {
        return console.warn('[porch] a new thread could not be fetched:', error.message);
      }
      this.threads.addMessage(message, { reading }); // in case the summary predates it
      news = true;
    }
    if (!news || message.author !== 'visitor') return;
    if (reading) this.threads.markRead(message.thread);
    const { text, notifier } = this.#views;
    const thread = this.threads.byId.get(message.thread);
    const visitor = thread?.visitor || {};
    const name = visitor.name || visitor.email || text.t('visitor.anonymous');
    const words = summary(message, text.t); // or its files: "📎 photo.png"
    this.announce(text.t('announce.message', { name, text: words.slice(0, 200) }));
    // Hidden page, or busy in another thread: news. The list in view already shows it.
    if (document.hidden || (this.selected && message.thread !== this.selected)) {
      const site = this.sites.get(thread?.site || '');
      notifier.show({ thread: message.thread, title: site ? text.t('notify.title', { name, site }) : name, body: words });
    }
  }

  // After a reconnect: what the replay does not carry (status changes, reads).
  async #catchUp() {
    try {
      await this.threads.load();
      if (this.selected) await this.threads.sync(this.selected);
    } catch (error) {
      this.#loadFailed(error);
    }
    this.#loadHeld(); // nor replies held meanwhile
  }

  // Every held reply of the owner's sites: one list serves the open thread's cards and
  // the list's badges alike.
  #loadHeld() {
    this.held.load().catch((error) => {
      if (error.status !== 401) console.warn('[porch] the held replies could not load:', error.message);
    });
  }

  // Fetch the open thread again in `delay` ms (one timer: a newer call replaces an
  // older one) for its deliveries and chats (a customer writing reopens a reply window).
  #followDeliveries(delay = DELIVERIES_AFTER, looks = DELIVERIES_LOOKS) {
    clearTimeout(this.#deliveriesTimer);
    const id = this.selected;
    if (!id || !this.threads.history(id).loaded) return;
    this.#deliveriesTimer = setTimeout(async () => {
      if (this.selected !== id || this.#abort.signal.aborted) return;
      try {
        await this.threads.sync(id);
      } catch (error) {
        return console.warn('[porch] the conversation could not refresh:', error.message);
      }
      if (looks > 1 && this.selected === id && inFlight(this.threads.history(id).deliveries)) this.#followDeliveries(DELIVERIES_EVERY, looks - 1);
    }, delay);
  }

  #connection() {
    this.#views?.header.setConnected(this.live.connected, this.#everConnected);
  }

  // -- the owner's actions ------------------------------------------------------------------

  #tellPresence() {
    const here = attending();
    if (here !== this.#here && this.live.send({ type: 'here', here })) this.#here = here;
  }

  #readIfAttending() {
    if (this.selected && attending() && this.threads.history(this.selected).loaded) this.threads.markRead(this.selected);
  }

  #typing() {
    const now = Date.now();
    if (now - this.#typingAt < TYPING_EVERY || !this.selected) return;
    if (this.threads.typing(this.selected)) this.#typingAt = now;
  }

  // A held reply released: posted, it joins the log now (its live frame, when it comes,
  // is the same message, kept once by its seq).
  async #release(reply) {
    const message = await this.held.release(reply);
    this.threads.addMessage(message, { reading: message.thread === this.selected && attending() });
    this.announce(this.#views.text.t('held.released'));
  }

  async #toggleStatus() {
    const thread = this.threads.byId.get(this.selected);
    if (!thread) return;
    const status = thread.status === 'closed' ? 'open' : 'closed';
    const t = this.#views.text.t;
    try {
      await this.threads.setStatus(thread.id, status);
      this.announce(t(status === 'closed' ? 'announce.closed' : 'announce.reopened'));
    } catch (error) {
      if (error.status !== 401) this.announce(t('error.generic'));
    }
  }

  #shortcutActions() {
    const move = (step) => {
      const visible = this.threads.visible();
      if (!visible.length) return;
      const index = visible.findIndex((thread) => thread.id === this.selected);
      const next = index < 0 ? (step > 0 ? 0 : visible.length - 1) : Math.min(visible.length - 1, Math.max(0, index + step));
      const id = visible[next].id;
      const focusInList = this.#views.list.root.contains(document.activeElement);
      if (id !== this.selected) this.open(id);
      if (focusInList) this.#views.list.link(id).focus();
    };
    return {
      next: () => move(1),
      previous: () => move(-1),
      reply: () => this.#views.thread.focusReply(),
      status: () => this.#toggleStatus(),
      search: () => this.#views.header.search.focus(),
      help: () => this.#views.help.showModal(),
      leave: (field) => {
        field.blur();
        if (this.selected) this.#views.list.link(this.selected)?.focus({ preventScroll: true });
      },
    };
  }

  async #openSettings() {
    const { settings } = this.#views;
    settings.open(this.#me, 'account', this.#currentSite());
    try {
      const me = await this.#api.me();
      this.#me = { ...this.#me, sessions: me.sessions };
      settings.refreshDevices(me);
    } catch (error) {
      if (error.status !== 401) console.warn('[porch] the list of devices could not refresh:', error.message);
    }
  }

  // "Save as an answer" on a reply: the settings' answer form, prefilled with the
  // visitor's message before it (the question) and the reply, in the visitor's language.
  #saveAsAnswer(seq) {
    const thread = this.threads.byId.get(this.selected);
    if (!thread) return;
    const messages = this.threads.history(thread.id).sorted();
    const index = messages.findIndex((message) => message.seq === seq);
    if (index < 0) return;
    const asked = messages.slice(0, index).findLast((message) => message.author === 'visitor' && message.body);
    const { settings } = this.#views;
    settings.open(this.#me, 'site', thread.site);
    settings.answers.startNew({ question: asked?.body || '', answer: messages[index].body, language: thread.visitor?.language });
  }

  #currentSite() {
    return this.threads.filters.site || this.threads.byId.get(this.selected)?.site || '';
  }

  #meChanged(me) {
    const languageChanged = pickLanguage(me.language, navigator.language) !== this.#views.text.language;
    this.#me = me;
    rememberLanguage(me.language);
    if (!languageChanged) return;
    this.#mount();
    this.#route();
    this.#views.settings.open(this.#me, 'account');
    this.#views.settings.confirmSaved();
  }

  #siteChanged(site) {
    this.#me = { ...this.#me, sites: this.#me.sites.map((s) => (s.id === site.id ? site : s)) };
    this.#views.header.setSites(this.#me.sites, this.threads.filters.site);
    this.#renderList();
    this.#renderThread();
  }

  async #signOutHere() {
    try {
      await this.#api.signOut(false);
    } catch (error) {
      if (error.status && error.status !== 401) return this.announce(this.#views.text.t('error.generic'));
    }
    this.signOut('signin.signed_out_self');
  }

  // Signed out (here, elsewhere, or revoked): stop everything, back to the email form.
  signOut(notice) {
    if (this.#abort.signal.aborted) return;
    this.stop();
    history.replaceState(null, '', location.pathname + location.search);
    this.onSignedOut(notice);
  }

  stop() {
    this.#abort.abort();
    clearTimeout(this.#deliveriesTimer);
    this.live.stop();
    const { settings, help } = this.#views;
    if (settings.dialog.open) settings.dialog.close();
    settings.dialog.remove();
    help.remove();
    document.body.classList.remove('has-thread');
  }

  announce(message) {
    const region = document.getElementById('announcer');
    // Emptied first, so the same words said twice are announced twice.
    region.textContent = '';
    requestAnimationFrame(() => { region.textContent = message; });
  }
}

// Looking at the inbox: visitors see "Online" and messages count as read only then,
// not because a tab was left open on a shop computer overnight.
function attending() {
  return document.visibilityState === 'visible' && document.hasFocus();
}
