// The thread list: the open / closed / all filter and one link per thread (#t=<id>),
// newest activity first, and a button for the older ones when there are more. Items are
// keyed by thread id and reused, so a thread moving to the top keeps its node (and
// focus), and only changed text is rewritten.
import { APPS } from './apps.js';
import { el, Keyed, reconcile } from './dom.js';
import { summary } from './files.js';
import { renderMatch } from './text.js';
import { STATUSES } from './threads.js';

// Avatar backgrounds, each with white text at WCAG AA contrast (≥ 4.5:1).
const AVATAR_COLORS = ['#2f6f4e', '#1f5f8b', '#7a4b9a', '#a23b5c', '#8a5a00', '#3d6b73', '#5b5f97', '#9a3e2b'];

export class ThreadList {
  #text;
  #items = new Keyed();
  #onFilter;
  #olderItem;

  constructor(text, { onFilter, onOlder }) {
    this.#text = text;
    this.#onFilter = onFilter;
    const t = text.t;
    this.filter = el('fieldset', { class: 'filters' },
      el('legend', { class: 'sr-only' }, t('list.filter')),
      ...STATUSES.map((status) => el('label', {},
        el('input', { type: 'radio', name: 'status', value: status, checked: status === 'open' }),
        el('span', {}, t(`list.status.${status}`)))));
    this.filter.addEventListener('change', (event) => this.#onFilter(event.target.value));
    this.status = el('p', { class: 'list-status', role: 'status' });
    this.list = el('ul', { class: 'threads', 'aria-labelledby': 'list-title' });
    // Last in the list itself, so it scrolls with the threads and comes after them in
    // tab order.
    this.older = el('button', { type: 'button', class: 'secondary' }, t('list.older'));
    this.older.addEventListener('click', () => onOlder());
    this.#olderItem = el('li', { class: 'older' }, this.older);
    this.root = el('nav', { class: 'list-pane', 'aria-labelledby': 'list-title' },
      el('div', { class: 'list-head' }, el('h2', { id: 'list-title', class: 'sr-only' }, t('list.title')), this.filter),
      this.status, this.list);
  }

  setFilter(status) {
    for (const input of this.filter.querySelectorAll('input')) input.checked = input.value === status;
  }

  // threads: ThreadOut[] in order; sites: id -> name (shown when there are several);
  // more: older threads can be fetched; held(id): how many of its emailed replies wait
  // for the owner's decision (held.js).
  render({ threads, selected, sites, filters, loaded, more, held = () => 0 }) {
    const t = this.#text.t;
    const several = sites.size > 1;
    const items = threads.map((thread) => {
      const item = this.#items.get(thread.id, () => this.#item(thread.id));
      this.#fill(item, thread, { selected: thread.id === selected, siteName: several ? sites.get(thread.site) || thread.site : '', held: held(thread.id) });
      return item;
    });
    reconcile(this.list, more ? [...items, this.#olderItem] : items);
    this.#items.prune();
    let status = '';
    if (!loaded) status = t('list.loading');
    else if (filters.q) status = threads.length ? t('list.results', { count: threads.length }) : t('list.no_results', { q: filters.q });
    else if (!threads.length) status = t(`list.empty.${filters.status}`);
    if (this.status.textContent !== status) this.status.textContent = status;
    this.status.hidden = !status;
  }

  // Refresh the relative times ("5 min ago") without touching anything else.
  tick() {
    for (const time of this.list.querySelectorAll('time[datetime]')) {
      time.textContent = this.#text.relative(new Date(time.dateTime));
    }
  }

  link(id) {
    return this.#items.get(id, () => this.#item(id)).querySelector('a');
  }

  #item(id) {
    const parts = {
      avatar: el('span', { class: 'avatar', 'aria-hidden': 'true' }),
      name: el('span', { class: 'name' }),
      time: el('time', { class: 'when' }),
      preview: el('span', { class: 'preview' }),
      badge: el('span', { class: 'badge' }),
      held: el('span', { class: 'held-badge', hidden: true }),
      where: el('span', { class: 'where' }),
      match: el('span', { class: 'match' }),
    };
    const link = el('a', { href: `#t=${encodeURIComponent(id)}`, 'data-thread': id },
      parts.avatar,
      el('span', { class: 'line' }, parts.name, parts.time),
      el('span', { class: 'line' }, parts.preview, parts.held, parts.badge),
      parts.match, parts.where);
    const item = el('li', { class: 'thread-item' }, link);
    item.parts = parts;
    return item;
  }

  #fill(item, thread, { selected, siteName, held }) {
    const text = this.#text;
    const t = text.t;
    const p = item.parts;
    const visitor = thread.visitor || {};
    const who = visitor.name || visitor.email || t('visitor.anonymous');
    set(p.name, who);
    set(p.avatar, initials(visitor.name || visitor.email || ''));
    p.avatar.classList.toggle('anonymous', !visitor.name && !visitor.email);
    if (!p.avatar.dataset.color) p.avatar.style.backgroundColor = p.avatar.dataset.color = AVATAR_COLORS[hash(visitor.id || thread.id) % AVATAR_COLORS.length];
    const at = thread.last_message?.created_at || thread.updated_at;
    if (p.time.dateTime !== at) {
      p.time.dateTime = at;
      p.time.title = text.full(new Date(at));
    }
    set(p.time, text.relative(new Date(at)));
    const last = thread.last_message;
    // A message made only of files stands as them: "📎 photo.png".
    const words = last ? summary(last, t) : '';
    const preview = !last ? '' : last.author === 'owner' ? t('preview.owner', { text: words })
      : last.author === 'system' ? t('preview.system', { text: words }) : words;
    set(p.preview, preview);
    const unread = thread.unread || 0;
    p.badge.hidden = !unread;
    if (p.badge.dataset.count !== String(unread)) {
      p.badge.dataset.count = unread;
      p.badge.replaceChildren(...(unread ? [el('span', { 'aria-hidden': 'true' }, String(unread)), el('span', { class: 'sr-only' }, `, ${t('list.unread', { count: unread })}`)] : []));
    }
    p.held.hidden = !held;
    if (held && !p.held.childNodes.length) {
      const said = t('held.badge');
      p.held.append(el('span', { 'aria-hidden': 'true' }, said), el('span', { class: 'sr-only' }, `, ${said}`));
    }
    item.classList.toggle('unread', unread > 0);
    item.classList.toggle('closed', thread.status === 'closed');
    // The app the customer writes from, when their last message came from one.
    const app = last?.author === 'visitor' && APPS.includes(last.via) ? t(`app.${last.via}`) : '';
    const where = [siteName, app, pagePath(thread.page), thread.status === 'closed' ? t('thread.status.closed') : ''].filter(Boolean).join(' · ');
    set(p.where, where);
    p.where.hidden = !where;
    if (thread.match) {
      p.match.replaceChildren();
      renderMatch(p.match, thread.match);
    } else p.match.replaceChildren();
    p.match.hidden = !thread.match;
    p.preview.hidden = Boolean(thread.match); // the hit says more than the last message
    const link = item.firstChild;
    if (selected) link.setAttribute('aria-current', 'true');
    else link.removeAttribute('aria-current');
  }
}

function set(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

function initials(name) {
  const words = name.replace(/@.*/, '').split(/[\s._-]+/).filter(Boolean);
  if (!words.length) return '?';
  return (words[0][0] + (words.length > 1 ? words.at(-1)[0] : '')).toLocaleUpperCase();
}

function hash(text) {
  let value = 0;
  for (const char of text) value = (value * 31 + char.codePointAt(0)) >>> 0;
  return value;
}

// "/pricing?x=1" out of the visitor's page URL, for the list's third line.
export function pagePath(page) {
  if (!page) return '';
  try {
    const url = new URL(page);
    return url.pathname + url.search;
  } catch {
    return '';
  }
}
