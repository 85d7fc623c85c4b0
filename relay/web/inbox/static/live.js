// The inbox's live socket (/inbox/live, the session cookie authenticates it): hello
// with the last seq seen, the relay replays what came after, then streams. Reconnects
// with exponential backoff and full jitter, resuming from the last seq; a ping every
// PING_EVERY finds a dead connection that never said goodbye.
// Emits: 'frame' (detail: a frame from the relay), 'status' (connected changed),
// 'ready' (detail: {first}: true the first time), 'signedout' (closed with 4401).

const BACKOFF_MIN = 500; // ms; first reconnect delay
const BACKOFF_MAX = 30_000; // ms; cap, so a long outage is retried twice a minute
const PING_EVERY = 25_000; // ms; under the 30-60 s idle timeouts of common proxies
const PONG_WITHIN = 10_000; // ms; no pong by then: the connection is dead
const CLOSE_SIGNED_OUT = 4401; // the relay's code: session revoked or signed out

export class Live extends EventTarget {
  #socket = null;
  #attempt = 0;
  #timer = 0;
  #pingTimer = 0;
  #pongTimer = 0;
  #stopped = false;
  #readyOnce = false;
  connected = false;
  seq = 0; // the resume cursor: the highest message seq seen

  constructor(since = 0) {
    super();
    this.seq = since;
    addEventListener('online', this.#onOnline);
  }

  start() {
    if (this.#socket || this.#stopped) return;
    const url = `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}/inbox/live`;
    const socket = new WebSocket(url);
    this.#socket = socket;
    socket.onopen = () => socket.send(JSON.stringify({ type: 'hello', since: this.seq }));
    socket.onmessage = (event) => {
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return console.warn('[porch] ignoring a frame that is not JSON');
      }
      this.#onFrame(frame);
    };
    socket.onclose = (event) => {
      if (this.#socket !== socket) return;
      this.#socket = null;
      this.#setConnected(false);
      clearInterval(this.#pingTimer);
      clearTimeout(this.#pongTimer);
      if (event.code === CLOSE_SIGNED_OUT) {
        this.#stopped = true;
        this.dispatchEvent(new Event('signedout'));
        return;
      }
      this.#reconnectLater();
    };
  }

  // Send a frame when the socket is ready; false when it is not (use HTTP instead).
  send(frame) {
    if (!this.connected) return false;
    this.#socket.send(JSON.stringify(frame));
    return true;
  }

  stop() {
    this.#stopped = true;
    clearTimeout(this.#timer);
    clearInterval(this.#pingTimer);
    clearTimeout(this.#pongTimer);
    removeEventListener('online', this.#onOnline);
    const socket = this.#socket;
    this.#socket = null;
    socket?.close(1000);
    this.#setConnected(false);
  }

  #onFrame(frame) {
    if (frame.type === 'pong') return clearTimeout(this.#pongTimer);
    // An ack stands where the copy of our own message would be in the stream: seen too.
    if ((frame.type === 'message' || frame.type === 'ack') && frame.message) this.seq = Math.max(this.seq, frame.message.seq);
    if (frame.type === 'ready') {
      this.seq = Math.max(this.seq, frame.seq || 0);
      this.#attempt = 0;
      this.#setConnected(true);
      this.#pingTimer = setInterval(() => this.#ping(), PING_EVERY);
      this.dispatchEvent(new CustomEvent('ready', { detail: { first: !this.#readyOnce } }));
      this.#readyOnce = true;
      return;
    }
    this.dispatchEvent(new CustomEvent('frame', { detail: frame }));
  }

  #ping() {
    if (!this.send({ type: 'ping' })) return;
    clearTimeout(this.#pongTimer);
    this.#pongTimer = setTimeout(() => this.#socket?.close(4000, 'no pong'), PONG_WITHIN);
  }

  #reconnectLater() {
    if (this.#stopped || this.#timer) return;
    // Exponential backoff with jitter, so a relay restart is not stampeded by every tab.
    const ceiling = Math.min(BACKOFF_MAX, BACKOFF_MIN * 2 ** this.#attempt++);
    const delay = ceiling / 2 + Math.random() * ceiling / 2;
    this.#timer = setTimeout(() => {
      this.#timer = 0;
      this.start();
    }, delay);
  }

  #onOnline = () => {
    if (this.#stopped || this.#socket) return;
    clearTimeout(this.#timer);
    this.#timer = 0;
    this.#attempt = 0;
    this.start();
  };

  #setConnected(connected) {
    if (this.connected === connected) return;
    this.connected = connected;
    this.dispatchEvent(new Event('status'));
  }
}
