// The owner's answers on the visitor's side (#17), a part of the chat that app.js loads
// the first time it is needed: as a visitor types with no conversation yet, up to three
// answers that may be what they ask (picked, one opens in the panel: nothing is sent or
// stored), and under an answer the relay sent by itself, its label and "Talk to a person".
// Questions and answers are the owner's words: set as text, never as markup.
import { Controller } from './controller.js';
import { renderText } from './text.js';
import { el } from './view.js';

// ms after the last keystroke: one request per pause in typing, not one per key.
const PAUSE = 300;
// Characters: the relay suggests nothing for fewer.
const MIN_TEXT = 3;
// This module is served by the relay: its origin is the relay's.
const RELAY = new URL(import.meta.url).origin;
// Styles of what this module draws come with it (as files.js's do).
const CSS = `
.suggestions, .answer { margin: 0 12px 8px; display: grid; gap: 4px; font-size: 13.5px; }
.suggestions[hidden], .answer[hidden] { display: none; }
.suggestions p, .answer p { margin: 0; }
.suggestions p, .answer .from, .automatic { font-size: 12px; color: var(--porch-muted); }
.suggestion { border: 1px solid var(--porch-line); border-radius: 10px; padding: 6px 10px; background: none;
  color: inherit; font: inherit; text-align: left; cursor: pointer; }
.suggestion:hover, .suggestion:focus { background: var(--porch-owner-bubble); }
.answer { gap: 6px; padding: 8px 10px; max-height: 45%; overflow-y: auto; border: 1px solid var(--porch-line);
  border-left: 4px solid var(--porch-accent); border-radius: 10px; }
.answer:focus-visible { outline: 3px solid var(--porch-focus, #1a73e8); }
.answer .question { font-weight: 600; }
.answer .text { white-space: pre-wrap; overflow-wrap: anywhere; }
.answer .row { display: flex; flex-wrap: wrap; gap: 6px; justify-content: flex-end; }
.answer button, .automatic button { height: 30px; font-size: 13px; }
.automatic { display: flex; flex-wrap: wrap; align-items: center; gap: 4px 8px; margin-top: 4px; }
.automatic button { height: 28px; color: var(--porch-fg); }`;

export class Answers extends Controller {
  #list; #title; #answer; #status;
  #found = []; // the suggestions shown, best first
  #text = ''; // what the suggestions are for (or were put away for): asked again when it changes
  #timer = 0;
  #asking = null; // the AbortController of the one request in flight

