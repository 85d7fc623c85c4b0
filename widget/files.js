// Photos and files on screen, a part of the chat that app.js loads as the panel first
// opens: files dropped on the panel or pasted into the composer (the paperclip is in
// view.js), the tray of files chosen for the next message, the files of a message on
// its way (progress, cancel, what went wrong) and of a stored one (images as thumbnails
// that open full size, other files as a chip that downloads).
// Names come from visitors and owners: set as text, never as markup.
import { Controller } from './controller.js';
import { el } from './view.js';

const MB = 1000 * 1000; // the relay's max_file_mb and max_message_mb count in decimal megabytes
const MAX_FILES = 10; // the relay takes at most 10 files in one message
const STALE = 50 * 60 * 1000; // ms; download links last an hour: older ones are renewed before a click
const RELINK_EVERY = 60 * 1000; // ms; at most one re-read of the thread a minute: a broken image never loops
// What the file chooser offers, by the site's file_types (the relay judges each file by
// its bytes, whatever it is called). image/* lets a phone offer its camera and gallery.
const ACCEPT = { images: 'image/*', pdf: '.pdf', text: '.txt', office: '.docx,.xlsx,.pptx,.odt,.ods,.odp' };
const ERRORS = { too_large: 'attach.too_large', unsupported_type: 'attach.unsupported', network: 'attach.network', lost: 'attach.lost' };
// Styles of what this module draws: they come with it (as the launcher's come with embed.js),
// so the chat's own stylesheet stays small.
const CSS = `
.tray { list-style: none; margin: 0; padding: 8px 12px 0; display: flex; flex-wrap: wrap; gap: 6px;
  max-height: 130px; overflow-y: auto; border-top: 1px solid var(--porch-line); }
.tray[hidden] { display: none; }
.tray:not([hidden]) + .composer-row { border-top: 0; }
.file, .chip { display: grid; grid-template-columns: auto minmax(0, 1fr) auto auto; align-items: center; gap: 4px 8px;
  max-width: 100%; box-sizing: border-box; padding: 4px 6px; border: 1px solid var(--porch-line); border-radius: 8px;
  font-size: 12.5px; background: var(--porch-bg); color: var(--porch-fg); text-decoration: none; }
.file img { width: 36px; height: 36px; object-fit: cover; border-radius: 4px; }
.icon svg { display: block; width: 22px; height: 22px; }
.name { max-width: 180px; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.size { color: var(--porch-muted); white-space: nowrap; }
.remove { grid-area: 1 / 4; border: 0; padding: 0 4px; background: none; color: var(--porch-muted); font-size: 18px; line-height: 1; cursor: pointer; }
.files { display: flex; flex-direction: column; align-items: inherit; gap: 4px; margin-top: 4px; max-width: 100%; }
.files progress, .files .error { grid-column: 1 / -1; }
.files progress { width: 100%; height: 6px; accent-color: var(--porch-accent); }
.files .error { color: var(--porch-danger); }
.thumb img { display: block; max-width: 220px; max-height: 220px; border-radius: 12px; background: var(--porch-owner-bubble); }
.panel.dropping::after { content: attr(data-drop); position: absolute; z-index: 3; inset: 8px; display: grid;
  place-items: center; padding: 24px; text-align: center; font-weight: 600; pointer-events: none;
  border: 3px dashed var(--porch-accent); border-radius: 12px; background: var(--porch-bg); opacity: .95; }`;
const FILE_ICON = '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M6 2h8l6 6v14H6z" fill="none" stroke="currentColor" stroke-width="1.6"/><path d="M14 2v6h6" fill="none" stroke="currentColor" stroke-width="1.6"/></svg>';

export class Files extends Controller {
  #tray;
  #chosen = []; // [{file, url}]: url an object URL of an image, for its thumbnail
  #urls = new Map(); // key of a file being sent -> object URL of its thumbnail
  #bars = new Map(); // key -> its <progress>
  #seen = new WeakMap(); // message -> when its links were made (about when it came)
  #relinkedAt = 0;

