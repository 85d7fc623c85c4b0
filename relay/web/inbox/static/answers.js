// A site's automatic answers (the owner's own, sent when a visitor's message matches one
// surely): the list in the Website tab of the settings (add, edit, remove after asking),
// a box that shows what would be sent for a question, and what a thread needs of them
// (the label of an automatic answer). The relay checks every answer, as an import does
// (relay/answers/library.py), and says what is wrong.
import { el } from './dom.js';
import { LANGUAGES, renderText } from './text.js';

const SHORT = 140; // characters of an answer shown in the list
// Which field a refusal is about, by the words of the relay's message (first match).
const FIELD_WORDS = [['other ways', 'alternatives'], ['answer', 'answer'], ['language', 'language'], ['question', 'question']];

// Each site's answers, fetched when first needed and kept up to date by the settings
// section. Emits 'change' (detail: the site id) when a site's list changes.
export class AnswerBook extends EventTarget {
  #api;
  #sites = new Map(); // site id -> Map(answer id -> answer), oldest first
  #loading = new Map(); // site id -> the fetch on its way
  #lookedFor = new Set(); // answer ids fetched for once (added on another device)

  constructor(api) {
    super();
    this.#api = api;
  }

  // The site's answers by id, or null until they have loaded (a 'change' follows). An
  // id not among them sends for the list once more: it may have been added since.
  known(site, wanted = null) {
    const answers = this.#sites.get(site);
    const missing = answers && wanted && !answers.has(wanted) && !this.#lookedFor.has(wanted);
    if (missing) this.#lookedFor.add(wanted);
    if (!answers || missing) this.load(site).catch((error) => console.warn('[porch] the answers could not load:', error.message));
    return answers || null;
  }

