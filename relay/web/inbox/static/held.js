// Emailed replies the relay held because it could not verify who sent them (issue 19):
// each waits in its conversation until the owner releases it (posted as if it had just
// arrived) or discards it. HeldReplies knows every held reply of the owner's sites (GET
// /inbox/api/held, fetched with the thread list and again on each "held" frame), for
// the list's badges and the open thread; HeldView draws the open thread's as cards
// above its log. A held body is a stranger's words: drawn as text, never as markup.
// Emits: 'change' (what is held changed).
import { el, icon, Keyed, reconcile } from './dom.js';

// Refusals whose words the relay chose for the owner: 409 (it cannot be posted, and
// says why) and 404 (decided meanwhile, on another device).
const EXPLAINED = [404, 409];
// Why a reply is held (HeldReply.reason), each said in the page's language.
const REASONS = ['dmarc_fail', 'unauthenticated'];

const domainOf = (address) => address.slice(address.lastIndexOf('@') + 1);

export class HeldReplies extends EventTarget {
  #api;
  #request = 0;
  #byThread = new Map(); // thread id -> [HeldReply], oldest first
  // Decided here: a list asked for before the decision must not bring them back.
  #decided = new Set();

  constructor(api) {
    super();
    this.#api = api;
  }

  // Everything held; an answer overtaken by a newer request is dropped.
  async load() {
    const request = ++this.#request;
    const data = await this.#api.get('/held');
    if (request !== this.#request) return;
    const byThread = new Map();
    for (const reply of data.held) {
      if (this.#decided.has(reply.id)) continue;
      if (!byThread.has(reply.thread)) byThread.set(reply.thread, []);
      byThread.get(reply.thread).push(reply);
    }
    this.#byThread = byThread;
    this.#changed();
  }

  of(thread) {
    return this.#byThread.get(thread) || [];
  }

  count(thread) {
    return this.of(thread).length;
  }

  // Posted: the message, as the thread's messages are. Refused with 409, it stays held.
  async release(reply) {
    const data = await this.#decide(reply, 'release');
    return data.message;
  }

  discard(reply) {
    return this.#decide(reply, 'discard');
  }

  async #decide(reply, action) {
    let data;
    try {
      data = await this.#api.post(`/held/${encodeURIComponent(reply.id)}/${action}`);
    } catch (error) {
      if (error.status === 404) this.load().catch((failed) => console.warn('[porch] the held replies could not load:', failed.message));
      throw error;
    }
    this.#decided.add(reply.id);
    const left = this.of(reply.thread).filter((other) => other.id !== reply.id);
    if (left.length) this.#byThread.set(reply.thread, left);
    else this.#byThread.delete(reply.thread);
    this.#changed();
    return data;
  }

  #changed() {
    this.dispatchEvent(new Event('change'));
  }
}

// The open thread's held replies, one card each: who sent it and when, why it is held,
// its text, and Release / Discard.
export class HeldView {
  #text;
  #handlers;
  #cards = new Keyed();

  // handlers: {onRelease(reply), onDiscard(reply)}, each a Promise.
  constructor(text, handlers) {
    this.#text = text;
    this.#handlers = handlers;
    this.root = el('div', { class: 'held-list', hidden: true });
    this.onFocusLost = null; // () => focus something else, when the last card goes
  }

  render(replies) {
    const cards = replies.map((reply) => this.#cards.get(reply.id, () => this.#card(reply)));
    reconcile(this.root, cards);
    this.#cards.prune();
    this.root.hidden = !cards.length;
  }

  #card(reply) {
    const text = this.#text;
    const t = text.t;
    const received = new Date(reply.received_at);
    const heading = `held-${reply.id}`;
    // Plain text, links not made clickable: who wrote it is exactly what is in doubt.
    const body = el('div', { class: 'held-body' }, reply.body);
    const release = el('button', { type: 'button', class: 'primary' }, t('held.release'));
    const discard = el('button', { type: 'button', class: 'danger' }, t('held.discard'));
    const error = el('p', { class: 'error', role: 'alert' });
    const card = el('section', { class: 'held', 'aria-labelledby': heading },
      el('h3', { id: heading }, icon('alert'), el('span', {}, t('held.title'))),
      el('p', { class: 'held-who' },
        t(reply.author === 'visitor' ? 'held.from_visitor' : 'held.from_owner', { sender: reply.sender }), ' · ',
        el('time', { datetime: reply.received_at, title: text.full(received) }, `${text.day(received)}, ${text.time(received)}`)),
      REASONS.includes(reply.reason) ? el('p', { class: 'held-reason' }, t(`held.reason.${reply.reason}`, { domain: domainOf(reply.sender) })) : null,
      // What the checks found, for whoever looks after the mail: the relay's own words,
      // in English whatever the page's language (as in its logs and `porch mail inspect`).
      reply.detail ? el('details', { class: 'held-technical' },
        el('summary', {}, t('held.technical')),
        el('p', { class: 'held-detail', lang: 'en' }, reply.detail)) : null,
      body,
      el('div', { class: 'row' }, release, discard),
      error);
    // A disabled button drops its focus: it goes back to the button if the card stays,
    // else to the next card, else away (onFocusLost).
    const lost = () => !document.activeElement || document.activeElement === document.body;
    const decide = async (button, handler) => {
      error.textContent = '';
      release.disabled = discard.disabled = true;
      try {
        await handler(reply);
      } catch (failed) {
        if (failed.status === 401) return;
        error.textContent = EXPLAINED.includes(failed.status) ? failed.message : t(failed.status ? 'error.generic' : 'error.network');
      } finally {
        release.disabled = discard.disabled = false;
        if (lost() && card.isConnected) button.focus();
        else if (lost()) this.#focusNext();
      }
    };
    release.addEventListener('click', () => decide(release, this.#handlers.onRelease));
    discard.addEventListener('click', () => {
      if (confirm(t('held.discard_confirm'))) decide(discard, this.#handlers.onDiscard);
    });
    return card;
  }

  #focusNext() {
    const next = this.root.querySelector('button');
    if (next) next.focus();
    else this.onFocusLost?.();
  }
}
