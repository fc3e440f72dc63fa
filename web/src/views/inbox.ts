// The inbox: conversations, newest activity first, kept live by socket events; and searching
// every message one can see (`#/inbox?q=words` shows the results).

import { ApiError, api, type SearchResult, type Thread } from '../api';
import { confirmButton } from '../components';
import { Scope, h, reconcile, replaceChildren, type Child } from '../dom';
import { isMuted, muteEndsIn, muteMark } from '../mute';
import { threadHref, type View } from '../router';
import { others, peopleList, type Ctx } from '../state';
import { shortDate, verboseDateTime } from '../time';
import { REMOVED_TEXT, asRemoved, previewOf, withLatestEdit } from './timeline';

const PAGE = 20;
const SEARCH_PAGE = 20;
/** A long body shows this many characters of itself around its first match. */
const RESULT_CHARS = 280;
/** The longest delay setTimeout keeps (about 24.8 days). */
const MAX_TIMER_MS = 2 ** 31 - 1;

export function inboxView(ctx: Ctx, initialQuery: string | null = null): View {
  const scope = new Scope();
  const me = ctx.me.username;
  const threads = new Map<string, Thread>();
  const rows = new Map<string, HTMLElement>();
  let next: string | null = null;
  let loadedFirst = false;
  let loading = false;
  /** When each thread last changed through a live event: a page fetched before that is older news. */
  const liveAt = new Map<string, number>();
  /** Rows whose timed mute will end: redrawn without their bell-slash then. */
  const muteTimers = new Map<string, number>();
  scope.add(() => muteTimers.forEach((t) => window.clearTimeout(t)));

  const list = h('ul', { class: 'thread-list', testid: 'thread-list', attrs: { 'aria-label': 'Conversations' } });
  const empty = h(
    'div',
    { class: 'empty', testid: 'inbox-empty', attrs: { hidden: true } },
    h('p', null, 'No conversations yet.'),
    h('a', { class: 'button primary', attrs: { href: '#/compose' } }, 'Write a message'),
  );
  const status = h('p', { class: 'muted center', testid: 'inbox-status', attrs: { 'aria-live': 'polite' } }, 'Loading…');
  const more = h('button', { class: 'link more', testid: 'load-more', attrs: { type: 'button', hidden: true }, on: { click: () => void loadMore() } }, 'Load more');

  // ---- search
  const searchInput = h('input', {
    class: 'search-input',
    testid: 'search-input',
    attrs: { id: 'search', type: 'search', name: 'q', placeholder: 'Search messages', autocomplete: 'off', 'aria-describedby': 'search-error' },
  });
  const searchForm = h(
    'form',
    { class: 'search', testid: 'search-form', attrs: { role: 'search' } },
    h('label', { class: 'visually-hidden', attrs: { for: 'search' } }, 'Search messages'),
    searchInput,
    h('button', { class: 'small-button', testid: 'search-submit', attrs: { type: 'submit' } }, 'Search'),
  );
  const searchSummary = h('p', { class: 'search-summary muted', testid: 'search-summary', attrs: { 'aria-live': 'polite' } });
  const searchError = h('p', { class: 'form-error', testid: 'search-error', attrs: { id: 'search-error', role: 'alert' } });
  const searchEmpty = h('p', { class: 'empty', testid: 'search-empty', attrs: { hidden: true } });
  const resultList = h('ul', { class: 'thread-list result-list', testid: 'search-result-list', attrs: { 'aria-label': 'Search results' } });
  const searchMore = h(
    'button',
    { class: 'link more', testid: 'search-more', attrs: { type: 'button', hidden: true }, on: { click: () => void searchPage() } },
    'More results',
  );
  const searchClear = h(
    'button',
    { class: 'link', testid: 'search-clear', attrs: { type: 'button' }, on: { click: () => (clearSearch(), searchInput.focus()) } },
    'Back to conversations',
  );
  const results = h(
    'section',
    { class: 'search-results', testid: 'search-results', attrs: { hidden: true, 'aria-label': 'Search results' } },
    h('div', { class: 'search-head' }, searchSummary, searchClear),
    searchError,
    searchEmpty,
    resultList,
    searchMore,
  );
  const conversations = h('div', { class: 'conversations', testid: 'conversations' }, list, empty, status, more);

  const el = h(
    'section',
    { class: 'inbox', testid: 'inbox' },
    h(
      'div',
      { class: 'page-head' },
      h('h1', null, 'Inbox'),
      searchForm,
      h('a', { class: 'button primary', testid: 'compose-link', attrs: { href: '#/compose' } }, 'New message'),
    ),
    results,
    conversations,
  );

  const time = (t: Thread) => Date.parse(t.updated_at) || 0;
  const sorted = () => [...threads.values()].sort((a, b) => time(b) - time(a) || (a.thread_id < b.thread_id ? -1 : 1));

  function render(): void {
    const order = sorted();
    reconcile(list, order.map((t) => t.thread_id), (id) => rows.get(id)!);
    empty.hidden = !(loadedFirst && threads.size === 0);
    more.hidden = !next;
  }

  function upsert(t: Thread): void {
    const old = threads.get(t.thread_id);
    // A page fetched earlier must not overwrite a newer live update.
    if (old && time(old) > time(t)) return;
    // Nor bring back the text of a last message edited since.
    if (old?.last_message && t.last_message?.url === old.last_message.url) {
      t = { ...t, last_message: withLatestEdit(old.last_message, t.last_message) };
    }
    threads.set(t.thread_id, t);
    const row = renderRow(t);
    window.clearTimeout(muteTimers.get(t.thread_id));
    muteTimers.delete(t.thread_id);
    const ends = muteEndsIn(t);
    if (ends !== null && ends < MAX_TIMER_MS) {
      const id = t.thread_id;
      muteTimers.set(id, window.setTimeout(() => void (threads.has(id) && redraw(id)), ends + 50));
    }
    const prev = rows.get(t.thread_id);
    const hadFocus = !!prev && prev.contains(document.activeElement) && document.activeElement?.getAttribute('data-testid') === 'thread-link';
    prev?.replaceWith(row);
    rows.set(t.thread_id, row);
    if (hadFocus) row.querySelector<HTMLElement>('[data-testid="thread-link"]')?.focus({ preventScroll: true });
  }

  /** Draws a thread's row again from what is known of it (the server's word, even if not newer). */
  function redraw(id: string, change: Partial<Thread> = {}): void {
    const t = threads.get(id);
    if (!t) return;
    threads.delete(id);
    upsert({ ...t, ...change });
    render();
  }

  function remove(id: string): void {
    window.clearTimeout(muteTimers.get(id));
    muteTimers.delete(id);
    threads.delete(id);
    rows.get(id)?.remove();
    rows.delete(id);
  }

  function renderRow(t: Thread): HTMLElement {
    const group = t.kind === 'group';
    const member = t.participants.includes(me);
    const people = others(t.participants, me);
    const last = t.last_message;
    // In a group, say who wrote the last message; in a direct thread only "You:" needs saying.
    const author = !last ? '' : last.sender === me ? 'You: ' : group ? `${last.sender}: ` : '';
    const snippet = last ? `${author}${previewOf(last).replace(/\s+/g, ' ').slice(0, 140)}` : 'No messages';
    const unread = t.unread > 0;
    return h(
      'li',
      {
        class: `thread-row${unread ? ' unread' : ''}${member ? '' : ' gone'}`,
        testid: 'thread-row',
        attrs: { 'data-thread-id': t.thread_id, 'data-unread': String(t.unread), 'data-kind': t.kind, 'data-muted': String(isMuted(t)) },
      },
      h(
        'a',
        { class: 'thread-link', testid: 'thread-link', attrs: { href: threadHref(t.thread_id) } },
        h(
          'div',
          { class: 'row-top' },
          h(
            'span',
            { class: 'who', testid: 'thread-participants' },
            group ? h('span', { class: 'tag', testid: 'thread-group', attrs: { title: `Group of ${t.participants.length}` } }, 'Group') : null,
            group ? ' ' : null,
            ...peopleList(ctx.presence, people, group ? 3 : 4),
          ),
          h('time', { class: 'when', attrs: { datetime: t.updated_at, title: verboseDateTime(t.updated_at) } }, shortDate(t.updated_at)),
        ),
        h(
          'div',
          { class: 'row-mid' },
          h('span', { class: 'subject', testid: 'thread-subject' }, t.subject),
          muteMark(t),
          member ? null : h('span', { class: 'tag muted', testid: 'thread-gone' }, 'Not a member'),
          unread
            ? h('span', { class: 'badge', testid: 'thread-unread-count', attrs: { 'aria-label': `${t.unread} unread` } }, String(t.unread))
            : null,
        ),
        h('div', { class: `snippet${last?.removed ? ' removed' : ''}`, testid: 'thread-snippet' }, snippet),
      ),
      h(
        'div',
        { class: 'row-actions' },
        confirmButton({
          label: 'Delete',
          question: 'Delete conversation?',
          testid: 'thread-delete',
          ariaLabel: `Delete conversation “${t.subject}”`,
          action: async () => {
            const ack = await ctx.rt.request('thread:delete', { thread_id: t.thread_id });
            if (!ack.status) return ack.message;
            remove(t.thread_id);
            render();
            return null;
          },
        }),
      ),
    );
  }

  async function loadFirst(): Promise<void> {
    loading = true;
    const started = performance.now();
    try {
      const page = await api.threads(null, PAGE);
      if (!scope.alive) return;
      const seen = new Set(page.threads.map((t) => t.thread_id));
      const oldest = page.threads.length ? Math.min(...page.threads.map(time)) : Infinity;
      // Threads newer than the end of this page that it no longer lists were deleted meanwhile
      // (unless a live event brought them after the page was asked for).
      for (const t of [...threads.values()]) {
        const fresh = (liveAt.get(t.thread_id) ?? -1) >= started;
        if (!fresh && !seen.has(t.thread_id) && (time(t) >= oldest || !page.next)) remove(t.thread_id);
      }
      for (const t of page.threads) upsert(t);
      if (!loadedFirst) next = page.next;
      loadedFirst = true;
      status.textContent = '';
      render();
    } catch (err) {
      if (scope.alive) status.textContent = err instanceof ApiError ? err.message : 'Could not load the inbox.';
    } finally {
      loading = false;
      observe();
    }
  }

  async function loadMore(): Promise<void> {
    if (loading || !next) return;
    loading = true;
    status.textContent = 'Loading…';
    try {
      const page = await api.threads(next, PAGE);
      if (!scope.alive) return;
      for (const t of page.threads) upsert(t);
      next = page.next;
      status.textContent = '';
      render();
    } catch (err) {
      if (scope.alive) status.textContent = err instanceof ApiError ? err.message : 'Could not load more.';
    } finally {
      loading = false;
      observe();
    }
  }

  // Infinite scroll: (re-)observing delivers a fresh entry, so a sentinel that is still on
  // screen after a page arrives triggers the next page too.
  const io = new IntersectionObserver((entries) => {
    if (entries.some((e) => e.isIntersecting)) void loadMore();
  });
  const observe = () => {
    io.unobserve(more);
    if (next) io.observe(more);
  };
  scope.add(() => io.disconnect());

  async function refreshOne(id: string): Promise<void> {
    try {
      const { thread } = await api.thread(id);
      if (!scope.alive) return;
      threads.delete(id); // take the server's word even if not newer (e.g. last message deleted)
      upsert(thread);
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) remove(id);
    }
    if (scope.alive) render();
  }

  scope.add(
    ctx.rt.on('message:new', ({ message, thread }) => {
      liveAt.set(message.thread_id, performance.now());
      if (thread) {
        upsert(thread);
        render();
      } else void refreshOne(message.thread_id);
    }),
  );
  // A group changed (members, name) or I was added to one: the event carries the thread as it is.
  scope.add(
    ctx.rt.on('thread:updated', ({ thread }) => {
      liveAt.set(thread.thread_id, performance.now());
      threads.delete(thread.thread_id); // the server's word, even if its time did not move
      upsert(thread);
      render();
    }),
  );
  scope.add(
    ctx.rt.on('thread:read', ({ thread_id }) => {
      const t = threads.get(thread_id);
      if (!t || t.unread === 0) return;
      threads.delete(thread_id);
      upsert({ ...t, unread: 0, last_message: t.last_message && { ...t.last_message, read: true } });
      render();
    }),
  );
  // An edit of a thread's last message changes its preview.
  scope.add(
    ctx.rt.on('message:edited', ({ message }) => {
      const t = threads.get(message.thread_id);
      if (t?.last_message?.url !== message.url) return;
      upsert({ ...t, last_message: message });
      render();
    }),
  );
  // So does a removal for everyone; a result shown of it loses its text.
  scope.add(
    ctx.rt.on('message:removed', ({ url, thread_id }) => {
      const t = threads.get(thread_id);
      if (t?.last_message?.url === url) {
        upsert({ ...t, last_message: asRemoved(t.last_message) });
        render();
      }
      const body = resultBodies.get(url);
      if (body) showResultBody(body, null, []);
    }),
  );
  scope.add(
    ctx.rt.on('thread:deleted', ({ thread_id }) => {
      remove(thread_id);
      render();
    }),
  );
  // Muted or unmuted in this tab or another of mine.
  scope.add(ctx.rt.on('thread:muted', ({ thread_id, muted, muted_until }) => redraw(thread_id, { muted, muted_until })));
  scope.add(
    ctx.rt.on('message:deleted', ({ thread_id }) => {
      if (threads.has(thread_id)) void refreshOne(thread_id);
    }),
  );
  scope.add(ctx.rt.onResync(() => void loadFirst()));

  // ---- search: one query at a time; a page answering for an older query is dropped.
  let query = '';
  let searchNext: string | null = null;
  let searchGen = 0;
  let searching = false;
  const resultBodies = new Map<string, HTMLElement>();

  function showSearch(on: boolean): void {
    results.hidden = !on;
    conversations.hidden = on;
  }

  function clearSearch(): void {
    searchGen++;
    query = '';
    searchInput.value = '';
    searching = false;
    resultBodies.clear();
    replaceChildren(resultList);
    showSearch(false);
    history.replaceState(history.state, '', '#/inbox');
  }

  /** A new search: the first page of results for `q` (empty: back to the conversations). */
  function startSearch(q: string): void {
    if (!q.trim()) return clearSearch();
    searchGen++;
    query = q;
    searchNext = null;
    searching = false;
    resultBodies.clear();
    replaceChildren(resultList);
    searchError.textContent = '';
    searchEmpty.hidden = true;
    searchMore.hidden = true;
    searchSummary.textContent = 'Searching…';
    showSearch(true);
    // Kept in the address, so that coming back from a result shows the results again.
    history.replaceState(history.state, '', `#/inbox?q=${encodeURIComponent(q)}`);
    void searchPage();
  }

  async function searchPage(): Promise<void> {
    if (searching) return;
    const gen = searchGen;
    const before = searchNext;
    searching = true;
    searchMore.disabled = true;
    try {
      const page = await api.search(query, before, SEARCH_PAGE);
      if (!scope.alive || gen !== searchGen) return;
      for (const r of page.results) resultList.append(resultRow(r));
      searchNext = page.next;
      const count = resultList.childElementCount;
      searchSummary.textContent = count ? `${count}${page.next ? '+' : ''} ${count === 1 ? 'result' : 'results'} for “${query}”` : '';
      searchEmpty.textContent = `No results for “${query}”.`;
      searchEmpty.hidden = count > 0;
      searchMore.hidden = !page.next;
    } catch (err) {
      if (!scope.alive || gen !== searchGen) return;
      // The server's own words (e.g. invalid_query: empty or too long).
      searchError.textContent = err instanceof ApiError ? err.message : 'Could not search.';
      searchSummary.textContent = '';
      searchMore.hidden = !searchNext;
    } finally {
      if (gen === searchGen) {
        searching = false;
        searchMore.disabled = false;
      }
    }
  }

  function resultRow(r: SearchResult): HTMLElement {
    const m = r.message;
    const body = h('div', { class: 'result-body', testid: 'search-result-body' });
    showResultBody(body, m.removed ? null : m.body, r.highlights);
    resultBodies.set(m.url, body);
    return h(
      'li',
      { class: 'thread-row search-result', testid: 'search-result', attrs: { 'data-url': m.url, 'data-thread-id': r.thread.thread_id } },
      h(
        'a',
        { class: 'thread-link', testid: 'search-result-link', attrs: { href: `${threadHref(r.thread.thread_id)}?m=${encodeURIComponent(m.url)}` } },
        h(
          'div',
          { class: 'row-top' },
          h('span', { class: 'subject', testid: 'search-result-subject' }, r.thread.subject),
          h('time', { class: 'when', testid: 'search-result-time', attrs: { datetime: m.timestamp, title: verboseDateTime(m.timestamp) } }, shortDate(m.timestamp)),
        ),
        h('div', { class: 'result-sender', testid: 'search-result-sender', attrs: { 'data-sender': m.sender } }, m.sender === me ? 'You' : m.sender),
        body,
      ),
    );
  }

  searchForm.addEventListener('submit', (e) => {
    e.preventDefault();
    startSearch(searchInput.value);
  });
  // The search box's own clear button (type=search): back to the conversations.
  searchInput.addEventListener('search', () => {
    if (!searchInput.value && !results.hidden) clearSearch();
  });
  searchInput.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && !results.hidden) {
      e.preventDefault();
      clearSearch();
    }
  });

  void loadFirst();
  if (initialQuery?.trim()) {
    searchInput.value = initialQuery;
    startSearch(initialQuery);
  }
  return { el, destroy: () => scope.dispose() };
}

