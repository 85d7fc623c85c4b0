// A reply the visitor has not seen: the unread count (badge, launcher label, page title,
// the 'unread' event), and one chime for all the visitor's tabs of the site. Tabs tell
// each other on a BroadcastChannel whether the visitor reads the open panel there; the
// tab holding a Web Lock is the one that rings.
import { Controller } from './controller.js';

export class Attention extends Controller {
  unread = 0;
  #title = '';
  #tab = crypto.randomUUID();
  #attending = new Set(); // other tabs where the visitor is looking at the open panel
  #channel = null;
  #leader = false;
  #release = null; // lets go of the lock
  #audio = null;

  connect() {
    super.connect();
    const { root, site } = this.chat;
    this.#title = document.title;
    // Browsers let a page start audio only after a user gesture: make the one context
    // the first time the visitor touches the widget, and reuse it.
    for (const type of ['pointerdown', 'keydown']) this.listen(root, type, () => { this.#audio ||= new AudioContext(); });
    for (const type of ['focus', 'blur']) this.listen(window, type, () => this.attend());
    this.listen(document, 'visibilitychange', () => this.attend());
    this.#channel = new BroadcastChannel(`porch:${site.site}`);
    this.#channel.onmessage = ({ data }) => {
      if (data.attending) this.#attending.add(data.tab);
      else this.#attending.delete(data.tab);
    };
    // One connected tab at a time holds this lock: it is the one that rings. Aborted
    // while still waiting, or released on disconnect, it passes to another tab.
    navigator.locks?.request(`porch:${site.site}:sound`, { signal: this.signal }, () => {
      this.#leader = true;
      return new Promise((resolve) => { this.#release = resolve; });
    }).catch(() => {});
  }

  disconnect() {
    super.disconnect();
    this.#channel?.postMessage({ tab: this.#tab, attending: false });
    this.#channel?.close();
    this.#channel = null;
    this.#attending.clear();
    this.#release?.();
    this.#release = null;
    this.#leader = false;
    this.#audio?.close();
    this.#audio = null;
    document.title = this.#title;
  }

  // Is the visitor looking at the open panel here? Then replies are read as they come.
  attend() {
    const attending = this.chat.isOpen && document.visibilityState === 'visible' && document.hasFocus();
    this.#channel?.postMessage({ tab: this.#tab, attending });
    if (attending) this.chat.conversation.markRead();
    this.chat.render();
  }

  // A reply came: ring, unless the visitor is reading it in some tab.
  replied() {
    if (!this.#leader || (this.chat.isOpen && document.hasFocus()) || this.#attending.size) return;
    const element = this.chat.element;
    element.dispatchEvent(new CustomEvent('porch-chat-notify', { bubbles: true, composed: true }));
    const audio = this.#audio;
    if (!audio) return; // the visitor has not touched the widget yet: the badge still shows
    try {
      // A short two-note chime, synthesised: no audio file to fetch.
      const now = audio.currentTime;
      for (const [offset, frequency] of [[0, 880], [0.12, 1320]]) {
        const oscillator = audio.createOscillator();
        const gain = audio.createGain();
        oscillator.frequency.value = frequency;
        gain.gain.setValueAtTime(0.08, now + offset);
        gain.gain.exponentialRampToValueAtTime(0.0001, now + offset + 0.25);
        oscillator.connect(gain).connect(audio.destination);
        oscillator.start(now + offset);
        oscillator.stop(now + offset + 0.25);
      }
    } catch {
      // Audio unavailable (no output device): the badge and title still show.
    }
  }

  // The count from the messages as drawn; the page hears of a change.
  count(messages) {
    const c = this.chat.conversation;
    const unread = messages.filter((m) => m.author !== 'visitor' && m.seq > c.visitorReadSeq).length;
    if (unread !== this.unread) {
      this.unread = unread;
      this.chat.emit('unread', unread);
    }
    const badge = this.chat.root.querySelector('.badge');
    badge.textContent = unread ? String(unread) : '';
    badge.hidden = !unread;
    if (this.signal) document.title = unread ? this.chat.t('title.unread', { count: unread, title: this.#title }) : this.#title;
  }

  // The launcher's accessible name, with the count.
  label() {
    const t = this.chat.t;
    const label = t('launcher.open', { site: this.chat.site.name });
    this.chat.launcher.setAttribute('aria-label', this.unread ? `${label} (${t('launcher.unread', { count: this.unread })})` : label);
  }
}
