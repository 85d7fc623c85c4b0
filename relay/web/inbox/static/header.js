// The top bar: the site picker (only with several sites), search, the connection state,
// and the buttons for notifications, shortcuts, settings and signing out.
import { el, icon, iconButton } from './dom.js';

const SEARCH_DELAY = 250; // ms after the last keystroke before searching

export class Header {
  #timer = 0;

  constructor(text, { onSite, onSearch }) {
    const t = text.t;
    this.sitePicker = el('select', { id: 'site-picker', class: 'site-picker' });
    this.siteLabel = el('label', { for: 'site-picker', class: 'sr-only' }, t('header.site'));
    this.search = el('input', {
      type: 'search', id: 'search', placeholder: t('header.search_placeholder'), autocomplete: 'off',
      spellcheck: 'false', 'aria-keyshortcuts': '/', maxlength: '200',
    });
    this.searchForm = el('form', { class: 'search', role: 'search' },
      el('label', { for: 'search', class: 'sr-only' }, t('header.search')), icon('search'), this.search);
    this.connection = el('p', { class: 'connection', role: 'status' });
    this.notifyButton = el('button', { type: 'button', class: 'secondary notify', hidden: true }, icon('bell'), el('span', {}, t('notify.enable')));
    this.helpButton = iconButton('help', t('header.shortcuts'), { 'aria-keyshortcuts': '?', 'aria-haspopup': 'dialog' });
    this.settingsButton = iconButton('settings', t('header.settings'), { 'aria-haspopup': 'dialog' });
    this.signOutButton = iconButton('signOut', t('header.sign_out'));
    this.root = el('header', { class: 'topbar' },
      el('a', { class: 'brand', href: '#' }, el('span', { class: 'logo', 'aria-hidden': 'true' }), el('span', {}, t('brand'))),
      el('div', { class: 'pickers' }, this.siteLabel, this.sitePicker),
      this.searchForm, this.connection,
      el('div', { class: 'actions' }, this.notifyButton, this.helpButton, this.settingsButton, this.signOutButton));
    this.sitePicker.addEventListener('change', () => onSite(this.sitePicker.value));
    this.searchForm.addEventListener('submit', (event) => {
      event.preventDefault();
      clearTimeout(this.#timer);
      onSearch(this.search.value.trim());
    });
    this.search.addEventListener('input', () => {
      clearTimeout(this.#timer);
      this.#timer = setTimeout(() => onSearch(this.search.value.trim()), SEARCH_DELAY);
    });
    this.text = text;
  }

  // sites: SiteOut[]; the picker shows only when the owner answers for several.
  setSites(sites, selected) {
    const t = this.text.t;
    const options = [el('option', { value: '' }, t('header.all_sites')), ...sites.map((site) => el('option', { value: site.id }, site.name || site.id))];
    this.sitePicker.replaceChildren(...options);
    this.sitePicker.value = selected || '';
    this.sitePicker.parentElement.hidden = sites.length < 2;
  }

  // Say so while the live connection is down (after it was up once), and "Offline"
  // while the browser knows the network is gone.
  setConnected(connected, everConnected) {
    const state = !navigator.onLine ? 'header.offline' : connected || !everConnected ? '' : 'header.reconnecting';
    const text = state && this.text.t(state);
    if (this.connection.textContent !== text) this.connection.textContent = text;
    this.connection.classList.toggle('visible', Boolean(text));
  }
}
