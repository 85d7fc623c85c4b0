// The inbox page's entry: the catalogue, then either the sign-in screens (signin.js)
// or the signed-in app (app.js).
import { Api } from './api.js';
import { App } from './app.js';
import { el } from './dom.js';
import { SignIn } from './signin.js';
import { loadCatalogue, pickLanguage, rememberedLanguage, rememberLanguage, Text } from './text.js';

const LOGIN = /^#login=([A-Za-z0-9_.\-]+)$/;

// A sign-in link's token leaves the address bar at once (history, screenshots, shoulders).
function takeLoginToken() {
  const token = location.hash.match(LOGIN)?.[1] || null;
  if (token) history.replaceState(null, '', location.pathname + location.search);
  return token;
}

async function main() {
  const login = takeLoginToken();
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
  try {
    startApp(await api.me());
  } catch (error) {
    if (error.status === 401) return signInScreen().signIn.showForm();
    fatal(signedOutText().t(error.status ? 'error.generic' : 'error.network'));
  }
}

function fatal(message) {
  document.getElementById('app').replaceChildren(el('p', { class: 'fatal', role: 'alert' }, message));
}

main();
