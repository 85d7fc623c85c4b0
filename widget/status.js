// The header's status line, from the site's public availability (relay/sites/
// availability.py public_availability). t: the catalogue lookup; locale: for Intl.
import { sameDay, timeLabel } from './text.js';

const DAY = 864e5; // ms

// [text, online]: at the inbox now; else, while open, how fast we reply; else when we
// are back and the away text.
export function statusLine(a, t, language, locale) {
  if (a.online) return [t('availability.online'), true];
  const next = a.next_open && new Date(a.next_open);
  if (a.open || (next && next <= new Date())) { // a page left open past the opening time
    return [a.reply_seconds ? t('availability.typical', { duration: duration(a.reply_seconds, locale) }) : t('panel.availability'), false];
  }
  const away = a.away_texts?.[language] || a.away_text || t('availability.away');
  return [`${next ? back(next, a, t, language, locale) : t('availability.closed')} ${away}`, false];
}

// On the site's clock, as the automatic reply says it (one instant, one time), with
// the zone named when the visitor's clock is another.
function back(next, a, t, language, locale) {
  const zone = a.timezone || 'UTC';
  const now = new Date();
  let time = timeLabel(next, locale, zone);
  if (Intl.DateTimeFormat().resolvedOptions().timeZone !== zone) time += ` (${a.zone_names?.[language] || zone})`;
  if (sameDay(next, now, zone)) return t('availability.back_today', { time });
  if (sameDay(next, new Date(now.getTime() + DAY), zone)) return t('availability.back_tomorrow', { time });
  // Within the week the weekday says it; further ahead, the date too.
  const options = next - now < 6 * DAY ? { weekday: 'long' } : { weekday: 'long', day: 'numeric', month: 'long' };
  return t('availability.back', { day: new Intl.DateTimeFormat(locale, { ...options, timeZone: zone }).format(next), time });
}

// 300 -> "5 minutes", 7200 -> "2 hours", 90000 -> "1 day", in the visitor's language.
function duration(seconds, locale) {
  const minutes = Math.max(1, Math.round(seconds / 60));
  const [value, unit] = minutes < 55 ? [minutes, 'minute'] : minutes < 1320 ? [Math.round(minutes / 60), 'hour'] : [Math.round(minutes / 1440), 'day'];
  return new Intl.NumberFormat(locale, { style: 'unit', unit, unitDisplay: 'long' }).format(value);
}
