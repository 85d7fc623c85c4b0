// Messaging apps in the open thread: which app a message came from, the customer's
// chats (in the thread's header), what became of the latest send on each channel
// (under the owner's last reply), and, once the app's reply window has closed, a notice
// that offers the approved template instead of a reply that would fail (or, for an app
// without templates, says to wait for the customer).
import { el, icon } from './dom.js';

export const APPS = ['telegram', 'whatsapp', 'messenger'];
// Sends that carry the owner's words to the customer (a resume link is the visitor's
// own errand, and the owners' notifications are not about the customer at all).
const REPLY_KINDS = new Set(['visitor_notify', 'template']);
const IN_FLIGHT = new Set(['pending', 'sending']);
const RECEIPTS_SHOWN = new Set(['delivered', 'read']); // else "sent" says it all
const DAY = 24 * 3600 * 1000;

// "on WhatsApp" next to the author of a message written there; "by email" for email.
export function viaBadge(via, t) {
  if (via === 'email') return el('span', { class: 'via' }, t('message.via_email'));
  if (!APPS.includes(via)) return null;
  return el('span', { class: `via via-app app-${via}` }, t('message.via_app', { app: t(`app.${via}`) }));
}

// "WhatsApp · Ada Lovelace · +33 6 12 34 56 78": one per chat, the last written first.
export function chatItems(channels, text) {
  const t = text.t;
  return channels.map((chat) => el('li', {
    class: `chat app-${chat.kind}`,
    title: chat.last_written_at ? t('chats.last_written', { when: text.relativeLong(new Date(chat.last_written_at)) }) : null,
  }, [t(`app.${chat.kind}`), chat.name, chat.handle].filter(Boolean).join(' · ')));
}

// The sends worth showing, newest first: the latest reply on each channel, and a
// template sent since (a reply's failure stays in view after the template went).
function latest(deliveries) {
  const replied = new Set();
  const templated = new Set();
  return deliveries.filter(({ kind, channel }) => {
    if (!REPLY_KINDS.has(kind) || replied.has(channel)) return false;
    const seen = kind === 'template' ? templated : replied;
    if (seen.has(channel)) return false;
    seen.add(channel);
    return true;
  });
}

// Those sends in words: [{text, failed}]. One cancelled had nothing left to say (the
// customer saw the reply on the site meanwhile): not shown.
export function deliveryStates(deliveries, t) {
  const states = [];
  for (const delivery of latest(deliveries)) {
    const state = deliveryState(delivery, t);
    if (state) states.push({ ...state, text: delivery.kind === 'template' ? t('delivery.template', { state: state.text }) : state.text });
  }
  return states;
}

function deliveryState({ channel, status, receipt, error }, t) {
  const on = channel === 'email' ? t('delivery.by_email') : t('delivery.on_app', { app: t(`app.${channel}`) });
  if (status === 'failed' || receipt === 'failed') {
    return { failed: true, text: error ? t('delivery.failed', { on, reason: error }) : t('delivery.failed_plain', { on }) };
  }
  if (status === 'sent') return { failed: false, text: t(`delivery.${RECEIPTS_SHOWN.has(receipt) ? receipt : 'sent'}`, { on }) };
  // A send still in flight with an error has failed before and is being tried again:
  // say why, rather than "Queued" for the hours its retries may take.
  if (IN_FLIGHT.has(status) && error) return { failed: false, text: t('delivery.retrying', { on, reason: error }) };
  if (IN_FLIGHT.has(status)) return { failed: false, text: t(`delivery.${status}`, { on }) };
  return null; // cancelled
}

export function deliveryNodes(states) {
  return states.map(({ text, failed }) => el('p', { class: failed ? 'delivery failed' : 'delivery' }, failed ? icon('alert') : null, el('span', {}, text)));
}

// Is a send still queued or on its way (worth looking again soon)?
export function inFlight(deliveries) {
  return latest(deliveries).some((delivery) => IN_FLIGHT.has(delivery.status));
}

// Above the reply box when the chat the customer last wrote from (where the next reply
// goes) no longer takes free-form replies: say so, and offer the approved template.
export class WindowNotice {
  #text;
  #onTemplate;
  #shown = ''; // what the notice says now: redrawn (and its result cleared) on change
  #thread = null;
  #chat = null;

  constructor(text, onTemplate) {
    this.#text = text;
    this.#onTemplate = onTemplate; // (thread id, channel id) => Promise
    const t = text.t;
    this.message = el('p');
    this.button = el('button', { type: 'button', class: 'secondary' }, t('window.send_template'));
    this.sent = el('span', { class: 'saved', role: 'status' });
    this.error = el('p', { class: 'error', role: 'alert' });
    this.root = el('div', { class: 'window-notice', hidden: true },
      this.message, el('div', { class: 'row' }, this.button, this.sent), this.error);
    this.button.addEventListener('click', () => this.#send());
  }

  // `channels`: the thread's chats, the last written first.
  render(thread, channels) {
    const chat = channels[0];
    const closed = Boolean(chat && !chat.window_open);
    this.root.hidden = !closed;
    const shown = closed ? JSON.stringify([thread.id, chat.id, chat.template, chat.templates]) : '';
    if (shown === this.#shown) return;
    this.#shown = shown;
    this.sent.textContent = this.error.textContent = '';
    this.#thread = thread.id;
    this.#chat = chat;
    if (!closed) return;
    const t = this.#text.t;
    const app = t(`app.${chat.kind}`);
    this.message.textContent = this.#says(chat, thread, app);
    this.button.hidden = !chat.template;
  }

  #says(chat, thread, app) {
    const t = this.#text.t;
    if (chat.template) return t('window.closed', { app });
    if (chat.templates) return t('window.no_template', { app, site: thread.site, kind: chat.kind });
    // An app with no templates (Messenger): nothing reaches the chat until the customer
    // writes again. Its window, in days, is from their last message to its close.
    const days = Math.round((Date.parse(chat.window_closes_at) - Date.parse(chat.last_written_at)) / DAY);
    return t('window.wait', { app, days });
  }

  async #send() {
    const t = this.#text.t;
    this.sent.textContent = this.error.textContent = '';
    this.button.disabled = true;
    try {
      await this.#onTemplate(this.#thread, this.#chat.id);
      this.sent.textContent = t('window.template_sent');
    } catch (error) {
      if (error.status === 401) return;
      // 409 (the customer wrote meanwhile), 422 (no template), 404: the relay says why.
      this.error.textContent = [404, 409, 422].includes(error.status) ? error.message : t(error.status ? 'error.generic' : 'error.network');
    } finally {
      this.button.disabled = false;
    }
  }
}
