// The files chosen for a reply, above the reply box. Each uploads at once to the thread
// it is for, with a progress bar and a Cancel; a refused one says why on its chip (too
// large, a kind the site does not take) and offers Retry when trying again may help.
// The reply takes the uploaded ones and empties the tray. One tray per thread, kept
// like the reply's draft while the owner looks at another thread.
import { el, icon, iconButton, Keyed, reconcile } from './dom.js';
import { humanSize, isImage } from './files.js';

export const MAX_FILES = 10; // a message carries at most this many (relay/inputs.py MAX_ATTACHMENTS)
// Refusals that the same bytes would meet again: no Retry, only Remove.
const FINAL = new Set(['too_large', 'unsupported_type', 'invalid_request']);
// What the file chooser offers, by the site's file_types (relay/attachments/kinds.py FAMILIES).
const ACCEPT = {
  images: 'image/jpeg,image/png,image/gif,image/webp',
  pdf: 'application/pdf,.pdf',
  text: 'text/plain,.txt',
  office: '.docx,.xlsx,.pptx,.odt,.ods,.odp',
};

// The chooser's `accept` for a site's file_types (all kinds when it has none).
export function acceptFor(fileTypes) {
  const families = Array.isArray(fileTypes) && fileTypes.length ? fileTypes : Object.keys(ACCEPT);
  return families.map((family) => ACCEPT[family]).filter(Boolean).join(',');
}

class Chosen {
  key = crypto.randomUUID();
  state = 'uploading'; // uploading | ready | failed
  sent = 0; // bytes gone so far
  attachment = null; // the relay's {id, name, type, size, url} once ready
  error = null; // the refusal's code once failed
  controller = null; // cancels the upload on its way

  constructor(file) {
    this.file = file;
    // Shown before a byte has gone; an object URL (page.py allows blob: images).
    this.preview = isImage(file) ? URL.createObjectURL(file) : '';
  }
}

export class Tray {
  items = [];
  onchange = null; // (): set by the view that shows this tray
  onfail = null; // (item): an upload was refused or failed
  #upload;

  // `upload(thread, file, {onProgress, signal})`: Api.upload.
  constructor(thread, upload) {
    this.thread = thread;
    this.#upload = upload;
  }

  // Files chosen, dropped or pasted. `limit`: the site's largest file in bytes, when
  // known (a larger one is refused here, before a byte goes). Returns how many were
  // left out, past MAX_FILES.
  add(files, limit) {
    const taken = [...files].slice(0, Math.max(0, MAX_FILES - this.items.length));
    for (const file of taken) {
      const item = new Chosen(file);
      this.items.push(item);
      if (limit && file.size > limit) this.#fail(item, 'too_large');
      else this.#start(item);
    }
    this.#changed();
    return files.length - taken.length;
  }

  retry(item) {
    if (item.state !== 'failed' || FINAL.has(item.error)) return;
    this.#start(item);
    this.#changed();
  }

  // Out of the tray; cancelled first if on its way.
  remove(item) {
    item.controller?.abort();
    this.items = this.items.filter((other) => other !== item);
    if (item.preview) URL.revokeObjectURL(item.preview);
    this.#changed();
  }

  get uploading() {
    return this.items.some((item) => item.state === 'uploading');
  }

  get failed() {
    return this.items.some((item) => item.state === 'failed');
  }

  // The uploaded files, for the reply; the tray is empty after. (Only once none is on
  // its way or failed.)
  take() {
    const files = this.items.map((item) => item.attachment);
    for (const item of this.items) if (item.preview) URL.revokeObjectURL(item.preview);
    this.items = [];
    this.#changed();
    return files;
  }

  async #start(item) {
    const controller = new AbortController();
    Object.assign(item, { state: 'uploading', sent: 0, error: null, controller });
    try {
      item.attachment = await this.#upload(this.thread, item.file, {
        signal: controller.signal,
        onProgress: (sent) => {
          item.sent = sent;
          this.#changed();
        },
      });
      item.state = 'ready';
    } catch (error) {
      if (controller.signal.aborted) return; // cancelled: already out of the tray
      this.#fail(item, error.code || 'error');
    } finally {
      item.controller = null;
    }
    this.#changed();
  }

  #fail(item, code) {
    Object.assign(item, { state: 'failed', error: code });
    this.onfail?.(item);
  }

  #changed() {
    this.onchange?.();
  }
}

