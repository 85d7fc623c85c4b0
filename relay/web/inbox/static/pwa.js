// The inbox as an installed app: its service worker (sw.js keeps the shell for when
// the network is gone, and shows pushes) and this browser's push subscription
// ("Notify me on this device", push_devices.js).

const WORKER = '/inbox/sw.js';
const SCOPE = '/inbox/';
const READY_WITHIN = 10_000; // ms: a worker not active by then will not be
// ms: a push service answers a subscription in a second or two; one that cannot be
// reached (a browser built without one, a network that blocks it) may never answer.
const SUBSCRIBE_WITHIN = 10_000;

// Register the worker; a tapped notification for a thread, sent to this window by
// the worker, opens that thread here (`onOpen(hash)`).
export function registerWorker(onOpen) {
  if (!('serviceWorker' in navigator)) return;
  navigator.serviceWorker.register(WORKER, { scope: SCOPE, updateViaCache: 'none' })
    .catch((error) => console.warn('[porch] the inbox will not work offline:', error.message));
  navigator.serviceWorker.addEventListener('message', (event) => {
    if (event.data?.type !== 'porch:open' || typeof event.data.url !== 'string') return;
    const url = new URL(event.data.url, location.href);
    if (url.origin === location.origin && url.hash) onOpen(url.hash);
  });
}

// Push needs all three; iOS offers them only to the inbox added to the Home Screen.
export function pushSupported() {
  return 'serviceWorker' in navigator && 'PushManager' in window && 'Notification' in window;
}

export class PushRefused extends Error {
  constructor(reason, cause) {
    super(cause?.message || reason);
    this.reason = reason; // 'denied', 'no_worker' or 'failed'
  }
}

// Ask permission and subscribe this browser with the relay's VAPID key (base64url):
// what PushSubscription.toJSON() gives ({endpoint, keys: {p256dh, auth}}), or a
// PushRefused saying why not.
export async function subscribe(key) {
  const permission = await Notification.requestPermission();
  if (permission !== 'granted') throw new PushRefused('denied');
  const registration = await ready();
  try {
    let subscription = await registration.pushManager.getSubscription();
    if (subscription && !sameKey(subscription, key)) { // made with another key: useless
      await subscription.unsubscribe();
      subscription = null;
    }
    subscription ||= await within(SUBSCRIBE_WITHIN, registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: bytes(key) }));
    return subscription.toJSON();
  } catch (error) {
    // Chromium without a push service (headless, some de-Googled builds): AbortError.
    throw new PushRefused(error.name === 'NotAllowedError' ? 'denied' : 'failed', error);
  }
}

// Stop this browser's subscription (after the relay forgot it); quiet when none.
export async function unsubscribe() {
  try {
    const registration = await navigator.serviceWorker.getRegistration(SCOPE);
    await (await registration?.pushManager.getSubscription())?.unsubscribe();
  } catch (error) {
    console.warn('[porch] this browser kept its push subscription:', error.message);
  }
}

async function ready() {
  try {
    return await within(READY_WITHIN, navigator.serviceWorker.ready);
  } catch (error) {
    throw new PushRefused('no_worker', error);
  }
}

// `promise`, or a TimeoutError after `ms`.
function within(ms, promise) {
  let timer = 0;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new DOMException(`no answer within ${ms} ms`, 'TimeoutError')), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function sameKey(subscription, key) {
  const given = subscription.options?.applicationServerKey;
  if (!given) return false;
  const wanted = bytes(key);
  const have = new Uint8Array(given);
  return have.length === wanted.length && have.every((byte, i) => byte === wanted[i]);
}

function bytes(base64url) {
  const base64 = base64url.replace(/-/g, '+').replace(/_/g, '/');
  const raw = atob(base64 + '='.repeat((4 - (base64.length % 4)) % 4));
  return Uint8Array.from(raw, (c) => c.charCodeAt(0));
}
