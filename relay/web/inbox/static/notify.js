// Browser notifications for new visitor messages. Permission is asked only when the
// owner clicks "Enable notifications" (browsers ignore or penalise a prompt on load,
// and it is rude); once granted, a message shows a notification when the page is
// hidden or another thread is open. One notification per thread (tag): a newer
// message replaces the older one instead of piling up.

const BODY_MAX = 180; // characters of the message shown; the rest is in the inbox

export class Notifier {
  #button;
  #onOpen;

  constructor(button, onOpen) {
    this.#button = button;
    this.#onOpen = onOpen; // (threadId) => void: the owner clicked a notification
    this.supported = 'Notification' in window;
    button.addEventListener('click', () => this.#ask());
    this.refresh();
  }

  get granted() {
    return this.supported && Notification.permission === 'granted';
  }

  // The button is there while the browser can still ask.
  refresh() {
    this.#button.hidden = !this.supported || Notification.permission !== 'default';
  }

  async #ask() {
    try {
      await Notification.requestPermission();
    } catch {
      // Very old browsers only take a callback; they are not supported here.
    }
    this.refresh();
  }

  show({ thread, title, body }) {
    if (!this.granted) return;
    const text = body.length > BODY_MAX ? `${body.slice(0, BODY_MAX - 1)}…` : body;
    try {
      const notification = new Notification(title, { body: text, tag: thread, lang: document.documentElement.lang });
      notification.onclick = () => {
        window.focus();
        this.#onOpen(thread);
        notification.close();
      };
    } catch (error) {
      // Android Chrome allows notifications only from a service worker: skip quietly.
      console.warn('[porch] notification not shown:', error.message);
    }
  }
}
