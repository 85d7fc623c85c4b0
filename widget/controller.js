// What every part of the chat shares: a symmetric lifecycle (details-dialog-element's
// rule). connect() adds listeners through one AbortController; disconnect() aborts it,
// and a part that adds timers, sockets or channels stops them in its own disconnect().
// The <porch-chat> element can be removed and put back: each time, all of it goes and
// comes back.
export class Controller {
  #abort = null;

  constructor(chat) {
    this.chat = chat;
  }

  connect() {
    this.#abort = new AbortController();
  }

  disconnect() {
    this.#abort?.abort();
    this.#abort = null;
  }

  get signal() { return this.#abort?.signal; }

  listen(target, type, handler) {
    target.addEventListener(type, handler, { signal: this.#abort.signal });
  }
}