  constructor(chat) {
    super(chat);
    const sheet = new CSSStyleSheet();
    sheet.replaceSync(CSS);
    chat.root.adoptedStyleSheets = [...chat.root.adoptedStyleSheets, sheet];
    this.#tray = el('ul', { class: 'tray', 'aria-label': chat.t('attach.chosen'), hidden: '' });
    chat.view.composerRow.before(this.#tray);
    chat.view.panel.dataset.drop = chat.t('attach.drop'); // the hint while dragging (CSS above)
    chat.view.fileInput.accept = (chat.site.file_types || Object.keys(ACCEPT)).map((type) => ACCEPT[type]).join();
  }

  connect() {
    super.connect();
    const { conversation, view } = this.chat;
    const panel = view.panel;
    // Files are copied out of their event at once: a DataTransfer empties when it ends.
    this.listen(view.input, 'paste', (event) => {
      const data = event.clipboardData;
      // Text copied from a document may bring a picture of itself: the text wins.
      if (!data?.files.length || data.types.includes('text/plain')) return;
      event.preventDefault();
      this.add([...data.files]);
    });
    this.listen(panel, 'dragover', (event) => {
      if (!event.dataTransfer.types.includes('Files')) return;
      event.preventDefault(); // a drop here attaches, and does not open the file in the tab
      panel.classList.add('dropping');
    });
    this.listen(panel, 'dragleave', (event) => {
      if (!panel.contains(event.relatedTarget)) panel.classList.remove('dropping');
    });
    this.listen(panel, 'drop', (event) => {
      panel.classList.remove('dropping');
      if (!event.dataTransfer.files.length) return;
      event.preventDefault();
      this.add([...event.dataTransfer.files]);
    });
    this.listen(conversation, 'change', () => this.#prune());
    // Not loaded (offline on a first visit): no upload runs either.
    conversation.uploads().then((uploads) => {
      if (!this.signal) return; // off the page meanwhile
      this.listen(uploads, 'progress', ({ detail: key }) => {
        const bar = this.#bars.get(key);
        if (bar) bar.value = uploads.progress.get(key);
      });
      // Said plainly: without IndexedDB, a file waiting for the network waits in this page only.
      this.listen(uploads, 'unkept', () => {
        if (!conversation.online) view.alert.textContent = this.chat.t('attach.memory');
      });
    }, () => {});
  }

  // Files for the next message: refused at once when the relay would refuse them for
  // their size (the reason in the live region), else shown in the tray.
  add(files) {
    if (!files.length) return;
    const { t, site, view } = this.chat;
    const fileMb = site.max_file_mb || 10;
    const messageMb = site.max_message_mb || 25;
    let total = this.#chosen.reduce((sum, chosen) => sum + chosen.file.size, 0);
    const refused = [];
    for (const file of files) {
      if (this.#chosen.length >= MAX_FILES) {
        refused.push(t('attach.too_many', { count: MAX_FILES }));
        break;
      }
      if (file.size > fileMb * MB) refused.push(t('attach.too_large', { name: file.name, mb: fileMb }));
      else if (total + file.size > messageMb * MB) refused.push(t('attach.total', { mb: messageMb }));
      else {
        total += file.size;
        this.#chosen.push({ file, url: isImage(file) ? URL.createObjectURL(file) : '' });
      }
    }
    view.alert.textContent = refused.join(' ');
    this.#drawTray();
    view.input.focus();
  }

  // The chosen files, for the message being sent; the tray empties.
  take() {
    const files = this.#chosen.map(({ file, url }) => {
      URL.revokeObjectURL(url);
      return file;
    });
    this.#chosen = [];
    this.#drawTray();
    this.chat.view.alert.textContent = '';
    return files;
  }

