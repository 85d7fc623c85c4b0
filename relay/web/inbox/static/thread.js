// The open thread: who the visitor is, the whole history (day separators, author
// labels, system messages apart, "Seen"), the visitor's typing, and the reply box
// (Enter sends, Shift+Enter breaks the line, grows with its text), with files chosen,
// dropped or pasted (tray.js) and shown in messages (files.js).
// Message nodes are keyed (client_id, else seq) and reused: a reply going from
// "sending" to stored keeps its node. What is about messaging apps is in apps.js; an
// automatic answer is labelled with the question it answered, and any reply of the owner
// can be saved as one (answers.js). Emailed replies held until the owner decides come
// as cards above the log (held.js).
import { answerLabel } from './answers.js';
import { chatItems, deliveryNodes, deliveryStates, viaBadge, WindowNotice } from './apps.js';
import { el, icon, iconButton, Keyed, reconcile } from './dom.js';
import { fileNodes, LINK_FRESH_FOR, MB, renewLinks } from './files.js';
import { HeldView } from './held.js';
import { acceptFor, MAX_FILES, Tray, TrayView } from './tray.js';
import { externalLink, renderText, sameDay } from './text.js';
import { pagePath } from './list.js';

const EMAIL = /^[^@\s]+@[^@\s]+\.[^@\s]+$/;
const REPLY_MAX_HEIGHT = 200; // px; the reply box grows up to this, then scrolls
const STICK_WITHIN = 60; // px from the bottom: new messages keep the log scrolled down

export class ThreadView {
  #text;
  #nodes = new Keyed();
  #handlers;
  id = null;

  constructor(text, handlers) {
    this.#text = text;
    // {onSend(body, files), onInput(), onToggleStatus(), onBack(), onRetry(clientId),
    // onTemplate(thread, channel), onUpload(thread, file, options), onRenewLinks(seq), announce(text),
    // answersOf(site, id) (a Map of the site's answers by id, or null), onSaveAnswer(seq),
    // onRelease(reply), onDiscard(reply) (a held reply)}
    this.#handlers = handlers;
    const t = text.t;
    this.empty = el('div', { class: 'empty-state' },
      icon('inbox'), el('h2', {}, t('thread.none')), el('p', {}, t('thread.none_hint')));
    this.back = iconButton('back', t('thread.back'), { class: 'icon-button back' });
    this.title = el('h2', { id: 'thread-title' });
    this.subtitle = el('p', { class: 'subtitle' });
    this.chats = el('ul', { class: 'chats', 'aria-label': t('chats.label'), hidden: true });
    this.notice = new WindowNotice(text, (thread, channel) => this.#handlers.onTemplate(thread, channel));
    this.held = new HeldView(text, {
      onRelease: (reply) => this.#handlers.onRelease(reply),
      onDiscard: (reply) => this.#handlers.onDiscard(reply),
    });
    this.held.onFocusLost = () => this.input.focus();
    this.statusLabel = el('span');
    this.statusIcon = el('span', { class: 'status-icon' });
    this.statusButton = el('button', { type: 'button', class: 'secondary status-button', 'aria-keyshortcuts': 'e' }, this.statusIcon, this.statusLabel);
    this.card = el('dl');
    this.cardTitle = el('h3', { id: 'visitor-title' });
    this.aside = el('aside', { class: 'visitor-card', 'aria-labelledby': 'visitor-title' }, this.cardTitle, this.card);
    // Announced through the page's one live region instead, so not live itself.
    this.log = el('div', { class: 'log', role: 'log', 'aria-live': 'off', 'aria-labelledby': 'thread-title', tabindex: '0' });
    this.typingLine = el('p', { class: 'typing', hidden: true });
    this.input = el('textarea', { id: 'reply', rows: '1', maxlength: '4000', enterkeyhint: 'send', 'aria-keyshortcuts': 'r', 'aria-describedby': 'reply-hint' });
    this.sendButton = el('button', { type: 'submit', class: 'primary send' }, icon('send'), el('span', {}, t('reply.send')));
    this.inputLabel = el('label', { for: 'reply', class: 'sr-only' });
    this.tray = new TrayView(text);
    this.tray.onFocusLost = () => this.input.focus();
    this.attachButton = iconButton('paperclip', t('attach.button'), { class: 'icon-button attach' });
    this.fileInput = el('input', { type: 'file', multiple: true, hidden: true, tabindex: '-1', 'aria-label': t('attach.button'), accept: acceptFor() });
    this.composer = el('form', { class: 'composer' },
      this.tray.root, this.inputLabel, this.attachButton, this.fileInput, this.input, this.sendButton,
      el('p', { id: 'reply-hint', class: 'hint' }, t('reply.hint')));
    this.conversation = el('div', { class: 'conversation', 'data-drop': t('attach.drop') }, this.held.root, this.log, this.typingLine, this.notice.root, this.composer);
    this.pane = el('div', { class: 'thread', hidden: true },
      el('header', { class: 'thread-head' }, this.back,
        el('div', { class: 'titles' }, this.title, this.subtitle, this.chats), this.statusButton),
      el('div', { class: 'thread-body' },
        this.conversation,
        this.aside));
    this.root = el('section', { class: 'thread-pane', 'aria-label': t('thread.region') }, this.empty, this.pane);
    this.#wire();
  }

  #wire() {
    const h = this.#handlers;
    this.back.addEventListener('click', () => h.onBack());
    this.statusButton.addEventListener('click', () => h.onToggleStatus());
    this.composer.addEventListener('submit', (event) => {
      event.preventDefault();
      this.#send();
    });
    this.input.addEventListener('keydown', (event) => {
      // Enter sends, Shift+Enter breaks the line; never in the middle of an IME composition.
      if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        this.#send();
      }
    });
    this.input.addEventListener('input', () => {
      this.autosize();
      if (this.input.value.trim()) h.onInput();
    });
    this.log.addEventListener('click', (event) => {
      const retry = event.target.closest('[data-retry]');
      const save = event.target.closest('[data-save-answer]');
      if (retry) h.onRetry(retry.dataset.retry);
      else if (save) h.onSaveAnswer(Number(save.dataset.saveAnswer));
      else this.#follow(event);
    });
    // Neither `error` nor `load` bubbles: caught on the way down.
    this.log.addEventListener('error', (event) => this.#imageFailed(event.target), true);
    this.log.addEventListener('load', (event) => delete event.target.dataset.renewed, true);
    this.#wireFiles();
  }

