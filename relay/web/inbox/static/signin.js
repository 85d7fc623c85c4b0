// Signing in by email: the address form, "check your email", and the link's landing
// ("Sign in as …" with a button: mail scanners open links, so a link alone must never
// sign in). Calls onSignedIn(me) once the relay set the session cookie.
import { ApiError } from './api.js';
import { el } from './dom.js';

const EMAIL = /^[^@\s]+@[^@\s]+\.[^@\s]+$/;
const REFUSALS = new Set(['expired', 'used', 'invalid']); // the relay's `reason` for a bad link

export class SignIn {
  #api;
  #text;
  #onSignedIn;

  constructor(api, text, onSignedIn) {
    this.#api = api;
    this.#text = text;
    this.#onSignedIn = onSignedIn;
    this.card = el('div', { class: 'signin-card' });
    this.root = el('main', { class: 'signin', id: 'main' },
      el('p', { class: 'brand' }, el('span', { class: 'logo', 'aria-hidden': 'true' }), el('span', {}, text.t('brand'))),
      this.card);
  }

  // notice: why we are here ("You were signed out", a refused link), or ''.
  showForm(notice = '', email = '') {
    const t = this.#text.t;
    const input = el('input', { type: 'email', id: 'signin-email', autocomplete: 'email', required: true, maxlength: '254', 'aria-describedby': 'signin-error' });
    input.value = email;
    const error = el('p', { class: 'error', id: 'signin-error', role: 'alert' });
    const submit = el('button', { type: 'submit', class: 'primary wide' }, t('signin.send'));
    const form = el('form', { novalidate: true },
      el('label', { for: 'signin-email' }, t('signin.email')), input, error, submit);
    this.card.replaceChildren(
      ...(notice ? [el('p', { class: 'notice', role: 'status' }, notice)] : []),
      el('h1', {}, t('signin.title')),
      el('p', { class: 'lead' }, t('signin.intro')),
      form);
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      const address = input.value.trim();
      if (!EMAIL.test(address)) {
        input.setAttribute('aria-invalid', 'true');
        error.textContent = t('signin.invalid_email');
        return input.focus();
      }
      input.removeAttribute('aria-invalid');
      error.textContent = '';
      submit.disabled = true;
      try {
        await this.#api.askLink(address, this.#text.language);
        this.showSent(address);
      } catch (failure) {
        error.textContent = t({ 422: 'signin.invalid_email', 429: 'signin.rate_limited', 503: 'signin.no_mail' }[failure.status] || (failure.status ? 'error.generic' : 'error.network'));
        if (failure.status === 422) input.setAttribute('aria-invalid', 'true');
        input.focus();
      } finally {
        submit.disabled = false;
      }
    });
    input.focus();
  }

  showSent(email) {
    const t = this.#text.t;
    const again = el('button', { type: 'button', class: 'link' }, t('signin.other_address'));
    const heading = el('h1', { tabindex: '-1' }, t('signin.sent_title'));
    this.card.replaceChildren(
      heading,
      el('p', { class: 'lead', role: 'status' }, t('signin.sent', { email })),
      el('p', { class: 'muted' }, t('signin.sent_hint')),
      again);
    again.addEventListener('click', () => this.showForm('', email));
    heading.focus();
  }

  // Arrived through a link: its token waits for the owner's click.
  showConfirm(token) {
    const t = this.#text.t;
    const email = emailIn(token);
    const button = el('button', { type: 'button', class: 'primary wide' }, t('signin.confirm'));
    const error = el('p', { class: 'error', role: 'alert' });
    const other = el('button', { type: 'button', class: 'link' }, t('signin.other_address'));
    this.card.replaceChildren(
      el('h1', {}, t('signin.confirm_title')),
      el('p', { class: 'lead' }, email ? t('signin.confirm_as', { email }) : t('signin.confirm_intro')),
      button, error, other);
    other.addEventListener('click', () => this.showForm());
    button.addEventListener('click', async () => {
      button.disabled = true;
      try {
        this.#onSignedIn(await this.#api.signIn(token));
      } catch (failure) {
        if (failure.status === 401 || failure.code === 'invalid_token') {
          const reason = REFUSALS.has(failure.reason) ? failure.reason : 'invalid';
          return this.showForm(t(`signin.link_${reason}`), email);
        }
        if (!(failure instanceof ApiError)) throw failure; // a bug here, not a refusal
        error.textContent = t(failure.status ? 'error.generic' : 'error.network');
        button.disabled = false;
      }
    });
    button.focus();
  }
}

// The address a sign-in token was made for, to say "Sign in as …": the token's first
// part is its payload, base64url JSON {"e": email, ...} (itsdangerous; a payload that
// starts with "." is compressed and not worth decoding). Display only: the relay checks.
function emailIn(token) {
  const payload = token.split('.')[0];
  if (!payload) return '';
  try {
    const json = atob(payload.replace(/-/g, '+').replace(/_/g, '/'));
    const email = JSON.parse(new TextDecoder().decode(Uint8Array.from(json, (c) => c.charCodeAt(0)))).e;
    return typeof email === 'string' && EMAIL.test(email) ? email : '';
  } catch {
    return '';
  }
}