  #drawTray() {
    const t = this.chat.t;
    this.#tray.hidden = !this.#chosen.length;
    this.#tray.replaceChildren(...this.#chosen.map((chosen) => {
      const { file, url } = chosen;
      const remove = el('button', { type: 'button', class: 'remove', 'aria-label': t('attach.remove', { name: file.name }) }, '×');
      remove.addEventListener('click', () => {
        URL.revokeObjectURL(url);
        this.#chosen = this.#chosen.filter((other) => other !== chosen);
        this.#drawTray();
        this.chat.view.input.focus();
      });
      return el('li', { class: 'file' }, preview(url), ...this.#label(file), remove);
    }));
  }

  // A message's files (View.render calls it for each): `sending` for an outbox entry
  // (its files have a key, maybe an id and an error), else a stored message's
  // attachments (with their url). Drawn again only when they changed.
  draw(node, entry, sending = false) {
    const files = (sending ? entry.files : entry.attachments) || [];
    let box = node.querySelector('.files');
    if (!box && !files.length) return;
    if (!box) node.querySelector('.meta').before(box = el('div', { class: 'files' }));
    const state = JSON.stringify([sending, files]);
    if (box.state === state) return;
    box.state = state;
    box.replaceChildren(...files.map((file) => (sending ? this.#sending(entry, file) : this.#stored(node, entry, file))));
  }

  #sending(item, file) {
    const { t, conversation, view } = this.chat;
    const blob = conversation.blobs.get(file.key);
    let url = this.#urls.get(file.key);
    if (!url && blob && isImage(file)) this.#urls.set(file.key, url = URL.createObjectURL(blob));
    const row = el('div', { class: 'file' }, preview(url), ...this.#label(file));
    if (file.error) {
      const text = t(ERRORS[file.error], { name: file.name, mb: this.chat.site.max_file_mb || 10 });
      row.append(el('span', { class: 'error' }, text));
      view.alert.textContent = text;
    } else if (!file.id) {
      const bar = el('progress', { max: '1', 'aria-label': t('attach.progress', { name: file.name }) });
      conversation.uploads().then((uploads) => { bar.value = uploads.progress.get(file.key) || 0; }, () => {});
      this.#bars.set(file.key, bar);
      row.append(bar);
    }
    const cancel = el('button', { type: 'button', class: 'remove', 'aria-label': t('attach.cancel', { name: file.name }) }, '×');
    cancel.addEventListener('click', () => conversation.uploads().then((uploads) => uploads.remove(item.client_id, file.key), () => {}));
    row.append(cancel);
    return row;
  }

  #stored(node, message, file) {
    if (!this.#seen.has(message)) this.#seen.set(message, Date.now());
    const image = isImage(file);
    const link = el('a', { href: file.url, target: '_blank', rel: 'noopener noreferrer', class: image ? 'thumb' : 'chip' });
    link.dataset.id = file.id;
    if (image) {
      const img = el('img', { src: file.url, alt: file.name, loading: 'lazy' });
      img.addEventListener('error', () => this.#relink(message.seq), { once: true });
      // Its height comes when it loads: a log read to its end stays at its end.
      img.addEventListener('load', () => {
        const log = this.chat.view.log;
        if (log.scrollHeight - log.scrollTop - log.clientHeight - img.offsetHeight < 40) this.chat.view.scrollToEnd();
      });
      link.append(img);
    } else {
      link.append(icon(), ...this.#label(file));
    }
    link.addEventListener('click', (event) => {
      if (Date.now() - this.#seen.get(message) < STALE) return;
      const renewing = this.#relink(message.seq);
      if (!renewing) return; // renewed a moment ago: this link is as fresh as it gets
      event.preventDefault();
      // The box is drawn again with the fresh links (the 'change' renders at once).
      renewing.then(() => [...node.querySelectorAll('.files a')].find((a) => a.dataset.id === file.id)?.click());
    });
    return link;
  }

  // Fresh download links for message `seq` and those after it; null when just done.
  #relink(seq) {
    if (Date.now() - this.#relinkedAt < RELINK_EVERY) return null;
    this.#relinkedAt = Date.now();
    return this.chat.conversation.uploads().then((uploads) => uploads.relink(seq)).catch(() => {});
  }

  #label(file) {
    return [el('span', { class: 'name' }, file.name), el('span', { class: 'size' }, this.#size(file.size))];
  }

  // 77 bytes, 12 kB, 1.5 MB (1,5 Mo in French): decimal units, as the relay's limits count.
  #size(bytes) {
    const [unit, value] = bytes < 1000 ? ['byte', bytes] : bytes < MB ? ['kilobyte', bytes / 1000] : ['megabyte', bytes / MB];
    // "77 bytes": the short form would say "77 byte".
    return new Intl.NumberFormat(this.chat.locale(), { style: 'unit', unit, unitDisplay: unit === 'byte' ? 'long' : 'short', maximumFractionDigits: 1 }).format(value);
  }

  // Thumbnails and progress bars of files no longer on their way: let go.
  #prune() {
    const keys = new Set(this.chat.conversation.outbox.flatMap((item) => item.files || []).map((file) => file.key));
    for (const [key, url] of this.#urls) {
      if (keys.has(key)) continue;
      URL.revokeObjectURL(url);
      this.#urls.delete(key);
    }
    for (const key of this.#bars.keys()) if (!keys.has(key)) this.#bars.delete(key);
  }
}

function isImage(file) {
  return /^image\//.test(file.type);
}

function preview(url) {
  return url ? el('img', { src: url, alt: '' }) : icon();
}

function icon() {
  const span = el('span', { class: 'icon' });
  span.innerHTML = FILE_ICON; // a constant
  return span;
}