// The tray on screen: one chip per file (a thumbnail or a file icon, the name, the size,
// a progress bar while it uploads, what went wrong), each with Cancel / Remove and,
// when it may help, Retry.
export class TrayView {
  #text;
  #nodes = new Keyed();
  #tray = null;
  limit = null; // the site's largest file in bytes, when known: the too-large text says it
  onFocusLost = null; // (): a chip that had focus left (removed): focus goes on from here

  constructor(text) {
    this.#text = text;
    this.root = el('ul', { class: 'tray', 'aria-label': text.t('attach.tray'), hidden: true });
    this.root.addEventListener('click', (event) => {
      const button = event.target.closest('button[data-action]');
      const item = this.#tray?.items.find((chosen) => chosen.key === button?.closest('li').dataset.key);
      if (!item) return;
      if (button.dataset.action === 'remove') return this.#tray.remove(item);
      this.#tray.retry(item);
      button.closest('li').parts.remove.focus(); // Retry hides itself: on to Cancel
    });
  }

  // Show this thread's tray (null: none); the one shown before stops drawing here.
  show(tray, onFail) {
    if (this.#tray && this.#tray !== tray) this.#tray.onchange = this.#tray.onfail = null;
    this.#tray = tray;
    if (tray) {
      tray.onchange = () => this.render();
      tray.onfail = onFail;
    }
    this.render();
  }

  render() {
    const items = this.#tray?.items || [];
    const focused = this.root.contains(document.activeElement);
    reconcile(this.root, items.map((item) => {
      const node = this.#nodes.get(item.key, () => this.#chip(item));
      this.#fill(node, item);
      return node;
    }));
    this.#nodes.prune();
    this.root.hidden = !items.length;
    if (focused && !this.root.contains(document.activeElement)) this.onFocusLost?.();
  }

  // Why an upload failed, in words: "Too large: files up to 10 MB can be sent."
  describe(item) {
    const t = this.#text.t;
    if (item.error === 'too_large') {
      return this.limit ? t('attach.error.too_large', { size: humanSize(this.limit, this.#text.locale) }) : t('attach.error.too_large_plain');
    }
    return this.#text.has(`attach.error.${item.error}`) ? t(`attach.error.${item.error}`) : t('attach.error.generic');
  }

  #chip(item) {
    const t = this.#text.t;
    const name = item.file.name;
    const thumb = item.preview ? el('img', { class: 'tray-thumb', src: item.preview, alt: '' }) : el('span', { class: 'tray-thumb' }, icon('file'));
    const parts = {
      progress: el('progress', { max: String(item.file.size || 1), value: '0', 'aria-label': t('attach.uploading', { name }) }),
      error: el('p', { class: 'tray-error' }),
      retry: el('button', { type: 'button', class: 'link', 'data-action': 'retry', 'aria-label': t('attach.retry_label', { name }) }, t('attach.retry')),
      remove: iconButton('close', '', { 'data-action': 'remove' }),
    };
    const node = el('li', { class: 'tray-item', 'data-key': item.key }, thumb,
      el('div', { class: 'tray-text' },
        el('span', { class: 'file-name' }, name),
        el('span', { class: 'file-size' }, humanSize(item.file.size, this.#text.locale)),
        parts.progress, parts.error, parts.retry),
      parts.remove);
    node.parts = parts;
    return node;
  }

  #fill(node, item) {
    const t = this.#text.t;
    const { progress, error, retry, remove } = node.parts;
    progress.value = item.sent;
    progress.hidden = item.state !== 'uploading';
    if (node.dataset.state !== item.state) {
      node.dataset.state = item.state;
      node.classList.toggle('failed', item.state === 'failed');
      error.textContent = item.state === 'failed' ? this.describe(item) : '';
      retry.hidden = item.state !== 'failed' || FINAL.has(item.error);
      const label = t(item.state === 'uploading' ? 'attach.cancel' : 'attach.remove', { name: item.file.name });
      remove.setAttribute('aria-label', label);
      remove.title = label;
    }
  }
}
