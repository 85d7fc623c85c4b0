// "Notify me on this device", in the settings' Devices tab: this browser subscribes to
// pushes (pwa.js) and the relay keeps it; the owner's devices that take pushes are
// listed, each removable. Signing a device's session out removes it too.
import { el } from './dom.js';
import { pushSupported, subscribe, unsubscribe } from './pwa.js';

export class PushSection {
  #api;
  #text;
  #describe;
  #devices = [];

  // `describe(userAgent, t)`: "Chrome on Android", as the sessions list says it.
  constructor(api, text, describe) {
    this.#api = api;
    this.#text = text;
    this.#describe = describe;
    const t = text.t;
    const supported = pushSupported();
    this.list = el('ul', { class: 'sessions', 'aria-labelledby': 'push-title', hidden: true });
    this.button = el('button', { type: 'button', class: 'primary', hidden: !supported }, t('push.enable'));
    this.error = el('p', { class: 'error', role: 'alert' });
    this.status = el('p', { class: 'saved', role: 'status' });
    this.root = el('section', { class: 'push-devices', 'aria-labelledby': 'push-title' },
      el('h3', { id: 'push-title' }, t('push.title')),
      el('p', { class: 'muted' }, t(supported ? 'push.intro' : 'push.unsupported')),
      this.list,
      el('div', { class: 'push-actions' }, this.error, this.status, this.button));
    this.button.addEventListener('click', () => this.#enable());
    this.list.addEventListener('click', (event) => {
      const button = event.target.closest('[data-device]');
      if (button) this.#remove(button.dataset.device, button);
    });
  }

  // The owner's devices as the relay has them now (each time the settings open).
  async load() {
    try {
      this.#devices = (await this.#api.pushDevices()).devices;
      this.#render();
    } catch (error) {
      this.#failed(error);
    }
  }

  #render() {
    const text = this.#text;
    const t = text.t;
    const devices = [...this.#devices].sort((a, b) => Number(b.this_session) - Number(a.this_session));
    this.list.replaceChildren(...devices.map((device) => el('li', { class: device.this_session ? 'current' : '' },
      el('div', {},
        el('p', { class: 'device' }, this.#describe(device.label, t), device.this_session ? el('span', { class: 'pill' }, t('devices.this_device')) : null),
        el('p', { class: 'muted' }, t('push.since', { when: text.date(new Date(device.created_at)) }))),
      el('button', { type: 'button', class: 'secondary', 'data-device': device.id }, t('push.remove')))));
    this.list.hidden = !devices.length;
    this.button.hidden = !pushSupported() || devices.some((device) => device.this_session);
  }

  async #enable() {
    const t = this.#text.t;
    this.error.textContent = this.status.textContent = '';
    this.button.disabled = true;
    try {
      const { key } = await this.#api.pushDevices();
      let subscription;
      try {
        subscription = await subscribe(key);
      } catch (error) {
        console.warn('[porch] no push subscription:', error.message);
        this.error.textContent = t(`push.refused.${error.reason || 'failed'}`);
        return;
      }
      await this.#api.addPushDevice(subscription);
      this.status.textContent = t('push.enabled');
      await this.load();
    } catch (error) {
      this.#failed(error);
    } finally {
      this.button.disabled = false;
    }
  }

  async #remove(id, button) {
    const t = this.#text.t;
    this.error.textContent = this.status.textContent = '';
    button.disabled = true;
    try {
      await this.#api.removePushDevice(id);
    } catch (error) {
      button.disabled = false;
      if (error.status !== 404) return this.#failed(error);
      // Gone already (its session signed out elsewhere): the list below says so.
    }
    const removed = this.#devices.find((device) => device.id === id);
    if (removed?.this_session) await unsubscribe();
    this.#devices = this.#devices.filter((device) => device.id !== id);
    this.#render();
    this.status.textContent = t('push.removed');
    (this.list.querySelector('button') || (this.button.hidden ? null : this.button))?.focus();
  }

  // 422: the relay's own words (e.g. a push service it will not post to).
  #failed(error) {
    if (error.status === 401) return; // the app signs out
    const t = this.#text.t;
    this.error.textContent = error.status === 422 ? error.message : t(error.status ? 'error.generic' : 'error.network');
  }
}
