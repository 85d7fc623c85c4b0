// The panel and the keyboard: open and close (the launcher says which), Escape, and on
// a phone, where the panel covers the page, Tab kept inside it.
import { Controller } from './controller.js';

const PHONE_WIDTH = 480; // px; at or below, styles.css shows the panel full screen

export class Panel extends Controller {
  #keys;

  // keys(event): true when a part open inside the panel (the menu) took the key first.
  constructor(chat, keys) {
    super(chat);
    this.#keys = keys;
  }

  connect() {
    super.connect();
    const { view, root } = this.chat;
    this.listen(view.closeButton, 'click', () => this.close());
    this.listen(root, 'keydown', (event) => this.#onKey(event));
  }

  get isOpen() { return !this.chat.view.panel.hidden; }

  open() {
    const chat = this.chat;
    if (this.isOpen || !chat.emit('open', undefined, true)) return;
    this.#show(true);
    chat.render();
    chat.view.scrollToEnd();
    chat.view.input.focus();
    chat.conversation.markRead(); // opening the panel is reading it, focused or not
    chat.attention.attend();
  }

  close() {
    const chat = this.chat;
    if (!this.isOpen || !chat.emit('close', undefined, true)) return;
    this.#show(false);
    chat.launcher.focus();
    chat.attention.attend();
  }

  #show(open) {
    this.chat.view.panel.hidden = !open;
    this.chat.element.toggleAttribute('open', open);
    this.chat.launcher.setAttribute('aria-expanded', String(open));
  }

  #onKey(event) {
    if (this.#keys(event) || !this.isOpen) return;
    if (event.key === 'Escape') {
      event.preventDefault();
      this.close();
    } else if (event.key === 'Tab' && innerWidth <= PHONE_WIDTH) {
      const items = this.chat.view.focusables();
      const index = items.indexOf(this.chat.root.activeElement);
      const next = event.shiftKey ? (index <= 0 ? items.length - 1 : index - 1) : (index + 1) % items.length;
      event.preventDefault();
      items[next]?.focus();
    }
  }
}
