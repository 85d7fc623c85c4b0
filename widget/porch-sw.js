// Porch's service worker for visitors: shows the notification of an owner's reply, and
// a tap opens the conversation. A site serves /porch-sw.js with one line,
//   importScripts('https://RELAY/porch-sw.js');
// (a worker must come from the origin of the pages it serves), and the widget registers
// it with a scope of its own, /porch-push/: no page of the site is in it, and there is
// no fetch handler, so it never touches the site's pages or its own worker.
// A push is JSON {title, body, url, tag}: tag is the thread (a newer notification
// replaces the older one), url what a tap opens. Anything else shows nothing.
(() => {
  'use strict';
  const text = (value) => typeof value === 'string';
  const web = (url) => text(url) && /^https?:\/\//i.test(url);

  function message(data) {
    try {
      const m = data && data.json();
      if (m && text(m.title) && text(m.body) && web(m.url) && text(m.tag) && m.tag) return m;
    } catch { /* not JSON */ }
    return null;
  }

  self.addEventListener('push', (event) => {
    const m = message(event.data);
    if (!m) return;
    const options = { body: m.body, tag: m.tag, renotify: true, data: { url: m.url } };
    if (web(m.icon)) options.icon = m.icon;
    event.waitUntil(self.registration.showNotification(m.title, options));
  });

  self.addEventListener('notificationclick', (event) => {
    event.notification.close();
    const url = event.notification.data && event.notification.data.url;
    if (web(url)) event.waitUntil(open(url));
  });

  // A window already on that page (the fragment aside) is brought forward, else one opens.
  async function open(url) {
    const page = url.split('#')[0];
    const windows = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
    const same = windows.find((client) => client.url.split('#')[0] === page);
    if (same) return same.focus();
    return self.clients.openWindow(url);
  }
})();
