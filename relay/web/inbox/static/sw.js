// The inbox's service worker, served at /inbox/sw.js (scope /inbox/) by
// relay/web/inbox/page.py, which writes in VERSION (made of the inbox's files: a
// release is a new worker) and SHELL (the page and every file it may load).
//
// - The shell is kept, so the inbox opens without a network and says it is offline:
//   the page network-first (a fresh one whenever the relay answers), its files
//   cache-first (they belong to this version).
// - The API and the live socket are never answered from here: a stale thread list
//   would be a lie, and a failed request is what tells the page it is offline.
// - Push (relay/push): {title, body, url, tag} shows one notification per thread
//   (tag); a tap focuses the inbox at that thread, or opens it.

const VERSION = '__PORCH_VERSION__';
const SHELL = '__PORCH_SHELL__';
const CACHE_PREFIX = 'porch-inbox-';
const CACHE = CACHE_PREFIX + VERSION;
const PAGE = '/inbox/';
const STATIC = '/inbox/static/';
const ICON = '/inbox/static/icon-192.png';

self.addEventListener('install', (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(CACHE);
    // Past the HTTP cache: what is kept is what this release serves.
    await cache.addAll(SHELL.map((url) => new Request(url, { cache: 'reload' })));
    await self.skipWaiting(); // the shell's files are all kept: nothing to wait for
  })());
});

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) {
      if (name.startsWith(CACHE_PREFIX) && name !== CACHE) await caches.delete(name);
    }
    await self.clients.claim();
  })());
});

self.addEventListener('fetch', (event) => {
  const request = event.request;
  if (request.method !== 'GET') return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (request.mode === 'navigate' && (url.pathname === PAGE || url.pathname === '/inbox')) {
    event.respondWith(page(request));
  } else if (url.pathname.startsWith(STATIC)) {
    event.respondWith(kept(request));
  }
  // Anything else (/inbox/api/*, /inbox/live, attachments) goes to the network untouched.
});

async function page(request) {
  try {
    const response = await fetch(request);
    if (response.status < 500) return response;
    // A proxy's 502 while the relay is down: the kept shell says so better.
    return (await shell()) || response;
  } catch (error) {
    const kept = await shell();
    if (kept) return kept;
    throw error;
  }
}

async function shell() {
  const cache = await caches.open(CACHE);
  return cache.match(PAGE);
}

async function kept(request) {
  const cache = await caches.open(CACHE);
  return (await cache.match(request, { ignoreSearch: true })) || fetch(request);
}

self.addEventListener('push', (event) => {
  const message = pushed(event.data);
  if (!message) return;
  event.waitUntil(self.registration.showNotification(message.title, {
    body: message.body,
    tag: message.tag,
    renotify: true, // a newer message in the thread replaces the older one, and is heard
    icon: ICON,
    data: { url: message.url },
  }).catch((error) => console.warn('[porch] notification not shown:', error.message)));
});

// The relay's JSON, or null for anything else (shown: nothing; thrown: never).
function pushed(data) {
  let message;
  try {
    message = data?.json();
  } catch {
    return null;
  }
  if (!message || typeof message !== 'object') return null;
  const { title, body, url, tag } = message;
  if (![title, body, url, tag].every((field) => typeof field === 'string') || !tag) return null;
  try {
    if (!['https:', 'http:'].includes(new URL(url).protocol)) return null;
  } catch {
    return null;
  }
  return { title, body, url, tag };
}

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  const url = event.notification.data?.url;
  if (typeof url !== 'string') return;
  event.waitUntil(openAt(url));
});

// Focus a window already at `url`; else an inbox window of the same relay, told to
// open the thread (no reload: a reply being typed survives); else a new window.
async function openAt(url) {
  const target = new URL(url);
  const windows = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
  const same = windows.find((client) => client.url === target.href);
  if (same) return same.focus();
  const inbox = windows.find((client) => {
    const at = new URL(client.url);
    return at.origin === target.origin && at.pathname.startsWith('/inbox') && target.pathname.startsWith('/inbox');
  });
  if (inbox) {
    inbox.postMessage({ type: 'porch:open', url: target.href });
    return inbox.focus();
  }
  return self.clients.openWindow(target.href);
}
