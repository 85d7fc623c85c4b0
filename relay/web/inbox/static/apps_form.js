// A site's messaging apps, in the Website tab of the settings: the accounts connected
// (each with the webhook URL the app posts to, and a Remove that asks first), and a form
// to connect another (the same checks as `porch channel add`). Secrets go to the relay
// once and never come back: the relay answers with the channel's public side only.
import { el } from './dom.js';
import { APPS } from './apps.js';

// What connecting each app's account takes: relay/channels/apps/__init__.py OPTIONS.
const OPTIONS = {
  telegram: ['bot_token'],
  whatsapp: ['phone_number_id', 'access_token', 'app_secret', 'verify_token'],
  messenger: ['page_id', 'page_token', 'app_secret', 'verify_token'],
};
const SECRETS = new Set(['bot_token', 'access_token', 'app_secret', 'verify_token', 'page_token']);
const TEMPLATES = new Set(['whatsapp']); // apps with approved templates for a closed window
const REFUSALS = [409, 422]; // the account answers for a site already; missing or refused

export class AppsSection {
  #api;
  #text;
  #site = null;
  #onChanged;
  #inputs = {}; // option name (and "template") -> input

  constructor(api, text, onChanged) {
    this.#api = api;
    this.#text = text;
    this.#onChanged = onChanged; // (site id) => Promise: the session read again
    const t = text.t;
    this.list = el('ul', { class: 'app-channels', 'aria-labelledby': 'apps-title' });
    this.none = el('p', { class: 'muted' }, t('apps.none'));
    this.listError = el('p', { class: 'error', role: 'alert' });
    this.kind = el('select', { id: 'app-kind' }, ...APPS.map((kind) => el('option', { value: kind }, t(`app.${kind}`))));
    this.options = el('div', { class: 'app-options' });
    this.error = el('p', { class: 'error', role: 'alert', id: 'app-error' });
    this.connectButton = el('button', { type: 'submit', class: 'primary' }, t('apps.connect'));
    this.added = el('div', { class: 'app-added', role: 'status' });
    this.form = el('form', { class: 'app-form', novalidate: true },
      el('h4', {}, t('apps.add')),
      el('div', { class: 'field' }, el('label', { for: 'app-kind' }, t('apps.kind')), this.kind),
      this.options,
      el('div', { class: 'row' }, this.connectButton),
      this.error);
    this.root = el('section', { class: 'apps', 'aria-labelledby': 'apps-title' },
      el('h3', { id: 'apps-title' }, t('apps.title')),
      el('p', { class: 'muted' }, t('apps.intro')),
      this.list, this.none, this.listError, this.added, this.form);
    this.kind.addEventListener('change', () => this.#drawOptions());
    this.form.addEventListener('submit', (event) => this.#connect(event));
    this.list.addEventListener('click', (event) => this.#onListClick(event));
    this.#drawOptions();
  }

  show(site) {
    if (site.id !== this.#site?.id) {
      this.added.replaceChildren();
      this.error.textContent = '';
      this.form.reset();
      this.#drawOptions();
    }
    this.#site = site;
    this.listError.textContent = '';
    const channels = site.channels || [];
    this.list.replaceChildren(...channels.map((channel) => this.#item(channel)));
    this.none.hidden = channels.length > 0;
  }

  // -- connected accounts --------------------------------------------------------------

  #item(channel) {
    const t = this.#text.t;
    const app = t(`app.${channel.kind}`);
    const confirmText = `app-remove-${channel.id}-text`;
    return el('li', { 'data-channel': channel.id },
      el('div', { class: 'app-channel-head' },
        el('p', { class: 'app-name' }, el('span', { class: `pill app-${channel.kind}` }, app), el('span', {}, channel.handle || '')),
        el('button', { type: 'button', class: 'secondary', 'data-action': 'ask' }, t('apps.remove'))),
      copyField(`app-webhook-${channel.id}`, t('apps.webhook'), channel.webhook_url, t),
      TEMPLATES.has(channel.kind) || channel.template
        ? el('p', { class: 'muted' }, t('apps.template_is', { name: channel.template || t('apps.no_template') }))
        : null,
      el('div', { class: 'confirm', hidden: true },
        el('p', { id: confirmText }, t('apps.remove_confirm', { app, handle: channel.handle || '' })),
        el('div', { class: 'row' },
          el('button', { type: 'button', class: 'secondary', 'data-action': 'keep' }, t('dialog.cancel')),
          el('button', { type: 'button', class: 'danger', 'data-action': 'remove', 'aria-describedby': confirmText }, t('apps.remove')))));
  }

  async #onListClick(event) {
    const button = event.target.closest('button[data-action]');
    if (!button) return;
    const item = button.closest('[data-channel]');
    const ask = item.querySelector('[data-action=ask]');
    const confirm = item.querySelector('.confirm');
    const action = button.dataset.action;
    if (action === 'ask') {
      confirm.hidden = false;
      ask.hidden = true;
      confirm.querySelector('[data-action=keep]').focus();
    } else if (action === 'keep') {
      confirm.hidden = true;
      ask.hidden = false;
      ask.focus();
    } else if (action === 'remove') {
      await this.#remove(item.dataset.channel, button);
    }
  }

  async #remove(channel, button) {
    const t = this.#text.t;
    this.listError.textContent = '';
    button.disabled = true;
    try {
      await this.#api.removeChannel(this.#site.id, channel);
    } catch (error) {
      button.disabled = false;
      if (error.status !== 401) this.listError.textContent = error.status === 404 ? error.message : t(error.status ? 'error.generic' : 'error.network');
      return;
    }
    this.added.replaceChildren();
    await this.#refresh();
    this.kind.focus(); // the removed item (and its focused button) is gone
  }

  // -- connecting one ------------------------------------------------------------------

  #drawOptions() {
    const t = this.#text.t;
    const kind = this.kind.value;
    this.#inputs = {};
    const fields = OPTIONS[kind].map((name) => {
      const secret = SECRETS.has(name);
      const input = el('input', {
        type: secret ? 'password' : 'text', id: `app-option-${name}`, name, autocomplete: 'off',
        spellcheck: 'false', autocapitalize: 'off', 'aria-describedby': secret ? 'app-kept-hint' : null,
      });
      this.#inputs[name] = input;
      return el('div', { class: 'field' }, el('label', { for: input.id }, t(`apps.option.${name}`)), input);
    });
    const hint = el('p', { class: 'hint', id: 'app-kept-hint' }, t('apps.secret_hint'));
    if (TEMPLATES.has(kind)) {
      const input = el('input', { type: 'text', id: 'app-template', autocomplete: 'off', spellcheck: 'false', 'aria-describedby': 'app-template-hint' });
      this.#inputs.template = input;
      fields.push(el('div', { class: 'field' }, el('label', { for: input.id }, t('apps.template')), input,
        el('p', { class: 'hint', id: 'app-template-hint' }, t('apps.template_hint'))));
    }
    this.options.replaceChildren(...fields, hint);
  }

  async #connect(event) {
    event.preventDefault();
    const t = this.#text.t;
    const kind = this.kind.value;
    this.error.textContent = '';
    this.added.replaceChildren();
    for (const input of Object.values(this.#inputs)) input.removeAttribute('aria-invalid');
    const options = Object.fromEntries(OPTIONS[kind].map((name) => [name, this.#inputs[name].value.trim()]));
    const missing = OPTIONS[kind].find((name) => !options[name]);
    if (missing) return this.#fail(t('apps.missing', { field: t(`apps.option.${missing}`) }), missing);
    this.connectButton.disabled = true;
    let channel;
    try {
      channel = await this.#api.addChannel(this.#site.id, kind, options, this.#inputs.template?.value.trim() || null);
    } catch (error) {
      if (error.status === 401) return;
      const named = REFUSALS.includes(error.status) ? OPTIONS[kind].find((name) => error.message.includes(name)) : null;
      return this.#fail(REFUSALS.includes(error.status) ? error.message : t(error.status ? 'error.generic' : 'error.network'), named);
    } finally {
      this.connectButton.disabled = false;
    }
    this.form.reset(); // the secrets leave the page
    this.kind.value = kind;
    this.#drawOptions();
    this.#showAdded(channel);
    await this.#refresh();
  }

  // The webhook URL and what is left to do at the app's end.
  #showAdded(channel) {
    const t = this.#text.t;
    this.added.replaceChildren(
      el('p', { class: 'saved' }, t('apps.connected', { app: t(`app.${channel.kind}`), handle: channel.handle || '' })),
      copyField('app-added-webhook', t('apps.webhook'), channel.webhook_url, t),
      el('p', {}, t(channel.kind === 'telegram' ? 'apps.next_telegram' : 'apps.next_meta')));
  }

  async #refresh() {
    try {
      await this.#onChanged(this.#site.id);
    } catch (error) {
      if (error.status !== 401) this.listError.textContent = this.#text.t(error.status ? 'error.generic' : 'error.network');
    }
  }

  #fail(message, field) {
    this.error.textContent = message;
    const input = field && this.#inputs[field];
    if (!input) return;
    input.setAttribute('aria-invalid', 'true');
    input.setAttribute('aria-errormessage', 'app-error');
    input.focus();
  }
}

// A read-only value with a Copy button (the clipboard, else selected for Ctrl+C).
function copyField(id, label, value, t) {
  const input = el('input', { type: 'text', id, readonly: true, value, class: 'code', spellcheck: 'false' });
  const button = el('button', { type: 'button', class: 'secondary' }, t('apps.copy'));
  const copied = el('span', { class: 'saved', role: 'status' });
  button.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(input.value);
      copied.textContent = t('site.copied');
    } catch {
      // No clipboard access (an insecure origin, a denied permission): select it instead.
      input.focus();
      input.select();
      copied.textContent = t('site.copy_manually');
    }
  });
  return el('div', { class: 'field' }, el('label', { for: id }, label), input, el('div', { class: 'row' }, button, copied));
}
