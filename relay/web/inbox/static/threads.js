// What the inbox knows: the threads (ThreadOut, as the relay sends them), the list for
// the current filters, each opened thread's history, and replies on their way.
// Messages are de-duplicated by seq; replies are idempotent by client_id, so a reply
// sent over the socket and again over HTTP (no ack in time) is stored once.
// Emits: 'change' (list or threads changed), 'history' (detail: thread id), 'gone'
// (detail: thread id, deleted by the visitor).

const ACK_WITHIN = 8000; // ms; a socket send not acked by then goes again over HTTP
const TYPING_SHOWN_FOR = 6000; // ms a visitor's "typing" stays without a new frame
const HISTORY_PAGES = 50; // pages of 200 fetched at most per sync (10,000 messages)
// Download links are renewed (renewLinks) at most this often per thread, however many
// images fail at once or a file gone for good keeps failing.
const RENEW_EVERY = 10_000; // ms

export const STATUSES = ['open', 'closed', 'all'];

class History {
  messages = new Map(); // seq -> Message
  pending = new Map(); // client_id -> {client_id, body, attachments, linkedAt, created_at, failed?, error?}
  loaded = false;
  lastSeq = 0;
  // The customer's chats on messaging apps and what became of the latest sends to them
  // (GET /inbox/api/threads/{id}: channels, deliveries), as of the last sync.
  channels = [];
  deliveries = [];

  add(message) {
    if (this.messages.has(message.seq)) return false;
    // When its files' links were made (Date.now()), for renewing them before they expire.
    // A reply keeps its upload's: the node drawn while it was sending stays as it is.
    message.linkedAt = this.pending.get(message.client_id)?.linkedAt ?? Date.now();
    this.messages.set(message.seq, message);
    this.lastSeq = Math.max(this.lastSeq, message.seq);
    if (message.client_id) this.pending.delete(message.client_id);
    return true;
  }

  sorted() {
    return [...this.messages.values()].sort((a, b) => a.seq - b.seq);
  }
}

export class Threads extends EventTarget {
  filters = { site: '', status: 'open', q: '' };
  byId = new Map(); // id -> ThreadOut: every thread seen, for the unread total
  order = []; // ids of the current list, newest activity first
  next = null; // where the list's next (older) page starts; null: nothing older
  loaded = false;
  #api;
  #live;
  #histories = new Map();
  #typingUntil = new Map();
  #acks = new Map(); // client_id -> timer
  #fetching = new Map(); // thread id -> the request for its summary
  #statusRequests = new Map(); // thread id -> number of the latest status change asked
  #listRequest = 0;
  // A status learnt (our change answered, or a live frame) is newer than any answer to a
  // request sent before it: #put keeps it. Counted, not timed.
  #statusAt = new Map(); // thread id -> #clock when its status was learnt
  #clock = 0;
  #older = null; // {request, answer}: the next page being fetched for that list
  #renewing = new Map(); // thread id -> the request renewing its links
  #renewedAt = new Map(); // thread id -> Date.now() of its last renewal

  constructor(api, live) {
    super();
    this.#api = api;
    this.#live = live;
  }

