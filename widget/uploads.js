// Photos and files on the wire, for the Conversation (which loads this module the first
// time a message carries files): each file is uploaded before the message that carries
// it (XMLHttpRequest: fetch has no upload progress), and its id kept in the outbox entry
// so a retry never uploads it again. The bytes wait in memory and in IndexedDB
// (filestore.js) until the message is stored, so a queued file survives a reload.
// Emits 'progress' (detail: the file's key; `progress` holds the fraction sent), and
// 'unkept' when files could not be kept past this page view (no IndexedDB).
import { run } from './filestore.js';

// The relay's refusals of a file that the visitor can act on: shown on the file.
const FILE_ERRORS = { 413: 'too_large', 415: 'unsupported_type' };

export class Uploads extends EventTarget {
  progress = new Map(); // key -> fraction of the file sent
  #relay; #database; #conversation; #changed;
  #requests = new Map(); // key -> its XMLHttpRequest, while it runs
  #writes = new Map(); // key -> the IndexedDB write of its bytes (true: kept)
  #pruned = null;

  // changed(): the outbox entries were changed here; store them and draw them again.
  constructor({ relay, site, conversation, changed }) {
    super();
    this.#relay = relay;
    this.#database = `porch:${site}`;
    this.#conversation = conversation;
    this.#changed = changed;
  }

  // Keep the bytes of new outbox files (`conversation.blobs` holds them for this page
  // view) in IndexedDB too, so they survive a reload.
  async keep(files) {
    this.#pruned ||= this.#prune(); // once a page view, when IndexedDB is first needed
    const kept = files.map((file) => {
      const write = this.#db('readwrite', (store) => store.put(this.#conversation.blobs.get(file.key), file.key))
        .then(() => true, () => false);
      this.#writes.set(file.key, write);
      return write;
    });
    if (!(await Promise.all(kept)).every(Boolean)) this.dispatchEvent(new Event('unkept'));
  }

  // These files are sent or given up: stop their upload, drop their bytes.
  async forget(keys) {
    for (const key of keys) {
      this.#requests.get(key)?.abort();
      this.#conversation.blobs.delete(key);
      this.progress.delete(key);
      await this.#writes.get(key); // a write still running would bring the bytes back
      this.#writes.delete(key);
    }
    if (keys.length) await this.#db('readwrite', (store) => keys.forEach((key) => store.delete(key))).catch(() => {});
  }

  // Bytes no outbox entry names (sent, or the entry gone with the conversation): dropped.
  async #prune() {
    const keys = await this.#db('readonly', (store) => store.getAllKeys()).catch(() => []);
    const wanted = new Set(this.#conversation.outbox.flatMap((item) => item.files || []).map((file) => file.key));
    await this.forget(keys.filter((key) => !wanted.has(key)));
  }

  // The visitor took a file out of a queued message (its upload stops), and the whole
  // message when nothing else is left in it.
  remove(clientId, key) {
    const conversation = this.#conversation;
    const item = conversation.outbox.find((m) => m.client_id === clientId);
    this.forget([key]);
    if (!item) return;
    item.files = item.files.filter((file) => file.key !== key);
    if (!item.body && !item.files.length) conversation.outbox = conversation.outbox.filter((m) => m !== item);
    this.#changed();
    // Held back by that file alone: the rest can go now.
    if (item.failed && !item.files.some((file) => file.error)) conversation.retry(clientId);
  }

  // A first message with files, and no conversation yet: it starts with text (the
  // visitor's, else the files' names), put first in the outbox; the files follow as the
  // next message, with no text. The text's client_id comes from the item's, so two
  // tabs flushing the same outbox start one conversation, not two.
  start(item) {
    const outbox = this.#conversation.outbox;
    outbox.splice(outbox.indexOf(item), 0, {
      client_id: `${item.client_id}.text`, body: item.body || item.files.map((file) => file.name).join(', '), created_at: item.created_at,
    });
    item.body = '';
    this.#changed();
    return true;
  }

  // Upload `item`'s files that have no id yet. Null when all have one; else a Response
  // that says why not, for the Conversation to handle as a refused send. Throws when
  // the network is down (the Conversation retries with backoff).
  async send(item, token) {
    if (item.files.some((file) => file.error)) {
      for (const file of item.files) delete file.error; // tried again: no longer true
      this.#changed();
    }
    let file;
    while ((file = item.files.find((f) => !f.id))) {
      const blob = this.#conversation.blobs.get(file.key)
        || await this.#db('readonly', (store) => store.get(file.key)).catch(() => null);
      if (!blob) return this.#refuse(file, 'lost', 410); // gone with a reload, IndexedDB unavailable
      let request;
      try {
        request = await this.#post(file, blob, token);
      } catch (error) {
        if (error.name === 'AbortError') continue; // cancelled: remove() took it out
        file.error = 'network';
        this.#changed();
        throw error;
      }
      const status = request.status;
      if (status !== 201) {
        if (FILE_ERRORS[status]) return this.#refuse(file, FILE_ERRORS[status], status);
        return new Response(JSON.stringify(request.response || {}), { status });
      }
      file.id = request.response.id;
      this.#changed();
    }
    return null;
  }

  // The file says what went wrong; the message is "not sent" (the view's own reasons
  // are for the text: "too_large" there means a text too long).
  #refuse(file, error, status) {
    file.error = error;
    this.#changed();
    return new Response('{"error":"file"}', { status });
  }

  #post(file, blob, token) {
    return new Promise((resolve, reject) => {
      const request = new XMLHttpRequest();
      this.#requests.set(file.key, request);
      request.open('POST', `${this.#relay}/v1/thread/attachments`);
      request.setRequestHeader('authorization', `Bearer ${token}`);
      request.responseType = 'json';
      request.upload.onprogress = (event) => {
        this.progress.set(file.key, event.loaded / event.total);
        this.dispatchEvent(new CustomEvent('progress', { detail: file.key }));
      };
      request.onload = () => resolve(request);
      request.onerror = request.ontimeout = () => reject(new Error('network'));
      request.onabort = () => reject(new DOMException('cancelled', 'AbortError'));
      request.onloadend = () => this.#requests.delete(file.key);
      const form = new FormData();
      form.append('file', blob, file.name);
      request.send(form);
    });
  }

  // Download links last an hour: the thread read again from message `seq` on gives
  // fresh ones, swapped into the messages already here.
  async relink(seq) {
    const conversation = this.#conversation;
    const response = await fetch(`${this.#relay}/v1/thread?since=${seq - 1}`, {
      headers: { authorization: `Bearer ${conversation.token}` }, credentials: 'omit',
    });
    if (!response.ok) return;
    for (const message of (await response.json()).messages) {
      if (conversation.messages.has(message.seq)) conversation.messages.set(message.seq, message);
    }
    conversation.dispatchEvent(new Event('change'));
  }

  #db(mode, action) {
    return run(this.#database, mode, action);
  }
}
