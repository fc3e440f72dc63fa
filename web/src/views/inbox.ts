// The inbox: conversations, newest activity first, kept live by socket events.

import { ApiError, api, type Thread } from '../api';
import { confirmButton } from '../components';
import { Scope, h, reconcile } from '../dom';
import { threadHref, type View } from '../router';
import { others, peopleList, type Ctx } from '../state';
import { shortDate, verboseDateTime } from '../time';
import { withLatestEdit } from './timeline';

const PAGE = 20;

export function inboxView(ctx: Ctx): View {
  const scope = new Scope();
  const me = ctx.me.username;
  const threads = new Map<string, Thread>();
  const rows = new Map<string, HTMLElement>();
  let next: string | null = null;
  let loadedFirst = false;
  let loading = false;
  /** When each thread last changed through a live event: a page fetched before that is older news. */
  const liveAt = new Map<string, number>();

  const list = h('ul', { class: 'thread-list', testid: 'thread-list', attrs: { 'aria-label': 'Conversations' } });
  const empty = h(
    'div',
    { class: 'empty', testid: 'inbox-empty', attrs: { hidden: true } },
    h('p', null, 'No conversations yet.'),
    h('a', { class: 'button primary', attrs: { href: '#/compose' } }, 'Write a message'),
  );
  const status = h('p', { class: 'muted center', testid: 'inbox-status', attrs: { 'aria-live': 'polite' } }, 'Loading…');
  const more = h('button', { class: 'link more', testid: 'load-more', attrs: { type: 'button', hidden: true }, on: { click: () => void loadMore() } }, 'Load more');

  const el = h(
    'section',
    { class: 'inbox', testid: 'inbox' },
    h('div', { class: 'page-head' }, h('h1', null, 'Inbox'), h('a', { class: 'button primary', testid: 'compose-link', attrs: { href: '#/compose' } }, 'New message')),
    list,
    empty,
    status,
    more,
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
    const prev = rows.get(t.thread_id);
    const hadFocus = !!prev && prev.contains(document.activeElement) && document.activeElement?.getAttribute('data-testid') === 'thread-link';
    prev?.replaceWith(row);
    rows.set(t.thread_id, row);
    if (hadFocus) row.querySelector<HTMLElement>('[data-testid="thread-link"]')?.focus({ preventScroll: true });
  }

  function remove(id: string): void {
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
    const snippet = last ? `${author}${last.body.replace(/\s+/g, ' ').slice(0, 140)}` : 'No messages';
    const unread = t.unread > 0;
    return h(
      'li',
      {
        class: `thread-row${unread ? ' unread' : ''}${member ? '' : ' gone'}`,
        testid: 'thread-row',
        attrs: { 'data-thread-id': t.thread_id, 'data-unread': String(t.unread), 'data-kind': t.kind },
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
          member ? null : h('span', { class: 'tag muted', testid: 'thread-gone' }, 'Not a member'),
          unread
            ? h('span', { class: 'badge', testid: 'thread-unread-count', attrs: { 'aria-label': `${t.unread} unread` } }, String(t.unread))
            : null,
        ),
        h('div', { class: 'snippet', testid: 'thread-snippet' }, snippet),
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
  scope.add(
    ctx.rt.on('thread:deleted', ({ thread_id }) => {
      remove(thread_id);
      render();
    }),
  );
  scope.add(
    ctx.rt.on('message:deleted', ({ thread_id }) => {
      if (threads.has(thread_id)) void refreshOne(thread_id);
    }),
  );
  scope.add(ctx.rt.onResync(() => void loadFirst()));

  void loadFirst();
  return { el, destroy: () => scope.dispose() };
}
