// Words and dates: the catalogue (en + fr, served at /inbox/static/messages.json from
// the one widget/messages.json), dates with Intl, and message text to DOM nodes.

// Message text is rendered exactly as the widget renders it (relay/inbox/page.py
// serves widget/text.js here as widget-text.js).
export { externalLink, renderText } from './widget-text.js';

export const LANGUAGES = ['en', 'fr'];
const MINUTE = 60_000;
const DAY = 86_400_000;

export async function loadCatalogue() {
  const response = await fetch('/inbox/static/messages.json');
  if (!response.ok) throw new Error(`the inbox texts could not load: /inbox/static/messages.json answered ${response.status}`);
  return response.json();
}

export function pickLanguage(...wanted) {
  for (const value of wanted) {
    const language = String(value || '').slice(0, 2).toLowerCase();
    if (LANGUAGES.includes(language)) return language;
  }
  return 'en';
}

const LANGUAGE_KEY = 'porch:inbox:language'; // the owner's last language, for the sign-in page

export function rememberedLanguage() {
  try {
    return localStorage.getItem(LANGUAGE_KEY);
  } catch {
    return null; // storage blocked
  }
}

export function rememberLanguage(language) {
  if (!language) return; // not chosen yet: keep following the browser
  try {
    localStorage.setItem(LANGUAGE_KEY, language);
  } catch {
    // Storage blocked: the sign-in page falls back to the browser's language.
  }
}

export class Text {
  constructor(catalogue, language) {
    this.catalogue = catalogue;
    this.language = pickLanguage(language);
    // Dates in the browser's own locale when it speaks this language (en-GB gets
    // 24-hour times and day-month order), else the plain language.
    const browser = navigator.language || '';
    this.locale = browser.slice(0, 2).toLowerCase() === this.language ? browser : this.language;
    this.t = this.t.bind(this);
  }

  t(key, vars = {}) {
    const text = this.catalogue[this.language]?.[key] ?? this.catalogue.en?.[key];
    if (text === undefined) {
      console.warn(`[porch] no inbox text ${JSON.stringify(key)}`);
      return key;
    }
    return text.replace(/\{(\w+)\}/g, (_, name) => String(vars[name] ?? ''));
  }

  has(key) {
    return key in (this.catalogue[this.language] || {}) || key in (this.catalogue.en || {});
  }

  // "3 days ago", "2 hours ago", "now": for how long ago something happened.
  relativeLong(date, now = new Date()) {
    const seconds = Math.round((date - now) / 1000);
    const format = new Intl.RelativeTimeFormat(this.locale, { numeric: 'auto' });
    for (const [unit, size] of [['year', 31_536_000], ['month', 2_592_000], ['week', 604_800], ['day', 86_400], ['hour', 3600], ['minute', 60]]) {
      if (Math.abs(seconds) >= size) return format.format(Math.round(seconds / size), unit);
    }
    return this.t('time.now');
  }

  // Short, for the thread list: "now", "5 min ago", "14:05", "Yesterday", "Mon", "3 Mar".
  relative(date, now = new Date()) {
    const elapsed = now - date;
    if (elapsed < MINUTE) return this.t('time.now');
    if (elapsed < 60 * MINUTE) {
      return new Intl.RelativeTimeFormat(this.locale, { style: 'narrow', numeric: 'always' }).format(-Math.floor(elapsed / MINUTE), 'minute');
    }
    if (sameDay(date, now)) return this.time(date);
    if (sameDay(date, new Date(now - DAY))) return this.t('day.yesterday');
    if (elapsed < 6 * DAY) return new Intl.DateTimeFormat(this.locale, { weekday: 'short' }).format(date);
    const year = date.getFullYear() === now.getFullYear() ? undefined : 'numeric';
    return new Intl.DateTimeFormat(this.locale, { day: 'numeric', month: 'short', year }).format(date);
  }

  time(date) {
    return new Intl.DateTimeFormat(this.locale, { hour: 'numeric', minute: '2-digit' }).format(date);
  }

  // A day separator in the history: "Today", "Yesterday", "Monday 3 March".
  day(date, now = new Date()) {
    if (sameDay(date, now)) return this.t('day.today');
    if (sameDay(date, new Date(now - DAY))) return this.t('day.yesterday');
    const year = date.getFullYear() === now.getFullYear() ? undefined : 'numeric';
    return new Intl.DateTimeFormat(this.locale, { weekday: 'long', day: 'numeric', month: 'long', year }).format(date);
  }

  date(date) {
    return new Intl.DateTimeFormat(this.locale, { dateStyle: 'medium' }).format(date);
  }

  full(date) {
    return new Intl.DateTimeFormat(this.locale, { dateStyle: 'full', timeStyle: 'short' }).format(date);
  }

  languageName(code) {
    if (!code) return '';
    try {
      return new Intl.DisplayNames([this.locale], { type: 'language' }).of(code) || code;
    } catch {
      return code; // not a language tag Intl knows
    }
  }

  // Monday first, as the site settings store them: [['mon', 'Monday'], ...].
  weekdays() {
    const format = new Intl.DateTimeFormat(this.locale, { weekday: 'long', timeZone: 'UTC' });
    return ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'].map((key, i) => [key, capitalize(format.format(Date.UTC(2024, 0, 1 + i)))]);
  }
}

export function sameDay(a, b) {
  return a.getFullYear() === b.getFullYear() && a.getMonth() === b.getMonth() && a.getDate() === b.getDate();
}

function capitalize(text) {
  return text.charAt(0).toLocaleUpperCase() + text.slice(1);
}

// -- message text ------------------------------------------------------------------

// A search hit as the relay sends it: each matched term -> <mark>.
export function renderMatch(parent, snippet) {
  let last = 0;
  // Terms come between U+0002 and U+0003, which no message can hold.
  for (const match of snippet.matchAll(/\u0002([^\u0002\u0003]*)\u0003/g)) {
    if (match.index > last) parent.append(snippet.slice(last, match.index));
    const mark = document.createElement('mark');
    mark.textContent = match[1];
    parent.append(mark);
    last = match.index + match[0].length;
  }
  if (last < snippet.length) parent.append(snippet.slice(last));
}
