// Photos and files in messages: an image as a thumbnail that opens full size in a new
// tab, any other file as a chip (name, size) that downloads; and the words that stand
// for a message made only of files. A file's name is the sender's: text nodes only.
import { el, icon } from './dom.js';

// Sizes in decimal units, as the relay counts a site's max_file_mb (relay/sites/settings.py).
export const MB = 1_000_000;
const KB = 1000;
// Download links work for an hour (relay/tokens.py ATTACHMENT_MAX_AGE): one older than
// this is renewed before it is followed.
export const LINK_FRESH_FOR = 50 * 60_000; // ms

export function isImage(file) {
  return String(file.type || '').startsWith('image/');
}

// "80B", "12 kB", "1.3 MB" in the inbox's language ("1,3 Mo" in French).
export function humanSize(bytes, locale) {
  if (bytes < KB) return new Intl.NumberFormat(locale, { style: 'unit', unit: 'byte', unitDisplay: 'narrow' }).format(bytes);
  const [value, unit] = bytes < MB ? [bytes / KB, 'kilobyte'] : [bytes / MB, 'megabyte'];
  return new Intl.NumberFormat(locale, { style: 'unit', unit, unitDisplay: 'short', maximumFractionDigits: value < 10 ? 1 : 0 }).format(value);
}

// A message's files ({id, name, type, size, url}), each findable by its id so a fresh
// link can be swapped in (renewLinks).
export function fileNodes(files, text) {
  return files.map((file) => (isImage(file) ? imageLink(file) : fileChip(file, text)));
}

function imageLink(file) {
  return el('a', { class: 'file-image', href: file.url, target: '_blank', rel: 'noopener noreferrer', 'data-attachment': file.id, title: file.name },
    el('img', { src: file.url, alt: file.name, loading: 'lazy', decoding: 'async' }));
}

// Served as an attachment (relay/web/attachments.py): following the link downloads it.
function fileChip(file, text) {
  return el('a', { class: 'file-chip', href: file.url, download: file.name, rel: 'noopener noreferrer', 'data-attachment': file.id },
    icon('file'), el('span', { class: 'file-name' }, file.name), el('span', { class: 'file-size' }, humanSize(file.size, text.locale)));
}

// Fresh links into nodes fileNodes made; an image loads again from its new one. One
// that failed (ThreadView marks it data-renewed) tries again even if its link is the
// same: made in the same second, a link is the same.
export function renewLinks(container, files) {
  for (const file of files) {
    const link = container.querySelector(`[data-attachment="${CSS.escape(file.id)}"]`);
    if (!link) continue;
    if (link.getAttribute('href') !== file.url) link.href = file.url;
    const image = link.querySelector('img');
    if (image && (image.getAttribute('src') !== file.url || image.dataset.renewed)) image.src = file.url;
  }
}

// What stands for a message's files where its words would be: "📎 photo.png", "📎 3 files".
export function filesSummary(files, t) {
  if (!files?.length) return '';
  return files.length === 1 ? t('attach.one', { name: files[0].name }) : t('attach.many', { count: files.length });
}

// A message's words on one line, or its files when it has no words.
export function summary(message, t) {
  return oneLine(message.body || '') || filesSummary(message.attachments, t);
}

export function oneLine(text) {
  return text.replace(/\s+/g, ' ').trim();
}
