// Turning plain message text into DOM nodes: text stays text (textContent only);
// http(s) URLs become links that cannot reach back into the page.

const URL_PATTERN = /\bhttps?:\/\/[^\s<>"']+/gi;
const TRAILING = /[.,;:!?)\]}'"»]+$/; // punctuation after a URL belongs to the sentence

export function renderText(parent, text) {
  let last = 0;
  for (const match of text.matchAll(URL_PATTERN)) {
    let url = match[0];
    const trailing = url.match(TRAILING);
    if (trailing) url = url.slice(0, -trailing[0].length);
    if (match.index > last) parent.append(text.slice(last, match.index));
    parent.append(externalLink(url));
    last = match.index + url.length;
  }
  if (last < text.length) parent.append(text.slice(last));
}

// A link out of the page (no opener, no referrer), or the label as text when the URL
// is not http(s). The inbox uses it too.
export function externalLink(url, label = url) {
  let parsed;
  try {
    parsed = new URL(url);
  } catch {
    return label;
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') return label;
  const a = document.createElement('a');
  a.href = parsed.href;
  a.textContent = label;
  a.target = '_blank';
  a.rel = 'noopener noreferrer nofollow';
  return a;
}

// timeZone: an IANA name (the site's), else the visitor's own clock.
export function timeLabel(date, language, timeZone) {
  return new Intl.DateTimeFormat(language, { hour: '2-digit', minute: '2-digit', timeZone }).format(date);
}

export function dayLabel(date, language, t) {
  const today = new Date();
  const yesterday = new Date(today);
  yesterday.setDate(today.getDate() - 1);
  if (sameDay(date, today)) return t('day.today');
  if (sameDay(date, yesterday)) return t('day.yesterday');
  return new Intl.DateTimeFormat(language, { weekday: 'long', day: 'numeric', month: 'long' }).format(date);
}

export function sameDay(a, b, timeZone) {
  const day = new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' });
  return day.format(a) === day.format(b);
}
