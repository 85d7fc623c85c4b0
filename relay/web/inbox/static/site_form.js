// One site's settings: what visitors see (greetings, colour, availability) and who
// may embed and answer it. The fields are the relay's (GET /inbox/api/session:
// site_fields, declared once in relay/sites/settings.py); this file knows how to draw
// each kind of control. Only the fields that changed are sent; a refusal (422) names
// the field, which is marked and focused next to the message.
import { el } from './dom.js';

const RANGE = /^(\d{1,2})(?::(\d{2}))?\s*[-–]\s*(\d{1,2})(?::(\d{2}))?$/; // "9-12", "09:00–12:30"
const COLOR = /^#[0-9a-f]{6}$/i;

export class SiteForm {
  #api;
  #text;
  #site = null;
  #specs = [];
  #built = null; // the field list the form was drawn from
  #fields = {}; // input key ("greeting", "greetings.fr", "hours.mon") -> control
  #apiFields = {}; // API field edited through several inputs -> the input to mark
  #hoursKey = null; // the hours setting's key: its inputs are `${key}.mon`, ...
  #onSaved;

  constructor(api, text, onSaved) {
    this.#api = api;
    this.#text = text;
    this.#onSaved = onSaved; // (SiteOut) => void
    const t = text.t;
    this.days = text.weekdays();
    this.snippet = el('textarea', { id: 'site-snippet', rows: '3', readonly: true, spellcheck: 'false', class: 'code' });
    this.copyButton = el('button', { type: 'button', class: 'secondary' }, t('site.copy'));
    this.copied = el('span', { class: 'saved', role: 'status' });
    this.error = el('p', { class: 'error', role: 'alert', id: 'site-error' });
    this.saved = el('span', { class: 'saved', role: 'status' });
    this.saveButton = el('button', { type: 'submit', class: 'primary' }, t('settings.save'));
    this.install = el('fieldset', {}, el('legend', {}, t('site.section_install')),
      el('div', { class: 'field' }, el('label', { for: 'site-snippet' }, t('site.snippet')), this.snippet,
        el('p', { class: 'hint' }, t('site.snippet_hint')),
        el('div', { class: 'row' }, this.copyButton, this.copied)));
    this.actions = el('div', { class: 'form-actions' }, this.error, this.saved, this.saveButton);
    this.root = el('form', { class: 'settings-form', novalidate: true }, this.install, this.actions);
    this.root.addEventListener('submit', (event) => this.#save(event));
    this.root.addEventListener('input', () => {
      this.saved.textContent = '';
      this.#hoursPlaceholders();
    });
    this.copyButton.addEventListener('click', () => this.#copy());
  }

  show(site, fields) {
    this.#build(fields);
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

  // -- drawing -------------------------------------------------------------------------

  // One fieldset per section, in the order the relay lists the fields.
  #build(fields) {
    if (fields === this.#built) return;
    this.#built = fields;
    this.#specs = fields;
    this.#fields = {};
    this.#apiFields = {};
    const sections = new Map();
    for (const spec of fields) {
      if (!sections.has(spec.section)) sections.set(spec.section, []);
      sections.get(spec.section).push(...this.#draw(spec));
    }
    const t = this.#text.t;
    this.root.replaceChildren(
      ...[...sections].map(([section, nodes]) => el('fieldset', {}, el('legend', {}, t(`site.section_${section}`)), ...nodes)),
      this.install, this.actions);
  }

  // A setting's label, control and hint; a per-language one also gets a field per language.
  #draw(spec) {
    const t = this.#text.t;
    if (spec.control === 'hours') return [this.#hoursFieldset(spec)];
    const nodes = [this.#field(spec.key, t(spec.label), this.#control(spec), spec.hint && t(spec.hint))];
    if (spec.control === 'timezone') nodes.push(el('datalist', { id: 'timezones' }, ...timeZones().map((zone) => el('option', { value: zone }))));
    for (const { language, label } of spec.texts?.languages || []) {
      const key = `${spec.texts.key}.${language}`;
      this.#apiFields[spec.texts.key] ??= key;
      nodes.push(this.#field(key, t(label), this.#control(spec)));
    }
    return nodes;
  }

  #field(key, label, control, hint) {
    control.id = `site-${key}`;
    if (hint) control.setAttribute('aria-describedby', `site-${key}-hint`);
    this.#fields[key] = control;
    return el('div', { class: 'field' }, el('label', { for: control.id }, label), control,
      hint ? el('p', { class: 'hint', id: `site-${key}-hint` }, hint) : null);
  }

  #control(spec) {
    const t = this.#text.t;
    const schema = spec.schema || {};
    switch (spec.control) {
      case 'lines': return el('textarea', { rows: '3', spellcheck: 'false' });
      case 'paragraph': return el('textarea', { rows: '2', spellcheck: 'false' });
      case 'color': return el('input', { type: 'color' });
      case 'timezone': return el('input', { type: 'text', list: 'timezones', autocomplete: 'off', spellcheck: 'false' });
      case 'select': return el('select', {}, ...(schema.enum || []).map((value) => el('option', { value }, t(`${spec.options}${value}`))));
      case 'minutes': return el('input', { type: 'number', min: schema.minimum, max: schema.maximum, step: '1', inputmode: 'numeric' });
      default: return el('input', { type: 'text', maxlength: schema.maxLength });
    }
  }

  #hoursFieldset(spec) {
    const t = this.#text.t;
    this.#hoursKey = spec.key;
    this.#apiFields[spec.key] = `${spec.key}.${this.days[0][0]}`;
    return el('fieldset', { class: 'hours', 'aria-describedby': `site-${spec.key}-hint` },
      el('legend', {}, t(spec.label)),
      ...this.days.map(([day, name]) => {
        const input = el('input', { type: 'text', id: `site-${spec.key}-${day}`, autocomplete: 'off', spellcheck: 'false' });
        this.#fields[`${spec.key}.${day}`] = input;
        return el('div', { class: 'day-hours' }, el('label', { for: input.id }, name), input);
      }),
      spec.hint ? el('p', { class: 'hint', id: `site-${spec.key}-hint` }, t(spec.hint)) : null);
  }


  // -- values ---------------------------------------------------------------------------

  // SiteOut -> the text of each input.
  #valuesOf(site) {
    const s = site.settings || {};
    const values = {};
    for (const spec of this.#specs) {
      const stored = spec.column ? site[spec.key] : s[spec.key];
      if (spec.control === 'hours') {
        for (const [day] of this.days) values[`${spec.key}.${day}`] = (stored?.[day] || []).map(([from, to]) => `${from}-${to}`).join(', ');
      } else if (spec.control === 'lines') {
        values[spec.key] = (stored || []).join('\n');
      } else if (spec.control === 'color') {
        values[spec.key] = COLOR.test(stored || '') ? stored.toLowerCase() : spec.default;
      } else if (spec.control === 'minutes') {
        values[spec.key] = stored ?? '';
      } else {
        values[spec.key] = stored || spec.default || '';
      }
      for (const { language } of spec.texts?.languages || []) values[`${spec.texts.key}.${language}`] = s[spec.texts.key]?.[language] || '';
    }
    return values;
  }

  // The form -> the API's fields, or throws {field, message} for what cannot be read.
  #changes() {
    const f = this.#fields;
    const s = this.#site.settings || {};
    const before = this.#valuesOf(this.#site);
    const changed = (key) => f[key].value !== String(before[key] ?? '');
    const out = {};
    for (const spec of this.#specs) {
      const key = spec.key;
      if (spec.control === 'hours') {
        if (this.days.some(([day]) => changed(`${key}.${day}`))) out[key] = this.#hours(key);
      } else if (!changed(key)) {
        // unchanged: not sent
      } else if (spec.control === 'lines') {
        out[key] = f[key].value.split('\n').map((line) => line.trim()).filter(Boolean);
      } else if (spec.control === 'minutes') {
        const text = f[key].value.trim();
        const minutes = Number(text);
        if (text && !(Number.isInteger(minutes) && minutes >= 0)) throw { field: key, message: this.#text.t(spec.invalid) };
        out[key] = text ? minutes : null;
      } else {
        out[key] = f[key].value.trim();
      }
      for (const { language } of spec.texts?.languages || []) {
        const input = `${spec.texts.key}.${language}`;
        if (changed(input)) out[spec.texts.key] = { ...s[spec.texts.key], ...out[spec.texts.key], [language]: f[input].value.trim() };
      }
    }
    return out;
  }

  // An empty day reads "Closed" once some day has hours; with none, an example.
  #hoursPlaceholders() {
    if (!this.#hoursKey) return;
    const inputs = this.days.map(([day]) => this.#fields[`${this.#hoursKey}.${day}`]);
    const placeholder = this.#text.t(inputs.some((input) => input.value.trim()) ? 'site.hours_closed' : 'site.hours_placeholder');
    for (const input of inputs) input.placeholder = placeholder;
  }

  // Seven "09:00-12:00, 14:00-18:00" fields -> {"mon": [["09:00", "12:00"], ...], ...};
  // every day empty -> {} (no business hours: always open).
  #hours(key) {
    const hours = {};
    for (const [day, name] of this.days) {
      const text = this.#fields[`${key}.${day}`].value.trim();
      hours[day] = !text ? [] : text.split(/[,;]/).map((part) => {
        const match = part.trim().match(RANGE);
        const range = match && [time(match[1], match[2]), time(match[3], match[4])];
        if (!range || !range[0] || !range[1] || range[0] >= range[1]) {
          throw { field: `${key}.${day}`, message: this.#text.t('site.hours_invalid', { day: name, text: part.trim() }) };
        }
        return range;
      });
    }
    return Object.values(hours).some((ranges) => ranges.length) ? hours : {};
  }

  // -- saving ---------------------------------------------------------------------------

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
      this.show(site, this.#built);
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
    const candidates = [...Object.keys(this.#fields), ...Object.keys(this.#apiFields)].sort((a, b) => b.length - a.length);
    const sent = Object.keys(changes);
    const named = candidates.includes(reason) ? reason
      : candidates.find((name) => message.includes(name)) || (sent.length === 1 ? sent[0] : null);
    if (named && named === this.#hoursKey) {
      const day = this.days.find(([key]) => new RegExp(`\\b${key}\\b`).test(message));
      if (day) return `${named}.${day[0]}`;
    }
    return named && (this.#fields[named] ? named : this.#apiFields[named]);
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