  list(site) {
    return [...(this.#sites.get(site)?.values() || [])];
  }

  // The list from the relay (one fetch at a time per site).
  load(site) {
    if (!this.#loading.has(site)) {
      const loading = this.#api.answers(site)
        .then(({ answers }) => this.#set(site, answers))
        .finally(() => this.#loading.delete(site));
      this.#loading.set(site, loading);
    }
    return this.#loading.get(site);
  }

  put(site, answer) {
    const answers = this.#sites.get(site) || new Map();
    answers.set(answer.id, answer);
    this.#set(site, [...answers.values()]);
  }

  drop(site, id) {
    this.#set(site, this.list(site).filter((answer) => answer.id !== id));
  }

  #set(site, answers) {
    this.#sites.set(site, new Map(answers.map((answer) => [answer.id, answer])));
    this.dispatchEvent(new CustomEvent('change', { detail: site }));
  }
}

// "Automatic answer to “Do you deliver?”" for a message the relay sent as an answer;
// "Automatic answer" alone when the answer is unknown here (removed since, or loading).
export function answerLabel(id, answers, t) {
  const answer = answers?.get(id);
  return answer ? t('answers.automatic_to', { question: answer.question }) : t('answers.automatic');
}

export class AnswersSection {
  #api;
  #text;
  #book;
  #site = null;
  #editing = null; // the answer the form changes; null: the form adds one

  constructor(api, text, book) {
    this.#api = api;
    this.#text = text;
    this.#book = book;
    const t = text.t;
    this.list = el('ul', { class: 'answer-list', 'aria-labelledby': 'answers-title' });
    this.none = el('p', { class: 'muted' }, t('answers.none'));
    this.listError = el('p', { class: 'error', role: 'alert' });
    this.status = el('p', { class: 'saved', role: 'status' });
    this.#buildForm();
    this.#buildTry();
    this.root = el('section', { class: 'answers', 'aria-labelledby': 'answers-title' },
      el('h3', { id: 'answers-title' }, t('answers.title')),
      el('p', { class: 'muted' }, t('answers.intro')),
      this.list, this.none, this.listError, this.status, this.form, this.tryForm);
    this.list.addEventListener('click', (event) => this.#onListClick(event));
  }

  // The site's list: what is known at once, then fresh from the relay.
  async show(site) {
    if (site.id !== this.#site?.id) {
      this.#site = site;
      this.#reset();
      this.status.textContent = '';
      this.tryInput.value = '';
      this.tryResult.replaceChildren();
      this.tryLanguage.value = this.#siteLanguage();
    }
    this.#site = site;
    this.listError.textContent = '';
    this.#render();
    try {
      await this.#book.load(site.id);
    } catch (error) {
      if (error.status !== 401) this.listError.textContent = this.#text.t(error.status ? 'error.generic' : 'error.network');
      return;
    }
    if (this.#site.id === site.id) this.#render();
  }

  // A new answer, prefilled (a reply saved from a thread): the form in view, its question
  // focused for the owner to check the words before adding it.
  startNew({ question = '', answer = '', language = null } = {}) {
    this.#reset();
    this.question.value = question;
    this.answer.value = answer;
    if (LANGUAGES.includes(language)) this.language.value = language;
    this.cancelButton.hidden = false;
    this.status.textContent = '';
    this.form.scrollIntoView({ block: 'start' });
    this.question.focus({ preventScroll: true });
  }

  #siteLanguage() {
    const language = this.#site?.settings?.language;
    return LANGUAGES.includes(language) ? language : LANGUAGES[0];
  }

  // -- the list -----------------------------------------------------------------------

  #render() {
    const answers = this.#book.list(this.#site.id);
    this.list.replaceChildren(...answers.map((answer) => this.#item(answer)));
    this.none.hidden = answers.length > 0;
  }

  #item(answer) {
    const t = this.#text.t;
    const questionId = `answer-question-${answer.id}`;
    const confirmId = `answer-remove-${answer.id}-text`;
    const short = answer.answer.length > SHORT ? `${answer.answer.slice(0, SHORT - 1).trimEnd()}…` : answer.answer;
    return el('li', { 'data-answer': answer.id },
      el('div', { class: 'answer-head' },
        el('p', { class: 'answer-question', id: questionId }, answer.question),
        el('span', { class: 'pill', lang: answer.language }, t(`language.${answer.language}`))),
      el('p', { class: 'answer-short' }, short),
      el('div', { class: 'row' },
        el('button', { type: 'button', class: 'secondary', 'data-action': 'edit', 'aria-describedby': questionId }, t('answers.edit')),
        el('button', { type: 'button', class: 'secondary', 'data-action': 'ask', 'aria-describedby': questionId }, t('answers.remove'))),
      el('div', { class: 'confirm', hidden: true },
        el('p', { id: confirmId }, t('answers.remove_confirm', { question: answer.question })),
        el('div', { class: 'row' },
          el('button', { type: 'button', class: 'secondary', 'data-action': 'keep' }, t('dialog.cancel')),
          el('button', { type: 'button', class: 'danger', 'data-action': 'remove', 'aria-describedby': confirmId }, t('answers.remove')))));
  }

  async #onListClick(event) {
    const button = event.target.closest('button[data-action]');
    if (!button) return;
    const item = button.closest('[data-answer]');
    const id = item.dataset.answer;
    const row = item.querySelector('.row');
    const confirm = item.querySelector('.confirm');
    const action = button.dataset.action;
    if (action === 'edit') {
      this.#edit(this.#book.known(this.#site.id)?.get(id));
    } else if (action === 'ask') {
      confirm.hidden = false;
      row.hidden = true;
      confirm.querySelector('[data-action=keep]').focus();
    } else if (action === 'keep') {
      confirm.hidden = true;
      row.hidden = false;
      row.querySelector('[data-action=ask]').focus();
    } else if (action === 'remove') {
      await this.#remove(id, button);
    }
  }

  async #remove(id, button) {
    const t = this.#text.t;
    const site = this.#site.id;
    this.listError.textContent = this.status.textContent = '';
    button.disabled = true;
    try {
      await this.#api.removeAnswer(site, id);
    } catch (error) {
      button.disabled = false;
      if (error.status === 404) return this.#book.load(site).then(() => this.#render()); // gone already
      if (error.status !== 401) this.listError.textContent = t(error.status ? 'error.generic' : 'error.network');
      return;
    }
    this.#book.drop(site, id);
    if (this.#editing?.id === id) this.#reset();
    this.#render();
    this.status.textContent = t('answers.removed');
    this.question.focus(); // the removed item (and its focused button) is gone
  }

  // -- adding and editing -------------------------------------------------------------

  #buildForm() {
    const t = this.#text.t;
    this.formTitle = el('h4', { id: 'answer-form-title' });
    this.question = el('input', { type: 'text', id: 'answer-question', maxlength: '300', autocomplete: 'off', 'aria-describedby': 'answer-question-hint' });
    this.alternatives = el('textarea', { id: 'answer-alternatives', rows: '3', 'aria-describedby': 'answer-alternatives-hint' });
    this.answer = el('textarea', { id: 'answer-text', rows: '4', maxlength: '2000' });
    this.language = el('select', { id: 'answer-language' }, ...LANGUAGES.map((code) => el('option', { value: code, lang: code }, t(`language.${code}`))));
    this.submitButton = el('button', { type: 'submit', class: 'primary' });
    this.cancelButton = el('button', { type: 'button', class: 'secondary', hidden: true }, t('dialog.cancel'));
    this.formError = el('p', { class: 'error', role: 'alert', id: 'answer-error' });
    this.form = el('form', { class: 'answer-form', novalidate: true, 'aria-labelledby': 'answer-form-title' },
      this.formTitle,
      el('div', { class: 'field' }, el('label', { for: 'answer-question' }, t('answers.question')), this.question,
        el('p', { class: 'hint', id: 'answer-question-hint' }, t('answers.question_hint'))),
      el('div', { class: 'field' }, el('label', { for: 'answer-alternatives' }, t('answers.alternatives')), this.alternatives,
        el('p', { class: 'hint', id: 'answer-alternatives-hint' }, t('answers.alternatives_hint'))),
      el('div', { class: 'field' }, el('label', { for: 'answer-text' }, t('answers.answer')), this.answer),
      el('div', { class: 'field' }, el('label', { for: 'answer-language' }, t('answers.language')), this.language),
      el('div', { class: 'row' }, this.submitButton, this.cancelButton),
      this.formError);
    this.form.addEventListener('submit', (event) => this.#save(event));
    this.form.addEventListener('input', () => { this.status.textContent = ''; });
    this.cancelButton.addEventListener('click', () => {
      this.#reset();
      this.question.focus();
    });
    this.#reset();
  }

  // An empty form that adds an answer, in the site's language.
  #reset() {
    this.#editing = null;
    this.form.reset();
    this.language.value = this.#siteLanguage();
    this.formTitle.textContent = this.#text.t('answers.add');
    this.submitButton.textContent = this.#text.t('answers.submit_add');
    this.cancelButton.hidden = true;
    this.#clearErrors();
  }

  #edit(answer) {
    if (!answer) return;
    const t = this.#text.t;
    this.#reset();
    this.#editing = answer;
    this.question.value = answer.question;
    this.alternatives.value = answer.alternatives.join('\n');
    this.answer.value = answer.answer;
    this.language.value = answer.language;
    this.formTitle.textContent = t('answers.editing');
    this.submitButton.textContent = t('answers.submit_edit');
    this.cancelButton.hidden = false;
    this.status.textContent = '';
    this.form.scrollIntoView({ block: 'start' });
    this.question.focus({ preventScroll: true });
  }

  async #save(event) {
    event.preventDefault();
    const t = this.#text.t;
    this.#clearErrors();
    this.status.textContent = '';
    const fields = {
      question: this.question.value.trim(),
      alternatives: this.alternatives.value.split('\n').map((line) => line.trim()).filter(Boolean),
      answer: this.answer.value.trim(),
      language: this.language.value,
    };
    if (!fields.question) return this.#fail(t('answers.missing_question'), this.question);
    if (!fields.answer) return this.#fail(t('answers.missing_answer'), this.answer);
    const site = this.#site.id;
    const editing = this.#editing;
    this.submitButton.disabled = true;
    let saved;
    try {
      saved = editing ? await this.#api.saveAnswer(site, editing.id, fields) : await this.#api.addAnswer(site, fields);
    } catch (error) {
      if (error.status === 401) return;
      if (error.status !== 422 && error.status !== 404) return this.#fail(t(error.status ? 'error.generic' : 'error.network'));
      const field = FIELD_WORDS.find(([words]) => error.message.includes(words))?.[1];
      return this.#fail(error.message, field && this[field]);
    } finally {
      this.submitButton.disabled = false;
    }
    this.#book.put(site, saved);
    this.#reset();
    this.#render();
    this.status.textContent = t(editing ? 'answers.updated' : 'answers.added');
  }

