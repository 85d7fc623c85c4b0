// The panel's DOM: built once with createElement, updated with textContent only.
import { dayLabel, renderText, sameDay, timeLabel } from './text.js';

const EMAIL = /^[^@\s]+@[^@\s]+\.[^@\s]+$/;
const MENU = ['download_text', 'download_json', 'delete', 'sign_out', 'sign_out_all']; // menu.<action> in the catalogue
const APPS = ['telegram', 'whatsapp', 'messenger']; // channel kinds the catalogue has a menu.continue_<kind> for
// Feather's paperclip (MIT); stroked in styles.css.
const PAPERCLIP = '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="m21 11-9 9a6 6 0 0 1-8.5-8.5l9-9a4 4 0 0 1 5.7 5.7l-9 9a2 2 0 0 1-2.9-2.9l8.5-8.4"/></svg>';

export class View {
  // channels: the site's messaging apps, from its public config ([{id, kind}]).
  constructor(root, t, channels = []) {
    this.root = root;
    this.t = t;
    this.panel = el('section', { class: 'panel', role: 'dialog', 'aria-modal': 'false', 'aria-labelledby': 'porch-title', hidden: '' });
    this.title = el('h2', { id: 'porch-title' });
    this.availability = el('p', { class: 'availability' });
    this.closeButton = el('button', { type: 'button', class: 'close' }, '×');
    this.menuButton = el('button', { type: 'button', class: 'more', 'aria-haspopup': 'menu', 'aria-expanded': 'false', 'aria-controls': 'porch-menu', hidden: '' }, '⋯');
    // "Continue on Telegram" and co. are real links: privacy.js gives each a code as the menu opens.
    this.menu = el('div', { class: 'menu', id: 'porch-menu', role: 'menu', hidden: '' },
      ...channels.filter((channel) => APPS.includes(channel.kind)).map((channel) => el('a', {
        role: 'menuitem', tabindex: '-1', target: '_blank', rel: 'noopener',
        'data-action': `continue_${channel.kind}`, 'data-channel': channel.id })),
      ...MENU.map((action) => el('button', { type: 'button', role: 'menuitem', tabindex: '-1', 'data-action': action })));
    this.log = el('div', { class: 'log', role: 'log', 'aria-live': 'polite', 'aria-relevant': 'additions text' });
    this.typingLine = el('p', { class: 'typing', hidden: '', 'aria-live': 'polite' });
    this.notice = el('p', { class: 'notice', hidden: '', role: 'status' });
    this.alert = el('p', { class: 'alert', role: 'alert' });
    this.confirmText = el('p', { id: 'porch-confirm-text' });
    this.confirmCancel = el('button', { type: 'button', class: 'secondary' });
    this.confirmOk = el('button', { type: 'button', class: 'danger' });
    this.confirm = el('div', { class: 'confirm', role: 'group', 'aria-labelledby': 'porch-confirm-text', hidden: '' },
      this.confirmText, el('div', { class: 'row' }, this.confirmCancel, this.confirmOk));
    this.contact = this.#contactForm();
    this.input = el('textarea', { rows: '1', maxlength: '4000', enterkeyhint: 'send' });
    this.sendButton = el('button', { type: 'submit', class: 'primary' });
    this.attachButton = el('button', { type: 'button', class: 'attach' });
    this.attachButton.innerHTML = PAPERCLIP; // a constant
    // The chooser behind the paperclip; files.js sets what it accepts, by the site's file types.
    this.fileInput = el('input', { type: 'file', multiple: '', hidden: '' });
    this.composer = el('form', { class: 'composer' }, this.input, this.sendButton);
    this.composerRow = el('div', { class: 'composer-row' }, this.attachButton, this.fileInput, this.composer);
    this.handoffToggle = el('button', { type: 'button', class: 'link', 'aria-expanded': 'false', 'aria-controls': 'porch-handoff' });
    this.handoff = this.#handoffForm();
    this.footer = el('div', { class: 'footer', hidden: '' }, this.handoffToggle, this.handoff);
    this.panel.append(
      el('header', {}, this.title, this.availability, this.menuButton, this.closeButton, this.menu),
      this.log, this.typingLine, this.notice, this.alert, this.confirm, this.contact, this.composerRow, this.footer,
    );
    root.append(this.panel);
  }

