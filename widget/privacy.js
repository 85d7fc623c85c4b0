// The ⋯ menu: continue in a messaging app, and the visitor's data: download it (text or
// JSON), delete it, sign out here or everywhere. Deleting and signing out everywhere ask
// first, inside the panel.
import { Controller } from './controller.js';

// ms. The relay's codes expire after 15 minutes: an older one is asked again, so the app
// still takes it when the visitor gets there.
const CODE_FRESH = 10 * 60 * 1000;

export class Privacy extends Controller {
  #pending = null; // the action waiting in the confirm step: 'delete' | 'sign_out_all'
  #codes = new Map(); // app link -> {at, token} of the code its href holds (or is asked for)

  connect() {
    super.connect();
    const view = this.chat.view;
    this.listen(view.menuButton, 'click', () => this.#showMenu(view.menu.hidden));
    this.listen(view.menu, 'click', (event) => {
      const item = event.target.closest('[data-action]');
      if (item?.dataset.channel) this.#followed(item);
      else this.#act(item?.dataset.action);
    });
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
    if (show) this.#prepareLinks();
    if (show) view.menuItems()[0].focus();
    else if (focus) view.menuButton.focus();
  }

  // Each app link gets its code as the menu opens, so that a click follows a real link:
  // window.open after an await has lost the click's user activation, and Safari blocks it.
  #prepareLinks() {
    const { view, conversation } = this.chat;
    const token = conversation.token;
    for (const link of view.appLinks()) {
      const held = this.#codes.get(link);
      if (held?.token === token && Date.now() - held.at < CODE_FRESH) continue;
      const asked = { at: Date.now(), token };
      this.#codes.set(link, asked);
      link.removeAttribute('href');
      link.setAttribute('aria-disabled', 'true');
      conversation.continueIn(link.dataset.channel).then(({ url }) => {
        if (this.#codes.get(link) !== asked) return; // a newer code was asked meanwhile
        link.href = url;
        link.removeAttribute('aria-disabled');
      }, () => this.#codes.delete(link)); // stays disabled; the next opening asks again
    }
  }

  // The link opens the app in a new tab by itself; its code is spent (single use).
  #followed(link) {
    if (!link.href) return; // its code has not come (or could not)
    this.#codes.delete(link);
    this.#showMenu(false);
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