  #fail(message, input = null) {
    this.formError.textContent = message;
    if (!input) return;
    input.setAttribute('aria-invalid', 'true');
    input.setAttribute('aria-errormessage', 'answer-error');
    input.focus();
  }

  #clearErrors() {
    this.formError.textContent = '';
    for (const input of [this.question, this.alternatives, this.answer, this.language]) {
      input.removeAttribute('aria-invalid');
      input.removeAttribute('aria-errormessage');
    }
  }

  // -- trying a question --------------------------------------------------------------

  #buildTry() {
    const t = this.#text.t;
    this.tryInput = el('input', { type: 'text', id: 'answer-try', autocomplete: 'off', maxlength: '4000', 'aria-describedby': 'answer-try-hint' });
    this.tryLanguage = el('select', { id: 'answer-try-language' }, ...LANGUAGES.map((code) => el('option', { value: code, lang: code }, t(`language.${code}`))));
    this.tryButton = el('button', { type: 'submit', class: 'secondary' }, t('answers.try_button'));
    this.tryResult = el('div', { class: 'try-result', role: 'status' });
    this.tryForm = el('form', { class: 'try-form', novalidate: true, 'aria-labelledby': 'answer-try-title' },
      el('h4', { id: 'answer-try-title' }, t('answers.try')),
      el('p', { class: 'hint', id: 'answer-try-hint' }, t('answers.try_hint')),
      el('div', { class: 'field' }, el('label', { for: 'answer-try' }, t('answers.try_text')), this.tryInput),
      el('div', { class: 'field' }, el('label', { for: 'answer-try-language' }, t('answers.try_language')), this.tryLanguage),
      el('div', { class: 'row' }, this.tryButton),
      this.tryResult);
    this.tryForm.addEventListener('submit', (event) => this.#try(event));
  }

  async #try(event) {
    event.preventDefault();
    const t = this.#text.t;
    const text = this.tryInput.value.trim();
    if (!text) return this.tryInput.focus();
    this.tryButton.disabled = true;
    let found;
    try {
      found = await this.#api.askAnswers(this.#site.id, text, this.tryLanguage.value);
    } catch (error) {
      if (error.status !== 401) this.tryResult.replaceChildren(el('p', { class: 'error' }, error.status === 422 ? error.message : t(error.status ? 'error.generic' : 'error.network')));
      return;
    } finally {
      this.tryButton.disabled = false;
    }
    this.tryResult.replaceChildren(...this.#outcome(found));
  }

  // What the relay would do: the answer it would send, or why it would send none.
  #outcome(found) {
    const t = this.#text.t;
    const score = (value) => new Intl.NumberFormat(this.#text.locale, { minimumFractionDigits: 2, maximumFractionDigits: 2 }).format(value);
    if (found.answered) {
      const sent = el('div', { class: 'bubble' });
      renderText(sent, found.answer);
      return [el('p', {}, t('answers.would_send', { question: found.question, score: score(found.score) })), sent];
    }
    if (found.refused) return [el('p', {}, t(`answers.${found.refused}`))];
    const closest = found.candidates[0];
    if (!(closest?.score > 0)) return [el('p', {}, t('answers.no_match'))];
    return [
      el('p', {}, t('answers.not_sure', { score: score(found.score) })),
      el('p', { class: 'muted' }, t('answers.closest', { question: closest.question, score: score(closest.score) })),
    ];
  }
}
