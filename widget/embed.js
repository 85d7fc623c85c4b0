// Porch embed: the one script a site pastes. It draws the launcher button and keeps
// the Porch() call queue; the conversation UI (app.js) loads on first interaction,
// or at once for a returning visitor. Before that: no storage writes, no socket,
// no request but this script. With data-consent="required", not even that until the
// page calls Porch('consent', true). The relay fills in the two __PORCH_…__ values.
(() => {
  'use strict';
  const script = document.currentScript;
  if (!script || customElements.get('porch-chat')) return;
  // A link from "continue on another device" (#porch=TOKEN): out of the address bar now.
  const resume = location.hash.startsWith('#porch=') && location.hash.slice(7);
  if (resume) history.replaceState(history.state, '', location.pathname + location.search);

  const VERSION = '__PORCH_VERSION__';
  const TEXT = __PORCH_LAUNCHER_TEXT__;
  const relay = new URL(script.src).origin;
  const options = { ...script.dataset };
  const site = options.site;
  // The one storage key; app.js owns what is stored under it.
  const STORAGE_KEY = `porch:${site}`;
  // data-consent="required": nothing is loaded, read or stored until Porch('consent', true).
  let consented = options.consent !== 'required';
  const queue = [];
  for (const args of (window.Porch && window.Porch.q) || []) {
    if (args[0] === 'consent') consented ||= args[1] === true;
    else queue.push(args);
  }
  let app = null;
  let loading = null;

  const language = () => {
    const wanted = (options.lang || document.documentElement.lang || navigator.language || 'en');
    const short = wanted.slice(0, 2).toLowerCase();
    return TEXT[short] ? short : 'en';
  };

  const load = () => {
    if (consented) loading ||= import(`${relay}/widget/${VERSION}/app.js`)
      .then((module) => { app = module.start({ element, relay, site, version: VERSION, options, queue, resume }); })
      .catch((error) => { loading = null; console.error('[porch] the chat could not load:', error); });
    return loading;
  };

  // Calls that only register something wait quietly; anything else needs the UI.
  const PASSIVE = new Set(['on', 'off', 'setLanguage', 'identify']);
  function Porch(...args) {
    if (args[0] === 'consent') return void (args[1] === true && consent());
    if (app) return app.call(...args);
    if (args[0] === 'setLanguage') options.lang = String(args[1]);
    queue.push(args);
    if (!PASSIVE.has(args[0])) (consented ? load() : ask());
    if (args[0] === 'setLanguage' && element.isConnected) element.label();
  }
  window.Porch = Porch;
  // Before consent: tell the page (it shows its own banner), load nothing.
  const ask = () => element.dispatchEvent(new CustomEvent('porch-chat-consent-needed', { bubbles: true, composed: true }));
  const consent = () => {
    if (consented) return;
    consented = true;
    restore();
    if (queue.some((args) => !PASSIVE.has(args[0]))) load();
  };

  const CSS = `
:host { all: initial; position: fixed; z-index: 2147483000; right: 20px; bottom: 20px;
  --porch-accent: ${/^#[0-9a-f]{6}$/i.test(options.color || '') ? options.color : '#2f3a45'};
  font: 15px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
.launcher { position: relative; width: 56px; height: 56px; border: 0; border-radius: 50%;
  background: var(--porch-accent); color: #fff; cursor: pointer; display: grid; place-items: center;
  box-shadow: 0 4px 14px rgb(0 0 0 / .25); transition: transform .15s ease; }
.launcher:hover { transform: scale(1.06); }
.launcher:focus-visible { outline: 3px solid #fff; box-shadow: 0 0 0 6px var(--porch-accent); }
.launcher svg { width: 28px; height: 28px; fill: currentColor; }
.shut, :host([open]) .chat { display: none; }
:host([open]) .shut { display: block; }
.badge { position: absolute; top: -4px; right: -4px; min-width: 20px; height: 20px; padding: 0 6px;
  box-sizing: border-box; border-radius: 10px; background: #c62828; color: #fff; font-size: 12px;
  font-weight: 700; line-height: 20px; text-align: center; }
.badge[hidden] { display: none; }
@media (prefers-reduced-motion: reduce) { .launcher { transition: none; } .launcher:hover { transform: none; } }`;

  class PorchChat extends HTMLElement {
    #abort = null;

    connectedCallback() {
      const root = this.shadowRoot || this.attachShadow({ mode: 'open' });
      if (!root.firstChild) {
        // Constructable stylesheets apply under a strict style-src; <style> would not.
        const sheet = new CSSStyleSheet();
        sheet.replaceSync(CSS);
        root.adoptedStyleSheets = [sheet];
        const button = document.createElement('button');
        button.className = 'launcher';
        button.type = 'button';
        button.setAttribute('part', 'launcher');
        button.setAttribute('aria-expanded', 'false');
        button.innerHTML = '<svg class="chat" viewBox="0 0 24 24" aria-hidden="true"><path d="M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z"/></svg>'
          + '<svg class="shut" viewBox="0 0 24 24" aria-hidden="true"><path d="M6.4 5 12 10.6 17.6 5 19 6.4 13.4 12l5.6 5.6-1.4 1.4-5.6-5.6L6.4 19 5 17.6l5.6-5.6L5 6.4z"/></svg>'
          + '<span class="badge" hidden></span>';
        root.append(button);
        this.label();
      }
      this.#abort = new AbortController();
      const launcher = root.querySelector('.launcher');
      const signal = this.#abort.signal;
      // Warm up on intent (lite-youtube-embed's trick): hover or focus starts the load.
      for (const type of ['pointerover', 'focus']) launcher.addEventListener(type, load, { once: true, signal });
      // The only click handler, loaded or not: a click while the UI still loads is queued.
      launcher.addEventListener('click', () => (consented ? Porch('toggle') : ask()), { signal });
      app?.connect(); // put back on the page: the chat picks up where it was
    }

    // Taken off the page (a single-page app changing views): every listener, timer and
    // socket goes; the conversation stays stored for when the element comes back.
    disconnectedCallback() {
      this.#abort?.abort();
      app?.disconnect();
    }

    // The launcher's accessible name, before app.js (and its catalogue) is here.
    label() {
      const launcher = this.shadowRoot.querySelector('.launcher');
      const text = TEXT[language()];
      launcher.setAttribute('aria-label', text.openGeneric);
    }
  }
  customElements.define('porch-chat', PorchChat);

  const element = document.createElement('porch-chat');
  const mount = () => document.body.append(element);
  if (document.body) mount(); else document.addEventListener('DOMContentLoaded', mount, { once: true });

  // A returning visitor may have unread replies: load now to show the badge (and a
  // resume link opens the panel). Reading storage is fine before interaction; writing is not.
  function restore() {
    try {
      if (resume || localStorage.getItem(STORAGE_KEY)) load();
    } catch {
      // Storage blocked (privacy mode): behave as a new visitor.
    }
  }
  if (consented) restore();
})();