  #contactForm() {
    this.contactText = el('p');
    this.contactName = el('input', { type: 'text', autocomplete: 'name', maxlength: '80' });
    this.contactEmail = el('input', { type: 'email', autocomplete: 'email', required: '', maxlength: '254' });
    this.contactSave = el('button', { type: 'submit', class: 'primary' });
    this.contactSkip = el('button', { type: 'button', class: 'secondary' });
    this.contactError = el('p', { role: 'alert' });
    return el('form', { class: 'contact', hidden: '', novalidate: '' },
      this.contactText, el('div', { class: 'row' }, this.contactName, this.contactEmail),
      this.contactError, el('div', { class: 'row' }, this.contactSkip, this.contactSave));
  }

  // "Continue on another device": an address to email a one-time link to.
  #handoffForm() {
    this.handoffText = el('p', { id: 'porch-handoff-text' });
    this.handoffEmail = el('input', { type: 'email', autocomplete: 'email', required: '', maxlength: '254', 'aria-describedby': 'porch-handoff-text' });
    this.handoffSend = el('button', { type: 'submit', class: 'primary' });
    this.handoffCancel = el('button', { type: 'button', class: 'secondary' });
    this.handoffError = el('p', { role: 'alert' });
    return el('form', { class: 'handoff', id: 'porch-handoff', hidden: '', novalidate: '' },
      this.handoffText, this.handoffEmail, this.handoffError,
      el('div', { class: 'row' }, this.handoffCancel, this.handoffSend));
  }

  // Every user-facing string, from the catalogue: called again on setLanguage.
  label(site) {
    const t = this.t;
    this.title.textContent = site.name;
    this.closeButton.setAttribute('aria-label', t('panel.close'));
    this.menuButton.setAttribute('aria-label', t('menu.open'));
    this.menu.setAttribute('aria-label', t('menu.open'));
    for (const item of this.menuItems()) item.textContent = t(`menu.${item.dataset.action}`);
    this.confirmCancel.textContent = t('handoff.cancel');
    this.input.setAttribute('aria-label', t('composer.label'));
    this.input.placeholder = t('composer.placeholder');
    this.sendButton.textContent = t('composer.send');
    this.attachButton.setAttribute('aria-label', t('attach.add'));
    this.contactText.textContent = t('contact.offer');
    this.contactName.placeholder = t('contact.name');
    this.contactName.setAttribute('aria-label', t('contact.name'));
    this.contactEmail.placeholder = t('contact.email');
    this.contactEmail.setAttribute('aria-label', t('contact.email'));
    this.contactSave.textContent = t('contact.save');
    this.contactSkip.textContent = t('contact.skip');
    this.handoffToggle.textContent = t('handoff.open');
    this.handoffText.textContent = t('handoff.offer');
    this.handoffEmail.placeholder = t('contact.email');
    this.handoffEmail.setAttribute('aria-label', t('contact.email'));
    this.handoffSend.textContent = t('handoff.send');
    this.handoffCancel.textContent = t('handoff.cancel');
  }

  // The header's status line: plain text (no live region: it is not news to announce).
  showStatus(text, online) {
    this.availability.textContent = text;
    this.availability.classList.toggle('online', online);
  }

  menuItems() {
    return [...this.menu.children];
  }

  appLinks() {
    return this.menu.querySelectorAll('a');
  }

  contactValues() {
    const email = this.email(this.contactEmail, this.contactError);
    return email && { name: this.contactName.value.trim(), email };
  }

  // The address typed in `input`, or '' with the reason shown in `error`.
  email(input, error) {
    const email = input.value.trim();
    const valid = EMAIL.test(email);
    error.textContent = valid ? '' : this.t('contact.invalid');
    input.setAttribute('aria-invalid', String(!valid));
    return valid ? email : '';
  }

  // Bring the log up to date. Nodes are keyed (client_id, else seq) and reused, so a
  // message going from "sending" to stored keeps its node, and the live region only
  // announces what is really new.
  // parts: the chat's parts; one that has draw() adds to a message (files.js its files).
  render({ greeting, messages, outbox, ownerReadSeq, language, siteName, online, onRetry, parts }) {
    const stick = this.log.scrollHeight - this.log.scrollTop - this.log.clientHeight < 40;
    const t = this.t;
    const wanted = [];
    if (greeting) wanted.push(this.#node('greeting', 'owner', greeting, siteName));
    const lastVisitor = messages.findLast((m) => m.author === 'visitor');
    let previous = null;
    for (const message of messages) {
      const date = new Date(message.created_at);
      if (!previous || !sameDay(previous, date)) {
        const day = dayLabel(date, language, t);
        wanted.push(this.#keyed(`day:${day}`, () => el('div', { class: 'day', role: 'separator' }, day)));
      }
      previous = date;
      const who = message.author === 'visitor' ? t('author.you') : siteName;
      const node = this.#node(message.client_id ? `c:${message.client_id}` : `s:${message.seq}`, message.author, message.body, who);
      node.classList.remove('pending');
      node.dataset.seq = message.seq;
      const meta = [el('time', { datetime: message.created_at }, timeLabel(date, language))];
      if (message === lastVisitor && ownerReadSeq >= message.seq) meta.push(el('span', { class: 'seen' }, `· ${t('status.seen')}`));
      node.querySelector('.meta').replaceChildren(...meta);
      for (const part of parts) part.draw?.(node, message);
      wanted.push(node);
    }
    for (const item of outbox) {
      const node = this.#node(`c:${item.client_id}`, 'visitor', item.body, t('author.you'));
      node.classList.add('pending');
      const meta = [];
      if (item.failed) {
        const reason = { too_large: 'error.too_large', rate_limited: 'error.rate_limited', forbidden_origin: 'error.forbidden' }[item.error];
        meta.push(el('span', { class: 'failed' }, `${t('status.failed')}${reason ? ` — ${t(reason)}` : ''}`));
        const retry = el('button', { type: 'button' }, t('status.retry'));
        retry.addEventListener('click', () => onRetry(item.client_id));
        meta.push(retry);
      } else {
        meta.push(el('span', {}, t(online ? 'status.sending' : 'status.queued')));
      }
      node.querySelector('.meta').replaceChildren(...meta);
      for (const part of parts) part.draw?.(node, item, true);
      wanted.push(node);
    }
    const current = [...this.log.children];
    const isPrefix = current.length <= wanted.length && current.every((node, i) => node === wanted[i]);
    if (isPrefix) this.log.append(...wanted.slice(current.length));
    else this.log.replaceChildren(...wanted);
    const keep = new Set(wanted);
    for (const [key, node] of this.nodes) if (!keep.has(node)) this.nodes.delete(key);
    if (stick) this.log.scrollTop = this.log.scrollHeight;
  }

  nodes = new Map();

  #keyed(key, make) {
    let node = this.nodes.get(key);
    if (!node) {
      node = make();
      this.nodes.set(key, node);
    }
    return node;
  }

  // The text of a node may change: a first message with files gives its text away to
  // the message that starts the conversation. Empty (files only): no bubble to see.
  #node(key, author, text, who) {
    const node = this.#keyed(key, () => el('div', { class: `message ${author}` }, el('div', { class: 'bubble' }), el('div', { class: 'meta' })));
    const body = node.firstChild;
    if (node.text !== text) {
      node.text = text;
      body.replaceChildren(el('span', { class: 'sr-only' }, `${who}: `));
      renderText(body, text);
      body.classList.toggle('sr-only', !text); // still says who sent the files
    }
    return node;
  }

  scrollToEnd() {
    this.log.scrollTop = this.log.scrollHeight;
  }

  showTyping(text) {
    this.typingLine.textContent = text;
    this.typingLine.hidden = !text;
  }

  showNotice(text) {
    this.notice.textContent = text || '';
    this.notice.hidden = !text;
  }

  autosize() {
    this.input.style.height = 'auto'; // CSSOM writes are allowed under a strict CSP
    this.input.style.height = `${Math.min(this.input.scrollHeight + 2, 140)}px`;
  }

  focusables() {
    return [...this.panel.querySelectorAll('button, textarea, input, a[href]')]
      .filter((node) => !node.closest('[hidden]') && !node.disabled);
  }
}

export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  node.append(...children);
  return node;
}
