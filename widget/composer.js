// Writing: the composer (Enter sends, Shift+Enter breaks the line), the owner's typing
// line, the email offer after the first message, and "continue on another device".
// Photos and files come by the paperclip (files.js takes them, and drops and pastes).
import { Controller } from './controller.js';

const TYPING_SHOWN_FOR = 6000; // ms an owner "typing" line stays without a new event

export class Composer extends Controller {
  #typingTimer = 0;

  connect() {
    super.connect();
    const { view, conversation } = this.chat;
    this.listen(view.composer, 'submit', (event) => {
      event.preventDefault();
      this.send(view.input.value, true);
    });
    this.listen(view.input, 'keydown', (event) => {
      // Never in the middle of an IME composition.
      if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        this.send(view.input.value, true);
      }
    });
    this.listen(view.attachButton, 'click', () => view.fileInput.click());
    this.listen(view.fileInput, 'change', () => {
      this.chat.attach([...view.fileInput.files]);
      view.fileInput.value = ''; // the same file may be chosen again
    });
    this.listen(view.input, 'input', () => {
      view.autosize();
      conversation.typing();
      // Suggestions come as the first message is written.
      if (!conversation.hasThread) this.chat.answers();
    });
    this.listen(view.contact, 'submit', (event) => this.#saveContact(event));
    this.listen(view.contactSkip, 'click', () => this.#dismissContact('skipped'));
    this.listen(view.handoffToggle, 'click', () => this.showHandoff(view.handoff.hidden));
    this.listen(view.handoffCancel, 'click', () => this.showHandoff(false));
    this.listen(view.handoff, 'submit', (event) => this.#sendLink(event));
  }

  disconnect() {
    super.disconnect();
    this.ownerTyping(false);
  }

  // withFiles: the visitor's send (the page's Porch('send') takes no files they chose).
  send(text, withFiles) {
    const { view, conversation, attachments } = this.chat;
    const body = text.trim();
    const files = (withFiles && attachments?.take()) || [];
    if (!body && !files.length) return;
    conversation.send(body, files);
    view.scrollToEnd();
    view.input.value = '';
    view.autosize();
    conversation.live();
  }

  // The owner types (true, shown a while) or their message came (false).
  ownerTyping(typing) {
    const { view, t, site } = this.chat;
    clearTimeout(this.#typingTimer);
    view.showTyping(typing ? t('typing.owner', { site: site.name }) : '');
    if (typing) this.#typingTimer = setTimeout(() => view.showTyping(''), TYPING_SHOWN_FOR);
  }

  #saveContact(event) {
    event.preventDefault();
    const { view, conversation, t } = this.chat;
    const values = view.contactValues();
    if (!values) return;
    conversation.saveContact(values.name, values.email).then(() => {
      this.#dismissContact('saved');
      view.showNotice(t('contact.saved', { email: values.email }));
    }, () => { view.contactError.textContent = t('error.generic'); });
  }

  #dismissContact(state) {
    this.chat.conversation.contact = state;
    this.chat.render();
  }

  // "Continue on another device": the form to email a link, shown or put away.
  showHandoff(show) {
    const view = this.chat.view;
    view.handoff.hidden = !show;
    view.handoffToggle.setAttribute('aria-expanded', String(show));
    if (!show) return view.handoffToggle.focus();
    view.handoffError.textContent = '';
    view.handoffEmail.value ||= this.chat.conversation.email || '';
    view.handoffEmail.focus();
  }

  async #sendLink(event) {
    event.preventDefault();
    const { view, conversation, t } = this.chat;
    const email = view.email(view.handoffEmail, view.handoffError);
    if (!email || view.handoffSend.disabled) return;
    view.handoffSend.disabled = true;
    try {
      await conversation.sendLink(email);
      this.showHandoff(false);
      view.showNotice(t('handoff.sent', { email }));
    } catch (error) {
      view.handoffError.textContent = t({ 422: 'contact.invalid', 429: 'handoff.rate_limited' }[error.status] || 'error.generic');
      view.handoffEmail.focus();
    } finally {
      view.handoffSend.disabled = false;
    }
  }
}