  // The list for the current filters; an older answer arriving late is dropped.
  async load() {
    const request = ++this.#listRequest;
    const asked = this.#clock;
    const data = await this.#api.threads(this.filters);
    if (request !== this.#listRequest) return null;
    for (const thread of data.threads) this.#put(thread, asked);
    this.order = data.threads.map((thread) => thread.id);
    this.next = data.next ?? null;
    this.loaded = true;
    this.#changed();
    return data;
  }

  // The next page, appended: the ids added (a thread already listed, moved up by a live
  // message since, is not listed twice). One request at a time; dropped if the list was
  // loaded again meanwhile (other filters, or a reconnect).
  loadOlder() {
    if (!this.next) return Promise.resolve([]);
    const request = this.#listRequest;
    if (this.#older?.request !== request) {
      const asked = this.#clock;
      const older = {
        request,
        answer: this.#api.threads(this.filters, this.next).then((data) => {
          if (request !== this.#listRequest) return [];
          const listed = new Set(this.order);
          const added = data.threads.filter((thread) => !listed.has(thread.id));
          for (const thread of added) this.#put(thread, asked);
          this.order = [...this.order, ...added.map((thread) => thread.id)];
          this.next = data.next ?? null;
          this.#changed();
          return added.map((thread) => thread.id);
        }).finally(() => {
          if (this.#older === older) this.#older = null;
        }),
      };
      this.#older = older;
    }
    return this.#older.answer;
  }

  // The list as shown: a thread closed or reopened since the load leaves or joins it.
  visible() {
    return this.order.map((id) => this.byId.get(id)).filter((thread) => thread && this.#matches(thread));
  }

  get unreadTotal() {
    let total = 0;
    for (const thread of this.byId.values()) total += thread.unread || 0;
    return total;
  }

  history(id) {
    let history = this.#histories.get(id);
    if (!history) {
      history = new History();
      this.#histories.set(id, history);
    }
    return history;
  }

  // Everything after what we have, page by page.
  async sync(id) {
    const history = this.history(id);
    for (let page = 0; page < HISTORY_PAGES; page++) {
      const asked = this.#clock;
      const data = await this.#api.thread(id, history.lastSeq);
      this.#put(data.thread, asked);
      for (const message of data.messages) history.add(message);
      history.channels = data.channels || [];
      history.deliveries = data.deliveries || [];
      if (!data.more) break;
    }
    history.loaded = true;
    this.#emit('history', id);
    this.#changed();
  }

  // Fresh download links (each works for an hour): the thread read again from the
  // message `seq` on, each message's files swapped in. Resolves true when renewed.
  renewLinks(id, seq) {
    if (this.#renewing.has(id)) return this.#renewing.get(id);
    if (Date.now() - (this.#renewedAt.get(id) ?? -Infinity) < RENEW_EVERY) return Promise.resolve(false);
    this.#renewedAt.set(id, Date.now());
    const renewing = this.#api.thread(id, Math.max(0, seq - 1)).then((data) => {
      const history = this.history(id);
      const linkedAt = Date.now();
      for (const message of data.messages) {
        const known = history.messages.get(message.seq);
        if (known?.attachments?.length) Object.assign(known, { attachments: message.attachments, linkedAt });
      }
      this.#emit('history', id);
      return true;
    }).finally(() => this.#renewing.delete(id));
    this.#renewing.set(id, renewing);
    return renewing;
  }

  isTyping(id) {
    return (this.#typingUntil.get(id) || 0) > Date.now();
  }

  // -- live frames ---------------------------------------------------------------------

  // A message from the socket (or an HTTP answer). `reading`: the owner is looking at
  // this thread now, so it is not unread. Returns true when it is news, false when the
  // thread's summary already counted it, null when the thread is new to us.
  addMessage(message, { reading = false } = {}) {
    const history = this.#histories.get(message.thread);
    const added = history ? history.add(message) : true;
    const thread = this.byId.get(message.thread);
    if (!thread) return null;
    if (message.seq <= thread.last_seq) {
      if (added && history) this.#emit('history', message.thread);
      return false;
    }
    thread.last_seq = message.seq;
    thread.last_message = message;
    thread.updated_at = message.created_at;
    if (message.author === 'visitor') {
      this.#typingUntil.delete(message.thread);
      if (!reading && message.seq > thread.owner_read_seq) thread.unread = (thread.unread || 0) + 1;
    } else if (message.author === 'owner') {
      // Whoever writes has read everything before (the relay records it the same way).
      thread.owner_read_seq = Math.max(thread.owner_read_seq, message.seq);
      thread.unread = 0;
    }
    if (!this.filters.q) this.order = [message.thread, ...this.order.filter((id) => id !== message.thread)];
    if (history) this.#emit('history', message.thread);
    this.#changed();
    return true;
  }

  // A thread first seen through a live message: its summary, and a place in the list.
  // (`since`: the live message's seq, so the answer carries no history.) Several of its
  // messages arriving at once share one request.
  fetchThread(id, since) {
    if (!this.#fetching.has(id)) {
      this.#fetching.set(id, this.#api.thread(id, since).then((data) => {
        if (this.byId.has(id)) return;
        this.#put(data.thread);
        if (!this.filters.q && this.#matches(data.thread)) this.order = [id, ...this.order.filter((other) => other !== id)];
        this.#changed();
      }).finally(() => this.#fetching.delete(id)));
    }
    return this.#fetching.get(id);
  }

  applyRead({ thread: id, author, seq }) {
    const thread = this.byId.get(id);
    if (!thread) return;
    if (author === 'owner') {
      thread.owner_read_seq = Math.max(thread.owner_read_seq, seq);
      const history = this.#histories.get(id);
      if (history?.loaded) thread.unread = history.sorted().filter((m) => m.author === 'visitor' && m.seq > thread.owner_read_seq).length;
      else if (seq >= thread.last_seq) thread.unread = 0;
    } else {
      thread.visitor_read_seq = Math.max(thread.visitor_read_seq, seq);
      this.#emit('history', id);
    }
    this.#changed();
  }

  applyStatus({ thread: id, status }) {
    const thread = this.byId.get(id);
    if (!thread) return;
    this.#statusAt.set(id, ++this.#clock);
    if (thread.status === status) return;
    thread.status = status;
    this.#emit('history', id);
    this.#changed();
  }

  applyTyping({ thread: id, author }) {
    if (author !== 'visitor') return;
    this.#typingUntil.set(id, Date.now() + TYPING_SHOWN_FOR);
    this.#emit('history', id);
    setTimeout(() => this.#emit('history', id), TYPING_SHOWN_FOR + 50);
  }

  applyDeleted({ thread: id }) {
    this.byId.delete(id);
    this.#histories.delete(id);
    this.order = this.order.filter((other) => other !== id);
    this.#emit('gone', id);
    this.#changed();
  }

  // -- the owner's actions ---------------------------------------------------------------

  // A reply: shown at once as "sending", over the socket when it is up (acked there),
  // else over HTTP; a socket send with no ack in ACK_WITHIN goes again over HTTP.
  // `attachments`: the files uploaded for it ({id, name, type, size, url}). Its client_id
  // is made once: however often it goes again, it is stored once.
  reply(id, body, attachments = []) {
    const item = { client_id: crypto.randomUUID(), body, attachments, linkedAt: Date.now(), created_at: new Date().toISOString() };
    this.history(id).pending.set(item.client_id, item);
    this.#emit('history', id);
    this.#deliver(id, item);
  }

  retry(id, clientId) {
    const item = this.history(id).pending.get(clientId);
    if (!item) return;
    delete item.failed;
    delete item.error;
    this.#emit('history', id);
    this.#deliver(id, item);
  }

  #deliver(id, item) {
    const frame = { type: 'send', thread: id, body: item.body, client_id: item.client_id };
    if (item.attachments.length) frame.attachments = item.attachments.map((file) => file.id);
    if (this.#live.send(frame)) {
      this.#acks.set(item.client_id, setTimeout(() => this.#post(id, item), ACK_WITHIN));
    } else {
      this.#post(id, item);
    }
  }

  async #post(id, item) {
    this.#acks.delete(item.client_id);
    try {
      const message = await this.#api.reply(id, item.body, item.client_id, item.attachments.map((file) => file.id));
      this.addMessage(message, { reading: true });
    } catch (error) {
      if (!this.history(id).pending.has(item.client_id)) return; // stored meanwhile
      item.failed = true;
      item.error = error.code;
      this.#emit('history', id);
    }
  }

  // {"type":"ack","client_id","seq","thread","message"}: stored; the message it carries
  // is added as a live one (the relay sends this socket no copy of it).
  applyAck({ client_id: clientId, thread: id }) {
    clearTimeout(this.#acks.get(clientId));
    this.#acks.delete(clientId);
    const item = this.#histories.get(id)?.pending.get(clientId);
    if (item) {
      item.acked = true;
      this.#emit('history', id);
    }
  }

  typing(id) {
    return this.#live.send({ type: 'typing', thread: id });
  }

  // Read up to the thread's last message: over the socket when up, else HTTP.
  markRead(id) {
    const thread = this.byId.get(id);
    if (!thread) return;
    const seq = Math.max(thread.last_seq, this.#histories.get(id)?.lastSeq || 0);
    if (seq <= thread.owner_read_seq && !thread.unread) return;
    thread.owner_read_seq = Math.max(thread.owner_read_seq, seq);
    thread.unread = 0;
    this.#changed();
    if (!this.#live.send({ type: 'read', thread: id, seq })) {
      this.#api.markRead(id, seq).catch((error) => console.warn('[porch] marking read failed:', error.message));
    }
  }

  // The live frame of a change often comes before the HTTP answer: an answer that a
  // newer change (asked for since) has overtaken must not roll the status back.
  async setStatus(id, status) {
    const request = (this.#statusRequests.get(id) || 0) + 1;
    this.#statusRequests.set(id, request);
    const thread = await this.#api.setStatus(id, status);
    if (this.#statusRequests.get(id) !== request) return;
    this.#statusAt.set(id, ++this.#clock);
    this.#put(thread);
    this.#emit('history', id);
    this.#changed();
  }

  // -- plumbing --------------------------------------------------------------------------

  #matches(thread) {
    const { site, status } = this.filters;
    return (!site || thread.site === site) && (status === 'all' || thread.status === status);
  }

  // `asked`: #clock when the request that brought `thread` was sent (none: it is newest).
  #put(thread, asked = Infinity) {
    const known = this.byId.get(thread.id);
    // An answer sent before a status we learnt since (closed, reopened) must not undo it.
    const status = known && (this.#statusAt.get(thread.id) ?? -1) > asked ? known.status : thread.status;
    // A list fetched before a live message must not roll the thread back.
    if (known && known.last_seq > thread.last_seq) {
      Object.assign(known, { status, visitor: thread.visitor, match: thread.match });
      return;
    }
    this.byId.set(thread.id, { ...thread, status });
  }

  #emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  #changed() {
    this.#emit('change');
  }
}
