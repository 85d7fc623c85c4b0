// Keyboard shortcuts, as in mail clients: single keys, never while typing in a field
// (except Escape, which leaves the field), never with Ctrl/Alt/Meta (browser keys).
// "?" opens the list of them.
import { closeOnBackdrop, el, isField } from './dom.js';

export const SHORTCUTS = [
  ['j', 'next'],
  ['k', 'previous'],
  ['r', 'reply'],
  ['e', 'status'],
  ['/', 'search'],
  ['?', 'help'],
  ['Escape', 'leave'],
];

export function installShortcuts(actions, signal) {
  document.addEventListener('keydown', (event) => {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey || event.isComposing) return;
    const target = event.target;
    if (target.closest?.('dialog[open]')) return; // dialogs have their own keys (Escape closes)
    const inField = isField(target);
    if (event.key === 'Escape') {
      if (inField) {
        event.preventDefault();
        actions.leave(target);
      }
      return;
    }
    if (inField) return;
    const action = SHORTCUTS.find(([key]) => key === event.key)?.[1];
    if (!action || !actions[action]) return;
    event.preventDefault();
    actions[action]();
  }, { signal });
}

// The "?" dialog: every shortcut and what it does.
export function shortcutsDialog(text) {
  const t = text.t;
  const close = el('button', { type: 'button', class: 'secondary' }, t('dialog.close'));
  const dialog = el('dialog', { class: 'shortcuts', 'aria-labelledby': 'shortcuts-title' },
    el('h2', { id: 'shortcuts-title' }, t('shortcuts.title')),
    el('dl', {}, ...SHORTCUTS.flatMap(([key, action]) => [
      el('dt', {}, el('kbd', {}, key === 'Escape' ? t('shortcuts.escape_key') : key)),
      el('dd', {}, t(`shortcuts.${action}`)),
    ])),
    el('div', { class: 'dialog-actions' }, close));
  close.addEventListener('click', () => dialog.close());
  closeOnBackdrop(dialog);
  return dialog;
}
