// One site's settings: what visitors see (greetings, colour, availability) and who
// may embed and answer it. Only the fields that changed are sent; a refusal (422)
// names the field, which is marked and focused next to the message.
import { el } from './dom.js';
import { LANGUAGES } from './text.js';

const DEFAULT_COLOR = '#2f6f4e';
// API fields edited through several inputs -> the input to mark when one is refused.
const API_FIELDS = { hours: 'hours.mon', greetings: 'greetings.fr', away_texts: 'away_texts.fr' };
const RANGE = /^(\d{1,2})(?::(\d{2}))?\s*[-–]\s*(\d{1,2})(?::(\d{2}))?$/; // "9-12", "09:00–12:30"

export class SiteForm {
  #api;
  #text;
  #site = null;
  #fields = {};
  #onSaved;

  constructor(api, text, onSaved) {
    this.#api = api;
    this.#text = text;
    this.#onSaved = onSaved; // (SiteOut) => void
    const t = text.t;
    const f = this.#fields;
    const field = (key, label, control, hint) => {
      control.id = `site-${key}`;
      if (hint) control.setAttribute('aria-describedby', `site-${key}-hint`);
      f[key] = control;
      return el('div', { class: 'field' }, el('label', { for: control.id }, label), control,
        hint ? el('p', { class: 'hint', id: `site-${key}-hint` }, hint) : null);
    };
    const lines = (rows = 3) => el('textarea', { rows: String(rows), spellcheck: 'false' });
    const timezones = el('datalist', { id: 'timezones' }, ...timeZones().map((zone) => el('option', { value: zone })));
    this.days = text.weekdays();
    const hours = el('fieldset', { class: 'hours', 'aria-describedby': 'site-hours-hint' },
      el('legend', {}, t('site.hours')),
      ...this.days.map(([key, name]) => {
        const input = el('input', { type: 'text', id: `site-hours-${key}`, autocomplete: 'off', spellcheck: 'false' });
        f[`hours.${key}`] = input;
        return el('div', { class: 'day-hours' }, el('label', { for: input.id }, name), input);
      }),
      el('p', { class: 'hint', id: 'site-hours-hint' }, t('site.hours_hint')));
    const languageSelect = el('select', {}, ...LANGUAGES.map((code) => el('option', { value: code }, t(`language.${code}`))));
    const replyTime = el('input', { type: 'number', min: '0', max: '10080', step: '1', inputmode: 'numeric' });
    this.snippet = el('textarea', { id: 'site-snippet', rows: '3', readonly: true, spellcheck: 'false', class: 'code' });
    this.copyButton = el('button', { type: 'button', class: 'secondary' }, t('site.copy'));
    this.copied = el('span', { class: 'saved', role: 'status' });
    this.error = el('p', { class: 'error', role: 'alert', id: 'site-error' });
    this.saved = el('span', { class: 'saved', role: 'status' });
    this.saveButton = el('button', { type: 'submit', class: 'primary' }, t('settings.save'));
    this.root = el('form', { class: 'settings-form', novalidate: true },
      el('fieldset', {}, el('legend', {}, t('site.section_site')),
        field('name', t('site.name'), el('input', { type: 'text', maxlength: '120' })),
        field('origins', t('site.origins'), lines(), t('site.origins_hint')),
        field('owner_emails', t('site.owners'), lines(), t('site.owners_hint')),
        field('language', t('site.language'), languageSelect)),
      el('fieldset', {}, el('legend', {}, t('site.section_look')),
        field('color', t('site.color'), el('input', { type: 'color' })),
        field('greeting', t('site.greeting_en'), lines(2)),
        field('greetings.fr', t('site.greeting_fr'), lines(2))),
      el('fieldset', {}, el('legend', {}, t('site.section_hours')),
        field('timezone', t('site.timezone'), el('input', { type: 'text', list: 'timezones', autocomplete: 'off', spellcheck: 'false' })),
        timezones, hours,
        field('closed_days', t('site.closed_days'), lines(), t('site.closed_days_hint')),
        field('reply_time_minutes', t('site.reply_time'), replyTime, t('site.reply_time_hint')),
        field('away_text', t('site.away_en'), lines(2), t('site.away_hint')),
        field('away_texts.fr', t('site.away_fr'), lines(2))),
      el('fieldset', {}, el('legend', {}, t('site.section_install')),
        el('div', { class: 'field' }, el('label', { for: 'site-snippet' }, t('site.snippet')), this.snippet,
          el('p', { class: 'hint' }, t('site.snippet_hint')),
          el('div', { class: 'row' }, this.copyButton, this.copied))),
      el('div', { class: 'form-actions' }, this.error, this.saved, this.saveButton));
    this.root.addEventListener('submit', (event) => this.#save(event));
    this.root.addEventListener('input', () => {
      this.saved.textContent = '';
      this.#hoursPlaceholders();
    });
    this.copyButton.addEventListener('click', () => this.#copy());
  }

  show(site) {
    this.#site = site;
    const values = this.#valuesOf(site);
    for (const [key, input] of Object.entries(this.#fields)) {
      input.value = values[key] ?? '';
      input.removeAttribute('aria-invalid');
    }
    this.#hoursPlaceholders();
    this.snippet.value = site.snippet || '';
    this.error.textContent = this.saved.textContent = this.copied.textContent = '';
  }

  // SiteOut -> the text of each field.
  #valuesOf(site) {
    const s = site.settings || {};
    const values = {
      name: site.name || '',
      origins: (site.origins || []).join('\n'),
      owner_emails: (site.owner_emails || []).join('\n'),
      language: s.language || 'en',
      color: /^#[0-9a-f]{6}$/i.test(s.color || '') ? s.color.toLowerCase() : DEFAULT_COLOR,
      greeting: s.greeting || '',
      'greetings.fr': s.greetings?.fr || '',
      timezone: s.timezone || 'UTC',
      closed_days: (s.closed_days || []).join('\n'),
      reply_time_minutes: s.reply_time_minutes ?? '',
      away_text: s.away_text || '',
      'away_texts.fr': s.away_texts?.fr || '',
    };
    for (const [key] of this.days) values[`hours.${key}`] = (s.hours?.[key] || []).map(([from, to]) => `${from}-${to}`).join(', ');
    return values;
  }

  // The form -> the API's fields, or throws {field, message} for what cannot be read.
  #changes() {
    const f = this.#fields;
    const s = this.#site.settings || {};
    const before = this.#valuesOf(this.#site);
    const changed = (key) => f[key].value !== String(before[key] ?? '');
    const lines = (key) => f[key].value.split('\n').map((line) => line.trim()).filter(Boolean);
    const out = {};
    for (const key of ['name', 'language', 'color', 'timezone', 'greeting', 'away_text']) if (changed(key)) out[key] = f[key].value.trim();
    for (const key of ['origins', 'owner_emails', 'closed_days']) if (changed(key)) out[key] = lines(key);
    if (changed('greetings.fr')) out.greetings = { ...s.greetings, fr: f['greetings.fr'].value.trim() };
    if (changed('away_texts.fr')) out.away_texts = { ...s.away_texts, fr: f['away_texts.fr'].value.trim() };
    if (changed('reply_time_minutes')) {
      const text = f.reply_time_minutes.value.trim();
      const minutes = Number(text);
      if (text && !(Number.isInteger(minutes) && minutes >= 0)) throw { field: 'reply_time_minutes', message: this.#text.t('site.reply_time_invalid') };
      out.reply_time_minutes = text ? minutes : null;
    }
    if (this.days.some(([key]) => changed(`hours.${key}`))) out.hours = this.#hours();
    return out;
  }

  // An empty day reads "Closed" once some day has hours; with none, an example.
  #hoursPlaceholders() {
    const inputs = this.days.map(([key]) => this.#fields[`hours.${key}`]);
    const placeholder = this.#text.t(inputs.some((input) => input.value.trim()) ? 'site.hours_closed' : 'site.hours_placeholder');
    for (const input of inputs) input.placeholder = placeholder;
  }

  // Seven "09:00-12:00, 14:00-18:00" fields -> {"mon": [["09:00", "12:00"], ...], ...};
  // every day empty -> {} (no business hours: always open).
  #hours() {
    const hours = {};
    for (const [key, name] of this.days) {
      const text = this.#fields[`hours.${key}`].value.trim();
      hours[key] = !text ? [] : text.split(/[,;]/).map((part) => {
        const match = part.trim().match(RANGE);
        const range = match && [time(match[1], match[2]), time(match[3], match[4])];
        if (!range || !range[0] || !range[1] || range[0] >= range[1]) {
          throw { field: `hours.${key}`, message: this.#text.t('site.hours_invalid', { day: name, text: part.trim() }) };
        }
        return range;
      });
    }
    return Object.values(hours).some((ranges) => ranges.length) ? hours : {};
  }

  async #save(event) {
    event.preventDefault();
    const t = this.#text.t;
    this.error.textContent = this.saved.textContent = '';
    for (const input of Object.values(this.#fields)) input.removeAttribute('aria-invalid');
    let changes;
    try {
      changes = this.#changes();
    } catch (problem) {
      return this.#fail(problem.message, problem.field);
    }
    if (!Object.keys(changes).length) {
      this.saved.textContent = t('settings.nothing_changed');
      return;
    }
    this.saveButton.disabled = true;
    try {
      const site = await this.#api.saveSite(this.#site.id, changes);
      this.show(site);
      this.saved.textContent = t('settings.saved');
      this.#onSaved(site);
    } catch (error) {
      this.#fail(error.status === 422 ? error.message : t(error.status ? 'error.generic' : 'error.network'), error.status === 422 ? this.#fieldIn(error, changes) : null);
    } finally {
      this.saveButton.disabled = false;
    }
  }

  // Which field a refusal is about: the relay's `reason` (the field's name), else the
  // longest field name its message mentions, else the only field sent. For hours, the
  // day the message names.
  #fieldIn({ reason, message }, changes) {
    const candidates = [...Object.keys(this.#fields), ...Object.keys(API_FIELDS)].sort((a, b) => b.length - a.length);
    const sent = Object.keys(changes);
    const named = candidates.includes(reason) ? reason
      : candidates.find((name) => message.includes(name)) || (sent.length === 1 ? sent[0] : null);
    if (named === 'hours') {
      const day = this.days.find(([key]) => new RegExp(`\\b${key}\\b`).test(message));
      if (day) return `hours.${day[0]}`;
    }
    return named && (this.#fields[named] ? named : API_FIELDS[named]);
  }

  #fail(message, field) {
    this.error.textContent = message;
    const input = field && this.#fields[field];
    if (!input) return;
    input.setAttribute('aria-invalid', 'true');
    input.setAttribute('aria-errormessage', 'site-error');
    input.focus();
  }

  async #copy() {
    const t = this.#text.t;
    try {
      await navigator.clipboard.writeText(this.snippet.value);
      this.copied.textContent = t('site.copied');
    } catch {
      // No clipboard access (an insecure origin, a denied permission): select it instead.
      this.snippet.focus();
      this.snippet.select();
      this.copied.textContent = t('site.copy_manually');
    }
  }
}

// "9", "00" -> "09:00"; "24", "00" -> "24:00"; out of range -> ''.
function time(hours, minutes = '00') {
  const h = Number(hours);
  const m = Number(minutes);
  if (h > 24 || m > 59 || (h === 24 && m > 0)) return '';
  return `${String(h).padStart(2, '0')}:${String(m).padStart(2, '0')}`;
}

function timeZones() {
  const zones = typeof Intl.supportedValuesOf === 'function' ? Intl.supportedValuesOf('timeZone') : [];
  return zones.includes('UTC') ? zones : ['UTC', ...zones];
}