  // Files come from the paperclip's chooser, a drop anywhere on the thread, or a paste.
  #wireFiles() {
    this.attachButton.addEventListener('click', () => this.fileInput.click());
    this.fileInput.addEventListener('change', () => {
      const files = [...this.fileInput.files];
      this.fileInput.value = ''; // the same file may be chosen again
      this.#attach(files);
    });
    this.pane.addEventListener('paste', (event) => {
      const files = [...(event.clipboardData?.files || [])];
      if (!files.length) return;
      // A copied image alone is attached; copied text that comes with one is pasted too.
      if (!event.clipboardData.types.includes('text/plain')) event.preventDefault();
      this.#attach(files);
    });
    const dragsFiles = (event) => event.dataTransfer?.types.includes('Files');
    this.pane.addEventListener('dragover', (event) => {
      if (!dragsFiles(event)) return;
      event.preventDefault(); // the drop attaches instead of opening the file
      event.dataTransfer.dropEffect = 'copy';
      this.conversation.classList.add('dropping');
    });
    this.pane.addEventListener('dragleave', (event) => {
      if (!this.pane.contains(event.relatedTarget)) this.conversation.classList.remove('dropping');
    });
    this.pane.addEventListener('drop', (event) => {
      this.conversation.classList.remove('dropping');
      if (!event.dataTransfer?.files.length) return;
      event.preventDefault();
      this.#attach([...event.dataTransfer.files]);
    });
  }

  #attach(files) {
    if (!this.id || !files.length) return;
    const left = this.#trayFor(this.id).add(files, this.#limit);
    if (left) this.#handlers.announce(this.#text.t('attach.too_many', { count: MAX_FILES }));
  }

  trays = new Map(); // thread id -> Tray: files chosen for its reply, kept like drafts
  #limit = null; // the open thread's site's largest file, in bytes, when known

  #trayFor(id) {
    let tray = this.trays.get(id);
    if (!tray) {
      tray = new Tray(id, this.#handlers.onUpload);
      this.trays.set(id, tray);
    }
    return tray;
  }

  // A reply goes once its files are up; one that failed must be removed or retried.
  #send() {
    if (!this.id) return;
    const t = this.#text.t;
    const tray = this.#trayFor(this.id);
    if (tray.uploading) return this.#handlers.announce(t('attach.wait'));
    if (tray.failed) return this.#handlers.announce(t('attach.fix'));
    const body = this.input.value.trim();
    if (!body && !tray.items.length) return;
    this.#handlers.onSend(body, tray.take());
    this.input.value = '';
    this.autosize();
    this.log.scrollTop = this.log.scrollHeight;
  }

  autosize() {
    this.input.style.height = 'auto'; // CSSOM writes are allowed under a strict CSP
    this.input.style.height = `${Math.min(this.input.scrollHeight + 2, REPLY_MAX_HEIGHT)}px`;
  }

  // Another thread (or none): start from an empty log, keep a draft per thread.
  select(id) {
    if (id === this.id) return;
    if (this.id) this.drafts.set(this.id, this.input.value);
    this.id = id;
    this.#nodes.clear();
    this.log.replaceChildren();
    this.held.render([]);
    this.empty.hidden = Boolean(id);
    this.pane.hidden = !id;
    this.input.value = (id && this.drafts.get(id)) || '';
    this.autosize();
    this.#scrolled = false;
    this.tray.show(id ? this.#trayFor(id) : null, (item) => {
      this.#handlers.announce(this.#text.t('attach.failed', { name: item.file.name, error: this.tray.describe(item) }));
    });
  }

  drafts = new Map();
  #scrolled = false;

  // thread: ThreadOut; history: {messages, pending, loaded}; siteName: the site's name.
  // site: the site as the session lists it (its settings hold max_file_mb, file_types).
  // held: the thread's held replies, oldest first.
  render({ thread, history, siteName, typing, site, held = [] }) {
    const text = this.#text;
    const t = text.t;
    const visitor = thread.visitor || {};
    const who = visitor.name || visitor.email || t('visitor.anonymous');
    setText(this.title, who);
    const status = t(`thread.status.${thread.status}`);
    setText(this.subtitle, [siteName, status].filter(Boolean).join(' · '));
    setText(this.statusLabel, t(thread.status === 'closed' ? 'thread.reopen' : 'thread.close'));
    if (this.statusIcon.dataset.status !== thread.status) {
      this.statusIcon.dataset.status = thread.status;
      this.statusIcon.replaceChildren(icon(thread.status === 'closed' ? 'reopen' : 'archive'));
    }
    this.statusButton.title = `${t(thread.status === 'closed' ? 'thread.reopen' : 'thread.close')} (e)`;
    this.pane.classList.toggle('closed', thread.status === 'closed');
    setText(this.inputLabel, t('reply.label', { name: who }));
    this.input.placeholder = t('reply.placeholder');
    this.#fileLimits(site?.settings || {});
    this.#renderCard(thread, siteName);
    this.#renderChats(history.channels);
    this.notice.render(thread, history.channels);
    this.held.render(held);
    this.#renderLog(thread, history, siteName, who);
    setText(this.typingLine, typing ? t('thread.typing', { name: who }) : '');
    this.typingLine.hidden = !typing;
  }

  #fileLimits(settings) {
    this.#limit = settings.max_file_mb ? settings.max_file_mb * MB : null;
    this.tray.limit = this.#limit;
    const accept = acceptFor(settings.file_types);
    if (this.fileInput.accept !== accept) this.fileInput.accept = accept;
  }

  #renderCard(thread, siteName) {
    const text = this.#text;
    const t = text.t;
    const v = thread.visitor || {};
    setText(this.cardTitle, t('visitor.title'));
    const facts = JSON.stringify([v, thread.page, thread.created_at, siteName]);
    if (this.card.dataset.facts === facts) return;
    this.card.dataset.facts = facts;
    const rows = [];
    // `secondary`: left out of the one-line summary on narrow screens.
    const row = (label, value, secondary = false) => {
      const attributes = secondary ? { class: 'secondary-row' } : {};
      rows.push(el('dt', attributes, label), el('dd', attributes, value));
    };
    const notGiven = () => el('span', { class: 'muted' }, t('visitor.unknown'));
    row(t('visitor.name'), v.name || notGiven(), !v.name);
    row(t('visitor.email'), !v.email ? notGiven() : EMAIL.test(v.email) ? el('a', { href: `mailto:${encodeURIComponent(v.email)}` }, v.email) : v.email, !v.email);
    if (thread.page) row(t('visitor.page'), externalLink(thread.page, pagePath(thread.page) || thread.page));
    if (siteName) row(t('visitor.site'), siteName, true);
    const firstSeen = v.first_seen || thread.created_at;
    if (firstSeen) row(t('visitor.first_seen'), el('time', { datetime: firstSeen, title: text.full(new Date(firstSeen)) }, text.relativeLong(new Date(firstSeen))), true);
    if (v.language) row(t('visitor.language'), text.languageName(v.language));
    this.card.replaceChildren(...rows);
  }

  // The customer's chats on messaging apps, the one last written from first.
  #renderChats(channels) {
    const shown = JSON.stringify(channels.map((chat) => [chat.id, chat.name, chat.handle, chat.last_written_at]));
    if (this.chats.dataset.shown === shown) return;
    this.chats.dataset.shown = shown;
    this.chats.replaceChildren(...chatItems(channels, this.#text));
    this.chats.hidden = !channels.length;
  }

  #renderLog(thread, history, siteName, who) {
    const text = this.#text;
    const t = text.t;
    const stick = !this.#scrolled || this.log.scrollHeight - this.log.scrollTop - this.log.clientHeight < STICK_WITHIN;
    const messages = history.sorted();
    const lastOwner = messages.findLast((m) => m.author === 'owner');
    // The site's answers, asked for only when an automatic answer is here to label.
    const answered = messages.findLast((m) => m.answer)?.answer;
    const answers = answered ? this.#handlers.answersOf(thread.site, answered) : null;
    const wanted = [];
    let previous = null;
    let lastOwnerNode = null;
    const daySeparator = (date) => {
      if (previous && sameDay(previous, date)) return;
      const label = text.day(date);
      wanted.push(this.#nodes.get(`day:${label}`, () => el('div', { class: 'day' }, el('span', {}, label))));
    };
    for (const message of messages) {
      const date = new Date(message.created_at);
      daySeparator(date);
      previous = date;
      const author = message.author === 'visitor' ? who : message.author === 'owner' ? siteName || t('author.owner') : t('author.system');
      const node = this.#message(message.client_id ? `c:${message.client_id}` : `s:${message.seq}`, message.author, message.body, message.attachments);
      node.classList.remove('pending', 'failed');
      node.dataset.seq = message.seq;
      this.#linkFiles(node, message);
      const label = message.answer ? answerLabel(message.answer, answers, t) : '';
      const saves = message.author === 'owner' && Boolean(message.body);
      update(node.head, JSON.stringify([author, label, saves]), () => [
        el('span', { class: 'author' }, author),
        el('time', { datetime: message.created_at, title: text.full(date) }, text.time(date)),
        viaBadge(message.via, t),
        label ? el('span', { class: 'pill answer-label' }, label) : null,
        saves ? el('button', { type: 'button', class: 'link save-answer', 'data-save-answer': message.seq }, t('answers.save_reply')) : null,
      ]);
      const seen = message === lastOwner && thread.visitor_read_seq >= message.seq;
      update(node.meta, seen ? 'seen' : '', () => (seen ? [icon('check'), t('message.seen')] : []));
      node.meta.hidden = !seen;
      wanted.push(node);
      if (message === lastOwner) lastOwnerNode = node;
    }
    // What became of the replies: under the owner's last one (at the foot without one,
    // as when only a template went).
    const states = deliveryStates(history.deliveries, t);
    if (states.length) {
      const node = this.#nodes.get('deliveries', () => el('div', { class: 'deliveries', role: 'status', 'aria-label': t('delivery.label') }));
      update(node, JSON.stringify(states), () => deliveryNodes(states));
      wanted.splice(lastOwnerNode ? wanted.indexOf(lastOwnerNode) + 1 : wanted.length, 0, node);
    }
    for (const item of history.pending.values()) {
      daySeparator(new Date(item.created_at));
      const node = this.#message(`c:${item.client_id}`, 'owner', item.body, item.attachments);
      this.#linkFiles(node, item);
      node.classList.add('pending');
      node.classList.toggle('failed', Boolean(item.failed));
      const owner = siteName || t('author.owner');
      update(node.head, `pending:${owner}`, () => [el('span', { class: 'author' }, owner)]);
      const state = item.failed ? `failed:${item.error}` : item.acked ? 'sent' : 'sending';
      update(node.meta, state, () => {
        if (!item.failed) return [t(item.acked ? 'message.sent' : 'message.sending')];
        const reason = text.has(`error.${item.error}`) ? ` — ${t(`error.${item.error}`)}` : '';
        return [el('span', {}, t('message.failed') + reason),
          el('button', { type: 'button', class: 'link', 'data-retry': item.client_id }, t('message.retry'))];
      });
      node.meta.hidden = false;
      wanted.push(node);
    }
    if (history.loaded && !messages.length && !history.pending.size) {
      wanted.push(this.#nodes.get('none', () => el('p', { class: 'muted' }, t('thread.no_messages'))));
    }
    reconcile(this.log, wanted);
    this.#nodes.prune();
    if (stick && wanted.length) {
      this.log.scrollTop = this.log.scrollHeight;
      this.#scrolled = history.loaded;
    }
  }

  // A message made only of files shows them without an empty bubble.
  #message(key, author, body, attachments = []) {
    return this.#nodes.get(key, () => {
      const head = el('div', { class: 'message-head' });
      let bubble = null;
      if (body || !attachments.length) {
        bubble = el('div', { class: 'bubble' });
        renderText(bubble, body);
      }
      const files = attachments.length ? el('div', { class: 'files' }, fileNodes(attachments, this.#text)) : null;
      const meta = el('div', { class: 'meta' });
      const node = el('div', { class: `message ${author}` }, head, bubble, files, meta);
      Object.assign(node, { head, meta, files });
      return node;
    });
  }

  // Links renewed since the node was drawn (Threads.renewLinks) are swapped in.
  #linkFiles(node, message) {
    if (!node.files) return;
    const linkedAt = String(message.linkedAt);
    if (node.files.dataset.linkedAt === linkedAt) return;
    if (node.files.dataset.linkedAt) renewLinks(node.files, message.attachments);
    node.files.dataset.linkedAt = linkedAt;
  }

  // A link older than LINK_FRESH_FOR is renewed first, then followed (the click still
  // counts as the owner's, for the new tab, when the relay answers within seconds).
  async #follow(event) {
    const link = event.target.closest('.files a[data-attachment]');
    if (!link) return;
    if (link.dataset.follow) return delete link.dataset.follow; // renewed just now
    const seq = Number(link.closest('.message').dataset.seq);
    if (!seq || Date.now() - Number(link.closest('.files').dataset.linkedAt) < LINK_FRESH_FOR) return;
    event.preventDefault();
    try {
      await this.#handlers.onRenewLinks(seq);
    } catch (error) {
      console.warn('[porch] the links could not be renewed:', error.message);
    }
    link.dataset.follow = '1'; // this time, followed as it is
    link.click();
  }

  // An image that fails to load has most likely outlived its link: renewed once. If
  // the renewed one fails too, the file is gone: no second try until one loads.
  #imageFailed(image) {
    if (image.tagName !== 'IMG' || !image.closest('.files')) return;
    const seq = Number(image.closest('.message').dataset.seq);
    if (image.dataset.renewed || !seq) return;
    image.dataset.renewed = '1';
    this.#handlers.onRenewLinks(seq).catch((error) => console.warn('[porch] the links could not be renewed:', error.message));
  }

  focusReply() {
    if (this.pane.hidden) return;
    this.input.focus();
  }
}

// Rebuild `node`'s children only when `state` changed: a render caused by a typing frame
// must not replace (and unfocus) a Retry button or churn a long history.
function update(node, state, build) {
  if (node.dataset.state === state) return;
  node.dataset.state = state;
  node.replaceChildren(...build().filter(Boolean));
}

function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}
