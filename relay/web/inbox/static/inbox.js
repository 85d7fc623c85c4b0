// The inbox page's entry: the catalogue, then either the sign-in screens (signin.js)
// or the signed-in app (app.js); "offline" while the relay cannot be reached (the page
// came from the service worker's copy: pwa.js, sw.js).
import { Api } from './api.js';
import { App } from './app.js';
import { el } from './dom.js';
import { registerWorker } from './pwa.js';
import { SignIn } from './signin.js';
import { loadCatalogue, pickLanguage, rememberedLanguage, rememberLanguage, Text } from './text.js';

const LOGIN = /^#login=([A-Za-z0-9_.\-]+)$/;
const RETRY_MIN = 2000; // ms; offline, the relay is asked again this often, doubling
const RETRY_MAX = 30_000; // ms

// A sign-in link's token leaves the address bar at once (history, screenshots, shoulders).
function takeLoginToken() {
  const token = location.hash.match(LOGIN)?.[1] || null;
  if (token) history.replaceState(null, '', location.pathname + location.search);
  return token;
}

async function main() {
  const login = takeLoginToken();
  // A tapped notification, with the inbox already open here: that thread.
  registerWorker((hash) => { location.hash = hash; });
  const api = new Api();
  let catalogue;
  try {
    catalogue = await loadCatalogue();
  } catch (error) {
    fatal('The inbox could not load. Please reload the page. / La messagerie n’a pas pu se charger. Rechargez la page.');
    throw error;
  }
  // Signed out, the owner's language is the one they last used here, else the browser's.
  const signedOutText = () => new Text(catalogue, pickLanguage(rememberedLanguage(), navigator.language));
  const signInScreen = () => {
    const text = signedOutText();
    document.documentElement.lang = text.language;
    document.title = text.t('signin.page_title');
    const signIn = new SignIn(api, text, startApp);
    document.getElementById('app').replaceChildren(signIn.root);
    return { signIn, text };
  };
  let app = null;
  const startApp = (me) => {
    rememberLanguage(me.language);
    app = new App(api, catalogue, me, (notice) => {
      const { signIn, text } = signInScreen();
      signIn.showForm(notice ? text.t(notice) : '');
    });
    app.start().catch((error) => console.error('[porch] the inbox failed to start:', error));
  };
  // A link pasted into a tab that already shows the inbox: a fragment change, no reload.
  addEventListener('hashchange', () => {
    const token = takeLoginToken();
    if (!token) return;
    app?.stop();
    signInScreen().signIn.showConfirm(token);
  });
  if (login) return signInScreen().signIn.showConfirm(login);
  // The app, the sign-in form or an error; false while the relay is out of reach.
  const begin = async () => {
    try {
      startApp(await api.me());
    } catch (error) {
      if (error.status === 401) signInScreen().signIn.showForm();
      else if (error.status) fatal(signedOutText().t('error.generic'));
      else return false;
    }
    return true;
  };
  if (!(await begin())) offline(signedOutText(), begin);
}

// The relay cannot be reached: say so plainly (not a broken page), and begin as soon as
// it answers: when the browser is back online, on "Try again", and now and then (a
// relay that was down says nothing when it is back).
function offline(text, begin) {
  const t = text.t;
  document.documentElement.lang = text.language;
  document.title = t('offline.title');
  const retry = el('button', { type: 'button', class: 'secondary wide' }, t('offline.retry'));
  document.getElementById('app').replaceChildren(el('main', { class: 'signin', id: 'main' },
    el('p', { class: 'brand' }, el('span', { class: 'logo', 'aria-hidden': 'true' }), el('span', {}, t('brand'))),
    el('div', { class: 'signin-card offline', role: 'status' },
      el('h1', {}, t('offline.title')),
      el('p', { class: 'lead' }, t('offline.body')),
      retry)));
  let timer = 0;
  let wait = RETRY_MIN;
  let trying = false;
  const later = () => {
    timer = setTimeout(() => (navigator.onLine ? again() : later()), wait);
    wait = Math.min(RETRY_MAX, wait * 2);
  };
  const again = async () => {
    if (trying) return;
    trying = retry.disabled = true;
    clearTimeout(timer);
    if (await begin()) return removeEventListener('online', again);
    trying = retry.disabled = false;
    later();
  };
  addEventListener('online', again);
  retry.addEventListener('click', again);
  later();
}

function fatal(message) {
  document.getElementById('app').replaceChildren(el('p', { class: 'fatal', role: 'alert' }, message));
}

main();
