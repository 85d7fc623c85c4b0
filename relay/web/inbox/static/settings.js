// The settings dialog: three tabs. Account (the owner's name, language, email
// notifications, reply aliases), Website (site_form.js, one site at a time, its automatic
// answers: answers.js, and its messaging apps: apps_form.js) and Devices (pushes to
// this device: push_devices.js; sessions: revoke one, sign out everywhere).
import { AnswersSection } from './answers.js';
import { AppsSection } from './apps_form.js';
import { closeOnBackdrop, el, iconButton } from './dom.js';
import { PushSection } from './push_devices.js';
import { SiteForm } from './site_form.js';
import { LANGUAGES, pickLanguage } from './text.js';

const TABS = ['account', 'site', 'devices'];
const NOTIFY = ['message', 'hourly', 'daily', 'off'];

export class Settings {
  #api;
  #text;
  #me = null;
  #handlers;
  #tabs = {};
  #panels = {};

  constructor(api, text, handlers, answerBook) {
    this.#api = api;
    this.#text = text;
    this.#handlers = handlers; // {onMe(me), onSite(site), onSignedOut()}
    const t = text.t;
    this.tablist = el('div', { class: 'tabs', role: 'tablist', 'aria-label': t('settings.title') });
    for (const tab of TABS) {
      this.#tabs[tab] = el('button', { type: 'button', role: 'tab', id: `tab-${tab}`, 'aria-controls': `panel-${tab}`, 'aria-selected': 'false', tabindex: '-1' }, t(`settings.tab.${tab}`));
      this.#panels[tab] = el('div', { role: 'tabpanel', id: `panel-${tab}`, 'aria-labelledby': `tab-${tab}`, hidden: true });
      this.tablist.append(this.#tabs[tab]);
    }
    this.closeButton = iconButton('close', t('dialog.close'));
    this.dialog = el('dialog', { class: 'settings', 'aria-labelledby': 'settings-title' },
      el('div', { class: 'dialog-head' }, el('h2', { id: 'settings-title' }, t('settings.title')), this.closeButton),
      this.tablist, ...Object.values(this.#panels));
    this.#account();
    this.siteForm = new SiteForm(api, text, (site) => this.#siteSaved(site));
    this.sitePicker = el('select', { id: 'settings-site' });
    this.sitePickerField = el('div', { class: 'field' }, el('label', { for: 'settings-site' }, t('settings.which_site')), this.sitePicker);
    this.answers = new AnswersSection(api, text, answerBook);
    this.apps = new AppsSection(api, text, () => this.#refreshSites());
    this.#panels.site.append(this.sitePickerField, this.siteForm.root, this.answers.root, this.apps.root);
    this.sitePicker.addEventListener('change', () => this.#showSite(this.sitePicker.value));
    this.#devices();
    this.closeButton.addEventListener('click', () => this.dialog.close());
    this.tablist.addEventListener('click', (event) => {
      const tab = event.target.closest('[role=tab]');
      if (tab) this.select(tab.id.slice(4));
    });
    this.tablist.addEventListener('keydown', (event) => this.#tabKey(event));
    closeOnBackdrop(this.dialog);
  }

  open(me, tab = 'account', site = '') {
    this.#me = me;
    this.#fillAccount();
    this.#fillDevices();
    this.push.load();
    const sites = me.sites || [];
    this.sitePicker.replaceChildren(...sites.map((s) => el('option', { value: s.id }, s.name || s.id)));
    this.sitePickerField.hidden = sites.length < 2;
    this.#tabs.site.hidden = !sites.length;
    if (sites.length) this.#showSite(sites.some((s) => s.id === site) ? site : sites[0].id);
    if (!this.dialog.open) this.dialog.showModal();
    this.select(tab);
  }

  // Fresh from the relay (other devices sign in and out): the sessions only, so
  // nothing typed in the forms is lost.
  refreshDevices(me) {
    if (!this.#me) return;
    this.#me = { ...this.#me, sessions: me.sessions };
    this.#fillDevices();
  }

  // After the page was rebuilt in the newly saved language: say it was saved, in it.
  confirmSaved() {
    this.accountSaved.textContent = this.#text.t('settings.saved');
    this.languageSelect.focus();
  }

  select(tab, focus = true) {
    for (const name of TABS) {
      const selected = name === tab;
      this.#tabs[name].setAttribute('aria-selected', String(selected));
      this.#tabs[name].tabIndex = selected ? 0 : -1;
      this.#panels[name].hidden = !selected;
    }
    if (focus) this.#tabs[tab].focus();
  }

  // Tabs move with the arrow keys, Home and End (WAI-ARIA tabs pattern).
  #tabKey(event) {
    const visible = TABS.filter((name) => !this.#tabs[name].hidden);
    const index = visible.findIndex((name) => this.#tabs[name] === document.activeElement);
    const next = { ArrowRight: index + 1, ArrowLeft: index - 1 + visible.length, Home: 0, End: visible.length - 1 }[event.key];
    if (next === undefined || index < 0) return;
    event.preventDefault();
    this.select(visible[next % visible.length]);
  }

  #showSite(id) {
    this.sitePicker.value = id;
    const site = this.#me.sites.find((s) => s.id === id);
    this.siteForm.show(site, this.#me.site_fields || []);
    this.answers.show(site);
    this.apps.show(site);
  }

  // A messaging app connected or removed: the sites as the relay now has them (the
  // site form keeps what is being typed in it).
  async #refreshSites() {
    const me = await this.#api.me();
    this.#me = { ...this.#me, sites: me.sites };
    for (const site of me.sites) this.#handlers.onSite(site);
    const shown = me.sites.find((site) => site.id === this.sitePicker.value);
    if (shown) this.apps.show(shown);
  }

  #siteSaved(site) {
    this.#me.sites = this.#me.sites.map((s) => (s.id === site.id ? site : s));
    this.sitePicker.querySelector(`option[value="${CSS.escape(site.id)}"]`).textContent = site.name || site.id;
    this.#handlers.onSite(site);
  }

  // -- account -------------------------------------------------------------------------

  #account() {
    const t = this.#text.t;
    this.signedInAs = el('p', { class: 'muted' });
    this.nameInput = el('input', { type: 'text', id: 'me-name', autocomplete: 'name', maxlength: '120' });
    this.languageSelect = el('select', { id: 'me-language' }, ...LANGUAGES.map((code) => el('option', { value: code, lang: code }, t(`language.${code}`))));
    this.notify = el('fieldset', { class: 'choices' }, el('legend', {}, t('me.notify')),
      ...NOTIFY.map((value) => el('label', {}, el('input', { type: 'radio', name: 'notify', value }), el('span', {}, t(`me.notify.${value}`)))));
    this.aliases = el('textarea', { id: 'me-aliases', rows: '3', spellcheck: 'false', 'aria-describedby': 'me-aliases-hint' });
    this.accountError = el('p', { class: 'error', role: 'alert' });
    this.accountSaved = el('span', { class: 'saved', role: 'status' });
    const save = el('button', { type: 'submit', class: 'primary' }, t('settings.save'));
    const form = el('form', { class: 'settings-form', novalidate: true },
      this.signedInAs,
      el('div', { class: 'field' }, el('label', { for: 'me-name' }, t('me.name')), this.nameInput),
      el('div', { class: 'field' }, el('label', { for: 'me-language' }, t('me.language')), this.languageSelect),
      this.notify,
      el('div', { class: 'field' }, el('label', { for: 'me-aliases' }, t('me.aliases')), this.aliases,
        el('p', { class: 'hint', id: 'me-aliases-hint' }, t('me.aliases_hint'))),
      el('div', { class: 'form-actions' }, this.accountError, this.accountSaved, save));
    form.addEventListener('input', () => { this.accountSaved.textContent = ''; });
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      this.accountError.textContent = this.accountSaved.textContent = '';
      const me = this.#me;
      const notify = this.notify.querySelector('input:checked')?.value || me.notify;
      const aliases = this.aliases.value.split('\n').map((line) => line.trim()).filter(Boolean);
      const changes = {};
      if (this.nameInput.value.trim() !== (me.name || '')) changes.name = this.nameInput.value.trim();
      if (this.languageSelect.value !== me.language) changes.language = this.languageSelect.value;
      if (notify !== me.notify) changes.notify = notify;
      if (aliases.join('\n') !== (me.aliases || []).join('\n')) changes.aliases = aliases;
      if (!Object.keys(changes).length) return void (this.accountSaved.textContent = t('settings.nothing_changed'));
      save.disabled = true;
      try {
        this.#me = { ...me, ...(await this.#api.saveMe(changes)) };
        this.#fillAccount();
        this.accountSaved.textContent = t('settings.saved');
        this.#handlers.onMe(this.#me);
      } catch (error) {
        this.accountError.textContent = error.status === 422 ? error.message : t(error.status ? 'error.generic' : 'error.network');
      } finally {
        save.disabled = false;
      }
    });
    this.#panels.account.append(form);
  }

  #fillAccount() {
    const me = this.#me;
    this.signedInAs.textContent = this.#text.t('me.signed_in_as', { email: me.email });
    this.nameInput.value = me.name || '';
    this.languageSelect.value = pickLanguage(me.language, navigator.language);
    for (const input of this.notify.querySelectorAll('input')) input.checked = input.value === me.notify;
    this.aliases.value = (me.aliases || []).join('\n');
  }

  // -- devices (sessions) --------------------------------------------------------------

  #devices() {
    const t = this.#text.t;
    this.sessionList = el('ul', { class: 'sessions', 'aria-labelledby': 'devices-title' });
    this.devicesError = el('p', { class: 'error', role: 'alert' });
    const everywhere = el('button', { type: 'button', class: 'danger' }, t('devices.everywhere'));
    const confirm = el('div', { class: 'confirm', hidden: true },
      el('p', { id: 'everywhere-text' }, t('devices.everywhere_confirm')),
      el('div', { class: 'row' },
        el('button', { type: 'button', class: 'secondary', 'data-answer': 'no' }, t('dialog.cancel')),
        el('button', { type: 'button', class: 'danger', 'data-answer': 'yes', 'aria-describedby': 'everywhere-text' }, t('devices.everywhere'))));
    everywhere.addEventListener('click', () => {
      confirm.hidden = false;
      everywhere.hidden = true;
      confirm.querySelector('[data-answer=no]').focus();
    });
    confirm.addEventListener('click', async (event) => {
      const answer = event.target.closest('[data-answer]')?.dataset.answer;
      if (answer === 'no') {
        confirm.hidden = true;
        everywhere.hidden = false;
        everywhere.focus();
      } else if (answer === 'yes') {
        try {
          await this.#api.signOut(true);
          this.dialog.close();
          this.#handlers.onSignedOut('signin.signed_out_everywhere');
        } catch (error) {
          this.devicesError.textContent = t(error.status ? 'error.generic' : 'error.network');
        }
      }
    });
    this.sessionList.addEventListener('click', (event) => {
      const button = event.target.closest('[data-session]');
      if (button) this.#revoke(button.dataset.session, button);
    });
    this.push = new PushSection(this.#api, this.#text, describeDevice);
    this.#panels.devices.append(
      this.push.root,
      el('h3', { id: 'devices-title' }, t('devices.title')),
      el('p', { class: 'muted' }, t('devices.intro')),
      this.sessionList, this.devicesError,
      el('div', { class: 'form-actions' }, everywhere, confirm));
  }

  #fillDevices() {
    const text = this.#text;
    const t = text.t;
    const sessions = [...(this.#me.sessions || [])].sort((a, b) => Number(b.current) - Number(a.current) || (b.last_seen_at > a.last_seen_at ? 1 : -1));
    this.sessionList.replaceChildren(...sessions.map((session) => {
      const seen = new Date(session.last_seen_at);
      const since = new Date(session.created_at);
      return el('li', { class: session.current ? 'current' : '' },
        el('div', {},
          el('p', { class: 'device' }, describeDevice(session.user_agent, t), session.current ? el('span', { class: 'pill' }, t('devices.this_device')) : null),
          el('p', { class: 'muted' },
            t('devices.last_seen', { when: text.relativeLong(seen) }), ' · ',
            t('devices.since', { when: text.date(since) }))),
        el('button', { type: 'button', class: 'secondary', 'data-session': session.id }, t(session.current ? 'header.sign_out' : 'devices.revoke')));
    }));
  }

  async #revoke(id, button) {
    const t = this.#text.t;
    this.devicesError.textContent = '';
    button.disabled = true;
    try {
      await this.#api.revoke(id);
      if (id === this.#me.session) {
        this.dialog.close();
        return this.#handlers.onSignedOut('signin.signed_out');
      }
      this.#me = { ...this.#me, sessions: this.#me.sessions.filter((session) => session.id !== id) };
      this.#fillDevices();
      this.push.load(); // that session's devices went with it
      this.sessionList.querySelector('button')?.focus();
    } catch (error) {
      button.disabled = false;
      if (error.status !== 401) this.devicesError.textContent = t(error.status ? 'error.generic' : 'error.network');
    }
  }
}

// "Chrome on Linux" out of a user agent string; the raw string when it says nothing known.
function describeDevice(userAgent, t) {
  if (!userAgent) return t('devices.unknown');
  const browser = [['Edg/', 'Edge'], ['OPR/', 'Opera'], ['Firefox/', 'Firefox'], ['Chrome/', 'Chrome'], ['Safari/', 'Safari']]
    .find(([mark]) => userAgent.includes(mark))?.[1];
  const system = [['Android', 'Android'], ['iPhone', 'iOS'], ['iPad', 'iPadOS'], ['Windows', 'Windows'], ['Mac OS X', 'macOS'], ['CrOS', 'ChromeOS'], ['Linux', 'Linux']]
    .find(([mark]) => userAgent.includes(mark))?.[1];
  if (browser && system) return t('devices.browser_on', { browser, system });
  return browser || system || userAgent.slice(0, 80);
}
