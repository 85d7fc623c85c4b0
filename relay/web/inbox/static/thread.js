// The open thread: who the visitor is, the whole history (day separators, author
// labels, system messages apart, "Seen"), the visitor's typing, and the reply box
// (Enter sends, Shift+Enter breaks the line, grows with its text).
// Message nodes are keyed (client_id, else seq) and reused: a reply going from
// "sending" to stored keeps its node.
import { el, icon, iconButton, Keyed, reconcile } from './dom.js';
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
    this.#handlers = handlers; // {onSend(body), onInput(), onToggleStatus(), onBack(), onRetry(clientId)}
    const t = text.t;
    this.empty = el('div', { class: 'empty-state' },
      icon('inbox'), el('h2', {}, t('thread.none')), el('p', {}, t('thread.none_hint')));
    this.back = iconButton('back', t('thread.back'), { class: 'icon-button back' });
    this.title = el('h2', { id: 'thread-title' });
    this.subtitle = el('p', { class: 'subtitle' });
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
    this.composer = el('form', { class: 'composer' },
      this.inputLabel, this.input, this.sendButton,
      el('p', { id: 'reply-hint', class: 'hint' }, t('reply.hint')));
    this.pane = el('div', { class: 'thread', hidden: true },
      el('header', { class: 'thread-head' }, this.back,
        el('div', { class: 'titles' }, this.title, this.subtitle), this.statusButton),
      el('div', { class: 'thread-body' },
        el('div', { class: 'conversation' }, this.log, this.typingLine, this.composer),
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
      if (retry) h.onRetry(retry.dataset.retry);
    });
  }

  #send() {
    const body = this.input.value.trim();
    if (!body || !this.id) return;
    this.#handlers.onSend(body);
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
    this.empty.hidden = Boolean(id);
    this.pane.hidden = !id;
    this.input.value = (id && this.drafts.get(id)) || '';
    this.autosize();
    this.#scrolled = false;
  }

  drafts = new Map();
  #scrolled = false;

  // thread: ThreadOut; history: {messages, pending, loaded}; siteName: the site's name.
  render({ thread, history, siteName, typing }) {
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
    this.#renderCard(thread, siteName);
    this.#renderLog(thread, history, siteName, who);
    setText(this.typingLine, typing ? t('thread.typing', { name: who }) : '');
    this.typingLine.hidden = !typing;
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

  #renderLog(thread, history, siteName, who) {
    const text = this.#text;
    const t = text.t;
    const stick = !this.#scrolled || this.log.scrollHeight - this.log.scrollTop - this.log.clientHeight < STICK_WITHIN;
    const messages = history.sorted();
    const lastOwner = messages.findLast((m) => m.author === 'owner');
    const wanted = [];
    let previous = null;
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
      const node = this.#message(message.client_id ? `c:${message.client_id}` : `s:${message.seq}`, message.author, message.body);
      node.classList.remove('pending', 'failed');
      node.dataset.seq = message.seq;
      update(node.head, author, () => [
        el('span', { class: 'author' }, author),
        el('time', { datetime: message.created_at, title: text.full(date) }, text.time(date)),
        message.via === 'email' ? el('span', { class: 'via' }, t('message.via_email')) : null,
      ]);
      const seen = message === lastOwner && thread.visitor_read_seq >= message.seq;
      update(node.meta, seen ? 'seen' : '', () => (seen ? [icon('check'), t('message.seen')] : []));
      node.meta.hidden = !seen;
      wanted.push(node);
    }
    for (const item of history.pending.values()) {
      daySeparator(new Date(item.created_at));
      const node = this.#message(`c:${item.client_id}`, 'owner', item.body);
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

  #message(key, author, body) {
    return this.#nodes.get(key, () => {
      const head = el('div', { class: 'message-head' });
      const bubble = el('div', { class: 'bubble' });
      renderText(bubble, body);
      const meta = el('div', { class: 'meta' });
      const node = el('div', { class: `message ${author}` }, head, bubble, meta);
      Object.assign(node, { head, meta });
      return node;
    });
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
