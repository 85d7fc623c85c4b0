// The visitor's data, from the ⋯ menu: download it (text or JSON), delete it, sign out
// here or everywhere. Deleting and signing out everywhere ask first, inside the panel.
import { Controller } from './controller.js';

export class Privacy extends Controller {
  #pending = null; // the action waiting in the confirm step: 'delete' | 'sign_out_all'

  connect() {
    super.connect();
    const view = this.chat.view;
    this.listen(view.menuButton, 'click', () => this.#showMenu(view.menu.hidden));
    this.listen(view.menu, 'click', (event) => this.#act(event.target.closest('[data-action]')?.dataset.action));
    this.listen(view.confirmCancel, 'click', () => this.ask(null));
    this.listen(view.confirmOk, 'click', () => this.#confirmed());
    // A press anywhere else (in the panel or on the page) puts the menu away.
    this.listen(document, 'pointerdown', (event) => {
      const path = event.composedPath();
      if (!view.menu.hidden && !path.includes(view.menu) && !path.includes(view.menuButton)) this.#showMenu(false, false);
    });
  }

  // The panel's keys while the menu or the confirm step is up: true when taken here.
  onKey(event) {
    const view = this.chat.view;
    const key = event.key;
    if (!view.menu.hidden) {
      const items = view.menuItems();
      const index = items.indexOf(this.chat.root.activeElement);
      const next = { ArrowDown: index + 1, ArrowUp: index - 1, Home: 0, End: -1 }[key];
      if (key === 'Escape' || key === 'Tab') {
        if (key === 'Escape') event.preventDefault();
        this.#showMenu(false, key === 'Escape');
        return true;
      }
      if (next !== undefined) {
        event.preventDefault();
        items.at(next % items.length)?.focus();
        return true;
      }
    }
    if (key === 'Escape' && !view.confirm.hidden) {
      event.preventDefault();
      this.ask(null);
      return true;
    }
    return false;
  }

  // No conversation here (forgotten, maybe in another tab): nothing to act on.
  forgotten() {
    const view = this.chat.view;
    view.menu.hidden = view.confirm.hidden = true;
    this.#pending = null;
  }

  #showMenu(show, focus = true) {
    const view = this.chat.view;
    view.menu.hidden = !show;
    view.menuButton.setAttribute('aria-expanded', String(show));
    if (show) view.menuItems()[0].focus();
    else if (focus) view.menuButton.focus();
  }

  #act(action) {
    if (!action) return;
    const { view, conversation } = this.chat;
    this.#showMenu(false, false);
    view.alert.textContent = '';
    if (action === 'delete' || action === 'sign_out_all') return this.ask(action);
    if (action === 'sign_out') return conversation.signOut(false).then(() => this.chat.reset('privacy.signed_out'));
    view.menuButton.focus();
    this.#download(action === 'download_text' ? 'text' : 'json');
  }

  // The confirm step inside the panel (null: put it away, back to the menu button).
  ask(action) {
    const { view, t } = this.chat;
    this.#pending = action;
    view.confirm.hidden = !action;
    if (!action) return view.menuButton.hidden ? view.input.focus() : view.menuButton.focus();
    view.confirmText.textContent = t(`confirm.${action}`);
    view.confirmOk.textContent = t(action === 'delete' ? 'confirm.delete_button' : 'menu.sign_out_all');
    view.confirmCancel.focus();
  }

  async #confirmed() {
    const { view, conversation, t } = this.chat;
    const action = this.#pending;
    if (!action || view.confirmOk.disabled) return;
    view.confirmOk.disabled = true;
    try {
      await (action === 'delete' ? conversation.erase() : conversation.signOut(true));
      this.chat.reset(action === 'delete' ? 'privacy.deleted' : 'privacy.signed_out_all');
    } catch {
      view.alert.textContent = t('error.generic');
      if (!conversation.hasThread) this.chat.reset(''); // refused: this token is gone anyway
    } finally {
      view.confirmOk.disabled = false;
    }
  }

  async #download(format) {
    try {
      const url = URL.createObjectURL(await this.chat.conversation.export(format));
      const a = document.createElement('a');
      a.href = url;
      a.download = `conversation.${format === 'text' ? 'txt' : 'json'}`;
      a.click();
      setTimeout(() => URL.revokeObjectURL(url), 1000); // left to run after a disconnect: it frees the file
    } catch {
      this.chat.view.alert.textContent = this.chat.t('error.generic');
    }
  }
}
