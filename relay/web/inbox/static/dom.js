// Building the DOM without HTML strings: text goes in as text nodes only, so nothing
// a visitor writes can become markup. Icons are SVG built node by node (no innerHTML,
// no style attributes: the page runs under a strict Content-Security-Policy).

export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === false || value === null || value === undefined) continue;
    node.setAttribute(name, value === true ? '' : String(value));
  }
  node.append(...children.flat().filter((child) => child !== null && child !== undefined && child !== false));
  return node;
}

// Make `parent`'s children exactly `nodes`, in order, moving only what moved: a node
// kept in place keeps its focus, its scroll position and its screen-reader cursor.
export function reconcile(parent, nodes) {
  const focused = parent.contains(document.activeElement) ? document.activeElement : null;
  let cursor = parent.firstChild;
  for (const node of nodes) {
    if (node === cursor) cursor = cursor.nextSibling;
    else parent.insertBefore(node, cursor);
  }
  while (cursor) {
    const next = cursor.nextSibling;
    cursor.remove();
    cursor = next;
  }
  // Moving a node drops its focus in Chromium: give it back when it is still here.
  if (focused && focused !== document.activeElement && parent.contains(focused)) focused.focus({ preventScroll: true });
}

// Nodes kept by key across renders (a thread id, a message seq or client_id).
export class Keyed {
  #nodes = new Map();
  #seen = new Set();

  get(key, make) {
    let node = this.#nodes.get(key);
    if (!node) {
      node = make();
      this.#nodes.set(key, node);
    }
    this.#seen.add(key);
    return node;
  }

  // After a render: forget the nodes that were not asked for.
  prune() {
    for (const key of this.#nodes.keys()) if (!this.#seen.has(key)) this.#nodes.delete(key);
    this.#seen.clear();
  }

  clear() {
    this.#nodes.clear();
    this.#seen.clear();
  }
}

const SVG = 'http://www.w3.org/2000/svg';
// 24×24 outline icons (stroke paths), drawn in currentColor.
const ICONS = {
  settings: ['M12 15a3 3 0 1 0 0-6 3 3 0 0 0 0 6Z', 'M19.4 15a1.7 1.7 0 0 0 .3 1.8l.1.1a2 2 0 1 1-2.8 2.8l-.1-.1a1.7 1.7 0 0 0-1.8-.3 1.7 1.7 0 0 0-1 1.5V21a2 2 0 1 1-4 0v-.1a1.7 1.7 0 0 0-1.1-1.5 1.7 1.7 0 0 0-1.8.3l-.1.1a2 2 0 1 1-2.8-2.8l.1-.1a1.7 1.7 0 0 0 .3-1.8 1.7 1.7 0 0 0-1.5-1H3a2 2 0 1 1 0-4h.1a1.7 1.7 0 0 0 1.5-1.1 1.7 1.7 0 0 0-.3-1.8l-.1-.1a2 2 0 1 1 2.8-2.8l.1.1a1.7 1.7 0 0 0 1.8.3H9a1.7 1.7 0 0 0 1-1.5V3a2 2 0 1 1 4 0v.1a1.7 1.7 0 0 0 1 1.5 1.7 1.7 0 0 0 1.8-.3l.1-.1a2 2 0 1 1 2.8 2.8l-.1.1a1.7 1.7 0 0 0-.3 1.8V9a1.7 1.7 0 0 0 1.5 1H21a2 2 0 1 1 0 4h-.1a1.7 1.7 0 0 0-1.5 1Z'],
  bell: ['M18 8a6 6 0 0 0-12 0c0 7-3 9-3 9h18s-3-2-3-9', 'M13.7 21a2 2 0 0 1-3.4 0'],
  help: ['M12 22a10 10 0 1 0 0-20 10 10 0 0 0 0 20Z', 'M9.1 9a3 3 0 0 1 5.8 1c0 2-3 3-3 3', 'M12 17h.01'],
  signOut: ['M9 21H5a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2h4', 'M16 17l5-5-5-5', 'M21 12H9'],
  back: ['M15 18l-6-6 6-6'],
  search: ['M11 19a8 8 0 1 0 0-16 8 8 0 0 0 0 16Z', 'M21 21l-4.35-4.35'],
  send: ['M22 2 11 13', 'M22 2 15 22l-4-9-9-4 20-7Z'],
  check: ['M20 6 9 17l-5-5'],
  archive: ['M21 8v13H3V8', 'M1 3h22v5H1z', 'M10 12h4'],
  reopen: ['M3 12a9 9 0 1 0 3-6.7L3 8', 'M3 3v5h5'],
  close: ['M18 6 6 18', 'M6 6l12 12'],
  alert: ['M10.3 3.9 1.8 18a2 2 0 0 0 1.7 3h17a2 2 0 0 0 1.7-3L13.7 3.9a2 2 0 0 0-3.4 0Z', 'M12 9v4', 'M12 17h.01'],
  inbox: ['M22 12h-6l-2 3h-4l-2-3H2', 'M5.45 5.11 2 12v6a2 2 0 0 0 2 2h16a2 2 0 0 0 2-2v-6l-3.45-6.89A2 2 0 0 0 16.76 4H7.24a2 2 0 0 0-1.79 1.11Z'],
  paperclip: ['m21.44 11.05-9.19 9.19a6 6 0 0 1-8.49-8.49l8.57-8.57A4 4 0 1 1 18 8.84l-8.59 8.57a2 2 0 0 1-2.83-2.83l8.49-8.48'],
  file: ['M14 2H6a2 2 0 0 0-2 2v16a2 2 0 0 0 2 2h12a2 2 0 0 0 2-2V8Z', 'M14 2v6h6'],
};

export function icon(name) {
  const svg = document.createElementNS(SVG, 'svg');
  for (const [key, value] of Object.entries({ viewBox: '0 0 24 24', width: '20', height: '20', 'aria-hidden': 'true', focusable: 'false', class: 'icon' })) {
    svg.setAttribute(key, value);
  }
  for (const d of ICONS[name]) {
    const path = document.createElementNS(SVG, 'path');
    path.setAttribute('d', d);
    svg.append(path);
  }
  return svg;
}

// An icon-only button: its name comes from aria-label, its tooltip from title.
export function iconButton(name, label, attributes = {}) {
  return el('button', { type: 'button', class: 'icon-button', 'aria-label': label, title: label, ...attributes }, icon(name));
}

// A press on a modal dialog's backdrop (outside its box) closes it, as a menu would.
export function closeOnBackdrop(dialog) {
  dialog.addEventListener('click', (event) => {
    if (event.target !== dialog) return;
    const box = dialog.getBoundingClientRect();
    const inside = event.clientX >= box.left && event.clientX <= box.right && event.clientY >= box.top && event.clientY <= box.bottom;
    if (!inside) dialog.close();
  });
}

// Inputs that take no typed text: a single-key shortcut still works while they have focus.
const NOT_TYPED = new Set(['radio', 'checkbox', 'button', 'submit', 'reset', 'color', 'range', 'file', 'image']);

// Is the user typing in a field (where single-key shortcuts must not fire)? A select
// counts: letters pick its options.
export function isField(node) {
  if (!node) return false;
  if (node.tagName === 'INPUT') return !NOT_TYPED.has(node.type);
  return node.isContentEditable || node.tagName === 'TEXTAREA' || node.tagName === 'SELECT';
}
