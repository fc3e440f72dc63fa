// One conversation: messages (older ones load when scrolling up), the reply box, typing and read marks.

import { ApiError, api, type Message, type Thread } from '../api';
import { confirmButton } from '../components';
import { Scope, h, reconcile, replaceChildren } from '../dom';
import type { View } from '../router';
import { others, type Ctx } from '../state';
import { localDateTime, relativeSpan, verboseDateTime } from '../time';
import { newClientId } from '../ids';
import { setPageTitle } from '../title';

const PAGE = 30;
const TYPING_EMIT_EVERY_MS = 2_000;
const TYPING_IDLE_MS = 3_000;
/** Typing events are volatile: forget a typist we have not heard from in this long. */
const TYPING_STALE_MS = 6_000;

export function threadView(ctx: Ctx, threadId: string): View {
  const scope = new Scope();
  const me = ctx.me.username;
  const messages = new Map<string, Message>();
  const rows = new Map<string, HTMLElement>();
  let thread: Thread | null = null;
  let hasMore = false;
  let loadingOlder = false;
  let readPending = false;
  /** When each message arrived live: a page fetched before that cannot know it. */
  const liveAt = new Map<string, number>();

  // ---- elements
  const title = h('h1', { class: 'thread-title', testid: 'thread-title' }, 'Loading…');
  const people = h('p', { class: 'muted people', testid: 'thread-people' });
  const headActions = h('div', { class: 'head-actions' });
  const older = h('button', { class: 'link more', testid: 'load-older', attrs: { type: 'button', hidden: true }, on: { click: () => void loadOlder() } }, 'Load older messages');
  const beginning = h('p', { class: 'muted center small', testid: 'thread-beginning', attrs: { hidden: true } }, 'Beginning of the conversation');
  const list = h('ol', { class: 'message-list', testid: 'message-list', attrs: { 'aria-label': 'Messages' } });
  const emptyMsg = h('p', { class: 'muted center', testid: 'thread-empty', attrs: { hidden: true } }, 'No messages here.');
  const scroller = h(
    'div',
    { class: 'scroller', testid: 'message-scroll', attrs: { tabindex: 0, 'aria-label': 'Conversation', role: 'region' } },
    h('div', { class: 'stack' }, older, beginning, list, emptyMsg),
  );
  const jump = h(
    'button',
    { class: 'jump', testid: 'new-below', attrs: { type: 'button', hidden: true }, on: { click: () => (toBottom(), input.focus()) } },
    '↓ New messages',
  );
  scroller.addEventListener('scroll', () => {
    if (!jump.hidden && atBottom()) jump.hidden = true;
  });
  const typingEl = h('div', { class: 'typing', testid: 'typing-indicator', attrs: { 'aria-live': 'polite' } });
  const input = h('textarea', {
    class: 'reply-input',
    testid: 'reply-input',
    attrs: { id: 'reply', name: 'body', rows: 2, placeholder: 'Write a reply…', 'aria-describedby': 'reply-hint reply-error' },
  });
  const sendBtn = h('button', { class: 'primary', testid: 'reply-send', attrs: { type: 'submit' } }, 'Send');
  const error = h('div', { class: 'field-error', testid: 'reply-error', attrs: { id: 'reply-error', role: 'alert' } });
  const form = h(
    'form',
    { class: 'reply', testid: 'reply-form' },
    h('label', { class: 'visually-hidden', attrs: { for: 'reply' } }, 'Reply'),
    h('div', { class: 'reply-row' }, input, sendBtn),
    error,
    h('div', { class: 'hint', attrs: { id: 'reply-hint' } }, 'Enter sends, Shift+Enter adds a new line.'),
  );
  const status = h('p', { class: 'muted center', testid: 'thread-status', attrs: { 'aria-live': 'polite' } });

  const el = h(
    'section',
    { class: 'thread-view', testid: 'thread-view', attrs: { 'data-thread-id': threadId } },
    h('div', { class: 'thread-head' }, h('a', { class: 'back', testid: 'back-to-inbox', attrs: { href: '#/inbox', 'aria-label': 'Back to the inbox' } }, '←', h('span', { class: 'back-text' }, ' Inbox')), h('div', { class: 'thread-head-main' }, title, people), headActions),
    status,
    h('div', { class: 'scroll-wrap' }, scroller, jump),
    typingEl,
    form,
  );

  // ---- rendering
  const ts = (m: Message) => Date.parse(m.timestamp) || 0;
  const order = () => [...messages.values()].sort((a, b) => ts(a) - ts(b));
  const atBottom = () => scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 48;
  const toBottom = () => {
    scroller.scrollTop = scroller.scrollHeight;
    jump.hidden = true;
  };

  function render(): void {
    reconcile(list, order().map((m) => m.url), (url) => rows.get(url)!);
    emptyMsg.hidden = messages.size > 0 || hasMore;
    older.hidden = !hasMore;
    beginning.hidden = hasMore || messages.size === 0;
  }

  function put(m: Message): void {
    if (m.thread_id !== threadId) return;
    const old = messages.get(m.url);
    if (old && old.read === m.read && old.body === m.body) return;
    messages.set(m.url, m);
    const row = renderRow(m);
    rows.get(m.url)?.replaceWith(row);
    rows.set(m.url, row);
  }

  function drop(url: string): void {
    messages.delete(url);
    rows.get(url)?.remove();
    rows.delete(url);
  }

  function renderRow(m: Message): HTMLElement {
    const mine = m.sender === me;
    const unreadForMe = !mine && m.recipient === me && !m.read;
    return h(
      'li',
      {
        class: `msg${mine ? ' mine' : ''}${unreadForMe ? ' new' : ''}`,
        testid: 'message-row',
        attrs: { 'data-url': m.url, 'data-sender': m.sender },
      },
      h(
        'div',
        { class: 'msg-meta' },
        h('span', { class: 'sender', testid: 'message-sender' }, mine ? 'You' : m.sender),
        h(
          'time',
          { attrs: { datetime: m.timestamp, title: verboseDateTime(m.timestamp) } },
          h('span', { testid: 'message-time' }, localDateTime(m.timestamp)),
          ' · ',
          relativeSpan(m.timestamp, 'message-relative'),
        ),
        h(
          'span',
          { class: 'msg-actions' },
          confirmButton({
            label: 'Delete',
            question: 'Delete message?',
            testid: 'message-delete',
            ariaLabel: `Delete message from ${m.sender}`,
            action: async () => {
              const ack = await ctx.rt.request('message:delete', { url: m.url });
              if (!ack.status) return ack.message;
              drop(m.url);
              render();
              return null;
            },
          }),
        ),
      ),
      h('div', { class: 'msg-body', testid: 'message-body' }, m.body),
    );
  }

  function renderHead(t: Thread): void {
    title.textContent = t.subject;
    const who = others(t.participants, me);
    replaceChildren(people, 'with ', ...who.flatMap((p, i) => [i ? ', ' : '', ctx.presence.dot(p), ' ', h('span', { class: 'person' }, p)]));
    replaceChildren(
      headActions,
      confirmButton({
        label: 'Delete',
        question: 'Delete conversation?',
        testid: 'thread-delete',
        ariaLabel: 'Delete this conversation',
        action: async () => {
          const ack = await ctx.rt.request('thread:delete', { thread_id: threadId });
          if (!ack.status) return ack.message;
          ctx.navigate('#/inbox');
          return null;
        },
      }),
    );
    setPageTitle(t.subject);
  }

  // ---- loading
  async function load(): Promise<void> {
    status.textContent = 'Loading…';
    try {
      const [{ thread: t }, page] = await Promise.all([api.thread(threadId), api.messages(threadId, null, PAGE)]);
      if (!scope.alive) return;
      thread = t;
      renderHead(t);
      for (const m of page.messages) put(m);
      hasMore = page.has_more;
      status.textContent = '';
      render();
      toBottom();
      observeTop();
      markRead();
    } catch (err) {
      if (!scope.alive) return;
      if (err instanceof ApiError && err.status === 404) {
        title.textContent = 'Conversation not found';
        status.replaceChildren();
        status.append(
          h('span', { testid: 'thread-missing' }, 'This conversation does not exist or was deleted. '),
          h('a', { attrs: { href: '#/inbox' } }, 'Back to the inbox'),
        );
        form.hidden = true;
      } else {
        status.textContent = err instanceof ApiError ? err.message : 'Could not load the conversation.';
      }
    }
  }

  /** After a reconnect: merge the newest page, dropping what it says no longer exists. */
  async function catchUp(): Promise<void> {
    if (!thread) return void load();
    const started = performance.now();
    try {
      const page = await api.messages(threadId, null, PAGE);
      if (!scope.alive) return;
      const wasAtBottom = atBottom();
      // More than a page arrived while we were away: what we hold no longer joins up with it.
      if (page.has_more && messages.size > 0 && !page.messages.some((m) => messages.has(m.url))) {
        for (const url of [...messages.keys()]) if ((liveAt.get(url) ?? -1) < started) drop(url);
        hasMore = true;
      }
      const urls = new Set(page.messages.map((m) => m.url));
      const oldest = page.messages.length ? ts(page.messages[0]) : Infinity;
      for (const m of [...messages.values()]) {
        const fresh = (liveAt.get(m.url) ?? -1) >= started;
        if (!fresh && !urls.has(m.url) && (ts(m) >= oldest || !page.has_more)) drop(m.url);
      }
      for (const m of page.messages) put(m);
      if (!page.has_more) hasMore = false;
      render();
      if (wasAtBottom) toBottom();
      observeTop();
      if (page.messages.some((m) => m.recipient === me && !m.read)) markRead();
    } catch (err) {
      if (scope.alive && err instanceof ApiError && err.status === 404) ctx.navigate('#/inbox');
    }
  }

  async function loadOlder(): Promise<void> {
    if (loadingOlder || !hasMore) return;
    const oldest = order()[0];
    if (!oldest) return;
    loadingOlder = true;
    older.textContent = 'Loading…';
    try {
      const page = await api.messages(threadId, oldest.url, PAGE);
      if (!scope.alive) return;
      const fromBottom = scroller.scrollHeight - scroller.scrollTop;
      for (const m of page.messages) put(m);
      hasMore = page.has_more;
      render();
      // Keep what the reader was looking at in place while older messages appear above it.
      scroller.scrollTop = scroller.scrollHeight - fromBottom;
    } catch (err) {
      status.textContent = err instanceof ApiError ? err.message : 'Could not load older messages.';
    } finally {
      loadingOlder = false;
      older.textContent = 'Load older messages';
      observeTop();
    }
  }

  const io = new IntersectionObserver((entries) => entries.some((e) => e.isIntersecting) && void loadOlder(), { root: scroller, rootMargin: '200px 0px 0px 0px' });
  const observeTop = () => {
    io.unobserve(older);
    if (hasMore) io.observe(older);
  };
  scope.add(() => io.disconnect());

  // ---- read marks
  function markRead(): void {
    if (document.visibilityState !== 'visible') {
      readPending = true;
      return;
    }
    readPending = false;
    void ctx.rt.request('thread:read', { thread_id: threadId }).then((ack) => {
      if (ack.status) clearNewMarks();
    });
  }
  function clearNewMarks(): void {
    for (const m of [...messages.values()]) if (m.recipient === me && !m.read) put({ ...m, read: true });
  }
  scope.listen(document, 'visibilitychange', () => {
    if (document.visibilityState === 'visible' && readPending) markRead();
  });

  // ---- typing (others)
  const typists = new Map<string, number>();
  function setTypist(username: string, typing: boolean): void {
    window.clearTimeout(typists.get(username));
    typists.delete(username);
    if (typing) typists.set(username, window.setTimeout(() => setTypist(username, false), TYPING_STALE_MS));
    const names = [...typists.keys()];
    typingEl.textContent = names.length === 0 ? '' : names.length === 1 ? `${names[0]} is typing…` : `${names.join(' and ')} are typing…`;
    typingEl.dataset.typing = names.join(',');
  }
  scope.add(() => typists.forEach((t) => window.clearTimeout(t)));

  // ---- typing (me): at most one "typing" every 2 s, and "stopped" after 3 s idle.
  let typingSent = false;
  let lastTypingEmit = 0;
  let idleTimer: number | undefined;
  function stopTyping(): void {
    window.clearTimeout(idleTimer);
    if (typingSent) ctx.rt.emit('typing', { thread_id: threadId, typing: false });
    typingSent = false;
  }
  function noteTyping(): void {
    if (!input.value.trim()) return stopTyping();
    const now = Date.now();
    if (!typingSent || now - lastTypingEmit > TYPING_EMIT_EVERY_MS) {
      ctx.rt.emit('typing', { thread_id: threadId, typing: true });
      typingSent = true;
      lastTypingEmit = now;
    }
    window.clearTimeout(idleTimer);
    idleTimer = window.setTimeout(stopTyping, TYPING_IDLE_MS);
  }
  scope.add(stopTyping);

  // ---- sending
  let pending: { body: string; clientId: string } | null = null;
  let sending = false;
  async function send(): Promise<void> {
    if (sending) return;
    const body = input.value;
    error.textContent = '';
    if (!body.trim()) {
      error.textContent = 'Write something first.';
      return;
    }
    // Retrying the same text reuses its client_id, so the server never stores it twice.
    if (!pending || pending.body !== body) pending = { body, clientId: newClientId() };
    sending = true;
    sendBtn.disabled = true;
    stopTyping();
    try {
      const ack = await ctx.rt.request('message:send', { thread_id: threadId, body, client_id: pending.clientId });
      if (!scope.alive) return;
      if (ack.status) {
        liveAt.set(ack.message.url, performance.now());
        pending = null;
        if (input.value === body) input.value = '';
        autosize();
        put(ack.message);
        render();
        toBottom();
      } else {
        error.textContent = ack.message;
      }
    } finally {
      sending = false;
      sendBtn.disabled = false;
    }
  }
  function autosize(): void {
    input.style.height = 'auto';
    input.style.height = `${Math.min(input.scrollHeight + 2, 200)}px`;
  }
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    void send();
    input.focus();
  });
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && !e.altKey && !e.ctrlKey && !e.metaKey) {
      e.preventDefault();
      void send();
    }
  });
  input.addEventListener('input', () => {
    autosize();
    noteTyping();
  });

  // ---- live events
  scope.add(
    ctx.rt.on('message:new', ({ message }) => {
      if (message.thread_id !== threadId) return;
      liveAt.set(message.url, performance.now());
      const stick = atBottom() || message.sender === me;
      put(message);
      render();
      if (stick) toBottom();
      else jump.hidden = false;
      if (message.sender !== me) {
        setTypist(message.sender, false);
        markRead();
      }
    }),
  );
  scope.add(
    ctx.rt.on('message:deleted', ({ url, thread_id }) => {
      if (thread_id !== threadId) return;
      drop(url);
      render();
    }),
  );
  scope.add(
    ctx.rt.on('thread:deleted', ({ thread_id }) => {
      if (thread_id === threadId) ctx.navigate('#/inbox');
    }),
  );
  scope.add(
    ctx.rt.on('thread:read', ({ thread_id }) => {
      if (thread_id === threadId) clearNewMarks();
    }),
  );
  scope.add(
    ctx.rt.on('typing', ({ thread_id, username, typing }) => {
      if (thread_id === threadId && username !== me) setTypist(username, typing);
    }),
  );
  // Rooms do not survive a reconnect: join again every time.
  scope.add(ctx.rt.onConnect(() => void ctx.rt.request('thread:join', { thread_id: threadId })));
  scope.add(ctx.rt.onResync(() => void catchUp()));
  scope.add(() => void ctx.rt.request('thread:leave', { thread_id: threadId }, 2_000));

  void load();
  queueMicrotask(() => input.focus());
  return { el, destroy: () => scope.dispose() };
}