/** A result's text, its matches marked (text nodes and <mark>s only, never HTML). */
function showResultBody(el: HTMLElement, body: string | null, ranges: Array<[number, number]>): void {
  el.classList.toggle('removed', body === null);
  if (body === null) return replaceChildren(el, REMOVED_TEXT);
  replaceChildren(el, ...marked(body, ranges, RESULT_CHARS));
}

/**
 * `body` with the code-point ranges `ranges` (end excluded) in <mark>s. Past `max` characters,
 * only `max` of them around the first match, with an ellipsis where it was cut.
 */
export function marked(body: string, ranges: ReadonlyArray<readonly [number, number]>, max = Infinity): Child[] {
  // Code points, as the server counts (an emoji is one, not two UTF-16 units).
  const chars = Array.from(body);
  const merged: [number, number][] = [];
  const clean = ranges
    .map(([a, b]) => [Math.max(0, Math.min(a, chars.length)), Math.max(0, Math.min(b, chars.length))] as [number, number])
    .filter(([a, b]) => b > a)
    .sort((x, y) => x[0] - y[0] || x[1] - y[1]);
  for (const [a, b] of clean) {
    const last = merged[merged.length - 1];
    if (last && a <= last[1]) last[1] = Math.max(last[1], b);
    else merged.push([a, b]);
  }
  let from = 0;
  let to = chars.length;
  if (chars.length > max) {
    from = Math.max(0, Math.min((merged[0]?.[0] ?? 0) - Math.floor(max / 4), chars.length - max));
    to = from + max;
  }
  const out: Child[] = [];
  if (from > 0) out.push('…');
  let pos = from;
  for (const [a, b] of merged) {
    const start = Math.max(a, pos);
    const end = Math.min(b, to);
    if (end <= start) continue;
    if (start > pos) out.push(chars.slice(pos, start).join(''));
    out.push(h('mark', { testid: 'search-mark' }, chars.slice(start, end).join('')));
    pos = end;
  }
  if (pos < to) out.push(chars.slice(pos, to).join(''));
  if (to < chars.length) out.push('…');
  return out;
}
