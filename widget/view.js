// The panel's DOM: built once with createElement, updated with textContent only.
import { dayLabel, renderText, sameDay, timeLabel } from './text.js';

const EMAIL = /^[^@\s]+@[^@\s]+\.[^@\s]+$/;
const MENU = ['download_text', 'download_json', 'delete', 'sign_out', 'sign_out_all']; // menu.<action> in the catalogue

export class View {
  constructor(root, t) {
    this.root = root;
    this.t = t;
    this.panel = el('section', { class: 'panel', role: 'dialog', 'aria-modal': 'false', 'aria-labelledby': 'porch-title', hidden: '' });
    this.title = el('h2', { id: 'porch-title' });
    this.availability = el('p', { class: 'availability' });
    this.closeButton = el('button', { type: 'button', class: 'close' }, '×');
    this.menuButton = el('button', { type: 'button', class: 'more', 'aria-haspopup': 'menu', 'aria-expanded': 'false', 'aria-controls': 'porch-menu', hidden: '' }, '⋯');
    this.menu = el('div', { class: 'menu', id: 'porch-menu', role: 'menu', hidden: '' },
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
    this.composer = el('form', { class: 'composer' }, this.input, this.sendButton);
    this.handoffToggle = el('button', { type: 'button', class: 'link', 'aria-expanded': 'false', 'aria-controls': 'porch-handoff' });
    this.handoff = this.#handoffForm();
    this.footer = el('div', { class: 'footer', hidden: '' }, this.handoffToggle, this.handoff);
    this.panel.append(
      el('header', {}, this.title, this.availability, this.menuButton, this.closeButton, this.menu),
      this.log, this.typingLine, this.notice, this.alert, this.confirm, this.contact, this.composer, this.footer,
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
  render({ greeting, messages, outbox, ownerReadSeq, language, siteName, online, onRetry }) {
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

  #node(key, author, text, who) {
    return this.#keyed(key, () => {
      const body = el('div', { class: 'bubble' }, el('span', { class: 'sr-only' }, `${who}: `));
      renderText(body, text);
      return el('div', { class: `message ${author}` }, body, el('div', { class: 'meta' }));
    });
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

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  node.append(...children);
  return node;
}