  constructor(chat) {
    super(chat);
    const { root, view } = chat;
    const sheet = new CSSStyleSheet();
    sheet.replaceSync(CSS);
    root.adoptedStyleSheets = [...root.adoptedStyleSheets, sheet];
    this.#title = el('p', { id: 'porch-suggested' });
    this.#list = el('div', { class: 'suggestions', role: 'group', 'aria-labelledby': 'porch-suggested', hidden: '' });
    this.#answer = el('div', { class: 'answer', role: 'group', tabindex: '-1', 'aria-labelledby': 'porch-answer-from', 'aria-describedby': 'porch-answer-text', hidden: '' });
    // Says how many came, without moving the visitor away from what they type.
    this.#status = el('p', { class: 'sr-only', role: 'status' });
    view.composerRow.before(this.#list, this.#answer, this.#status);
  }

  connect() {
    super.connect();
    const { view, conversation } = this.chat;
    this.listen(view.input, 'input', () => this.#typed());
    this.listen(view.input, 'keydown', (event) => this.#inComposer(event));
    this.listen(this.#list, 'keydown', (event) => this.#inList(event));
    this.listen(this.#list, 'click', (event) => this.#open(this.#found[event.target.closest('button')?.dataset.index]));
    this.listen(this.#answer, 'keydown', (event) => event.key === 'Escape' && this.#done(event));
    this.listen(this.#answer, 'click', (event) => event.target.closest('button') && this.#done());
    // A first message on its way, a conversation started or forgotten: suggestions are for before.
    for (const type of ['change', 'token']) this.listen(conversation, type, () => this.#typed());
    this.#typed(); // the keystroke that loaded this part
  }

  disconnect() {
    super.disconnect();
    this.#stop();
  }

  // -- suggestions while the first message is typed -----------------------------------

  #typed() {
    const { view, conversation } = this.chat;
    const text = view.input.value.trim();
    if (conversation.hasThread || conversation.outbox.length || text.length < MIN_TEXT) {
      this.#text = '';
      return this.#hide();
    }
    if (text === this.#text) return;
    this.#text = text;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#ask(text), PAUSE);
  }

  // An older request still on its way is cancelled: its answer would be stale.
  async #ask(text) {
    this.#asking?.abort();
    const asking = this.#asking = new AbortController();
    let found = [];
    try {
      const response = await fetch(`${RELAY}/v1/sites/${encodeURIComponent(this.chat.site.site)}/suggestions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ text, language: this.chat.conversation.language }),
        credentials: 'omit',
        signal: asking.signal,
      });
      // Refused (429 past the address's limit) or failed: no suggestions, said nowhere.
      if (response.ok) found = (await response.json()).suggestions.slice(0, 3);
    } catch { /* aborted, or the network: nothing to show */ }
    if (asking !== this.#asking) return;
    this.#asking = null;
    this.#show(found);
  }

  #show(found) {
    const t = this.chat.t;
    this.#found = found;
    this.#answer.hidden = true;
    this.#list.hidden = !found.length;
    this.#title.textContent = t('answers.list');
    this.#list.replaceChildren(this.#title, ...found.map((suggestion, index) => el('button', {
      type: 'button', class: 'suggestion', 'data-index': index }, suggestion.question)));
    this.#say(found.length ? t('answers.found', { count: found.length }) : '');
  }

  // Put away: no timer, no request, nothing shown. What was typed stays.
  #hide() {
    clearTimeout(this.#timer);
    this.#asking?.abort();
    this.#asking = null;
    this.#list.hidden = this.#answer.hidden = true;
    this.#say('');
  }

  #stop() {
    this.#hide();
    this.#text = '';
  }

  // The same text set again would be read again.
  #say(text) {
    if (this.#status.textContent !== text) this.#status.textContent = text;
  }

  // Up from the composer's first line reaches the suggestions (as they sit above it);
  // Escape puts them away and leaves the panel open.
  #inComposer(event) {
    const { input } = this.chat.view;
    if (this.#list.hidden && this.#answer.hidden) return;
    if (event.key === 'Escape') this.#done(event);
    else if (event.key === 'ArrowUp' && !this.#list.hidden && !input.value.slice(0, input.selectionStart).includes('\n')) {
      event.preventDefault();
      this.#buttons().at(-1).focus();
    }
  }

  // Arrows, Home and End move between the suggestions; down past the last is the composer.
  #inList(event) {
    const buttons = this.#buttons();
    const index = buttons.indexOf(this.chat.root.activeElement);
    const next = { ArrowDown: index + 1, ArrowUp: Math.max(index - 1, 0), Home: 0, End: buttons.length - 1 }[event.key];
    if (event.key === 'Escape') return this.#done(event);
    if (next === undefined) return;
    event.preventDefault();
    (buttons[next] || this.chat.view.input).focus();
  }

  #buttons() {
    return [...this.#list.querySelectorAll('button')];
  }

  // One suggestion, open in the panel: the owner's answer, marked as theirs (not a message).
  #open(suggestion) {
    if (!suggestion) return;
    const { t, site } = this.chat;
    const text = el('p', { class: 'text', id: 'porch-answer-text' });
    renderText(text, suggestion.answer);
    this.#list.hidden = true;
    this.#answer.hidden = false;
    this.#answer.replaceChildren(
      el('p', { class: 'from', id: 'porch-answer-from' }, t('answers.from', { site: site.name })),
      el('p', { class: 'question' }, suggestion.question),
      text,
      el('div', { class: 'row' },
        el('button', { type: 'button', class: 'primary' }, t('answers.yes')),
        el('button', { type: 'button', class: 'secondary' }, t('answers.ask'))),
    );
    this.#answer.focus();
  }

  // "This answers my question", "I still want to ask" or Escape: all put away until the
  // text changes, nothing sent, and the composer has its draft and the focus back.
  #done(event) {
    event?.preventDefault();
    event?.stopPropagation(); // the panel's Escape would close it
    this.#hide();
    this.chat.view.input.focus();
  }

  // -- automatic answers ----------------------------------------------------------------

  // View.render calls it for each message: under one the relay sent by itself, its label
  // and "Talk to a person", or once the visitor asked for one, that the team knows.
  draw(node, message, sending) {
    if (sending || !message.answer) return;
    const t = this.chat.t;
    let box = node.querySelector('.automatic');
    if (!box) node.querySelector('.meta').before(box = el('div', { class: 'automatic' }));
    const state = this.#handoff(message);
    if (box.state === state) return;
    box.state = state;
    const more = [];
    if (state === 'none') {
      const button = el('button', { type: 'button', class: 'secondary' }, t('answers.person'));
      button.addEventListener('click', () => this.#person());
      more.push(button);
    } else if (state === 'asked') more.push(el('span', {}, t('answers.told')));
    box.replaceChildren(el('span', {}, t('answers.automatic')), ...more);
  }

  // After `message`: 'none' when nobody asked for a person since, 'asked' when the visitor
  // did before any other automatic answer, 'later' when after another one.
  #handoff(message) {
    const { conversation, t } = this.chat;
    const after = [...conversation.sorted().filter((m) => m.seq > message.seq), ...conversation.outbox];
    const asked = after.findIndex((m) => m.body === t('answers.handoff_text'));
    if (asked < 0) return 'none';
    return after.slice(0, asked).some((m) => m.answer) ? 'later' : 'asked';
  }

  // A message as any other (its own client_id: sent once, however often it is retried);
  // the relay never answers it by itself, and the owner is told.
  #person() {
    const { conversation, view, t } = this.chat;
    conversation.send(t('answers.handoff_text'));
    view.scrollToEnd();
    view.input.focus(); // the button it was on is gone
  }
}
