// One conversation: its history (older entries load when scrolling up), a group's members,
// the reply box (quoting a message when answering one), typing, read marks and receipts,
// reactions, and editing or removing one's own messages; its menu mutes it or blocks the other
// person. Opened at a message (`?m=<url>`, from a search), it loads back to that message and
// shows it highlighted. Showing it closes its notifications.

import { ApiError, api, type ChangeNotice, type HistoryItem, type Message, type Thread } from '../api';
import { actionMenu, askInline, confirmButton, confirmError, type MenuItem } from '../components';
import { Scope, h, replaceChildren } from '../dom';
import { newClientId } from '../ids';
import { MUTE_CHOICES, isMuted, muteEndsIn, muteMark, setMute } from '../mute';
import { closeThreadNotifications } from '../push';
import type { View } from '../router';
import { others, peopleList, type Ctx } from '../state';
import { setPageTitle } from '../title';
import { membersPanel } from './members';
import { excerptOf, isNewFor, noticeKey, timeline } from './timeline';

const PAGE = 30;
const TYPING_EMIT_EVERY_MS = 2_000;
const TYPING_IDLE_MS = 3_000;
/** Typing events are volatile: forget a typist we have not heard from in this long. */
const TYPING_STALE_MS = 6_000;
/** How long a message jumped to (a quote, a search result) stays highlighted. */
const HIGHLIGHT_MS = 3_000;
/** The longest delay setTimeout keeps (about 24.8 days). */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** How far back a jump to a message not shown yet looks: pages of PAGE. */
const JUMP_MAX_PAGES = 40;

const isNotice = (item: HistoryItem): item is ChangeNotice => 'kind' in item && item.kind === 'change';
const keyOf = (item: HistoryItem) => (isNotice(item) ? noticeKey(item) : item.url);
const timeOf = (item: HistoryItem) => Date.parse(isNotice(item) ? item.at : item.timestamp) || 0;

export function threadView(ctx: Ctx, threadId: string, focusUrl: string | null = null): View {
  const scope = new Scope();
  const me = ctx.me.username;
  let thread: Thread | null = null;
  let hasMore = false;
  let readPending = false;
  let readOnly = false;
  /** When each entry arrived live: a page fetched before that cannot know it. */
  const liveAt = new Map<string, number>();

  const tl = timeline({
    me,
    deleteMessage: async (m) => {
      const ack = await ctx.rt.request('message:delete', { url: m.url });
      if (!ack.status) return ack.message;
      tl.drop(m.url);
      render();
      if (replyingTo?.url === m.url) quoteInComposer(null);
      return null;
    },
    editMessage: async (m, body) => {
      const ack = await ctx.rt.request('message:edit', { url: m.url, body });
      if (!ack.status) return ack.message;
      if (scope.alive) {
        keepPlace(() => tl.applyEdit(ack.message));
        if (replyingTo?.url === m.url) quoteInComposer(ack.message);
      }
      return null;
    },
    removeForEveryone: async (m) => {
      try {
        await api.removeForEveryone(m.url);
      } catch (err) {
        return err instanceof ApiError ? err.message : 'Could not remove the message.';
      }
      // Every tab (this one too) hears message:removed; no need to wait for it here.
      if (scope.alive) removed(m.url);
      return null;
    },
    react: async (m, emoji, add) => {
      const ack = await ctx.rt.request(add ? 'reaction:add' : 'reaction:remove', { url: m.url, emoji });
      if (!ack.status) return ack.message;
      if (scope.alive) keepPlace(() => tl.applyReactions(m.url, ack.message.reactions));
      return null;
    },
    reply: (m) => {
      quoteInComposer(m);
      input.focus();
    },
    openQuote: (url) => void jumpTo(url),
  });
  const members = membersPanel(ctx, threadId);
  members.el.hidden = true;

  // ---- elements
  const title = h('h1', { class: 'thread-title', testid: 'thread-title' }, 'Loading…');
  const people = h('p', { class: 'muted people', testid: 'thread-people' });
  const muteSlot = h('span', { class: 'mute-slot', testid: 'thread-mute-slot' });
  const menuSlot = h('span', { class: 'thread-menu-slot' });
  // The block question and any refusal (of a mute, a block) show here, beside the menu.
  const actionBox = h('span', { class: 'confirm thread-action-box', testid: 'thread-action-box' });
  const headActions = h(
    'div',
    { class: 'head-actions', attrs: { hidden: true } },
    actionBox,
    menuSlot,
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
  const older = h('button', { class: 'link more', testid: 'load-older', attrs: { type: 'button', hidden: true }, on: { click: () => void loadOlder() } }, 'Load older messages');
  const beginning = h('p', { class: 'muted center small', testid: 'thread-beginning', attrs: { hidden: true } }, 'Beginning of the conversation');
  const emptyMsg = h('p', { class: 'muted center', testid: 'thread-empty', attrs: { hidden: true } }, 'No messages here.');
  const scroller = h(
    'div',
    { class: 'scroller', testid: 'message-scroll', attrs: { tabindex: 0, 'aria-label': 'Conversation', role: 'region' } },
    h('div', { class: 'stack' }, older, beginning, tl.list, emptyMsg),
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
    attrs: { id: 'reply', name: 'body', rows: 2, placeholder: 'Write a reply…', 'aria-describedby': 'reply-quote reply-hint reply-error' },
  });
  const sendBtn = h('button', { class: 'primary', testid: 'reply-send', attrs: { type: 'submit' } }, 'Send');
  const error = h('div', { class: 'field-error', testid: 'reply-error', attrs: { id: 'reply-error', role: 'alert' } });
  // The message a reply answers, quoted above the box until it is sent or cancelled.
  const quoteText = h('span', { class: 'composer-quote-text' });
  const quoteCancel = h(
    'button',
    {
      class: 'link',
      testid: 'reply-quote-cancel',
      attrs: { type: 'button', 'aria-label': 'Cancel the reply to this message', title: 'Cancel' },
      on: { click: () => (quoteInComposer(null), input.focus()) },
    },
    '✕',
  );
  const composerQuote = h(
    'div',
    { class: 'composer-quote', testid: 'reply-quote', attrs: { id: 'reply-quote', hidden: true } },
    quoteText,
    quoteCancel,
  );
  const readOnlyNote = h(
    'p',
    { class: 'readonly-note', testid: 'thread-readonly', attrs: { hidden: true, role: 'status' } },
    'You are no longer in this conversation.',
  );
  const form = h(
    'form',
    { class: 'reply', testid: 'reply-form' },
    readOnlyNote,
    composerQuote,
    h('label', { class: 'visually-hidden', attrs: { for: 'reply' } }, 'Reply'),
    h('div', { class: 'reply-row' }, input, sendBtn),
    error,
    h('div', { class: 'hint', attrs: { id: 'reply-hint' } }, 'Enter sends, Shift+Enter adds a new line.'),
  );
  const status = h('p', { class: 'muted center', testid: 'thread-status', attrs: { 'aria-live': 'polite' } });

  const el = h(
    'section',
    { class: 'thread-view', testid: 'thread-view', attrs: { 'data-thread-id': threadId } },
    h(
      'div',
      { class: 'thread-head' },
      h('a', { class: 'back', testid: 'back-to-inbox', attrs: { href: '#/inbox', 'aria-label': 'Back to the inbox' } }, '←', h('span', { class: 'back-text' }, ' Inbox')),
      h('div', { class: 'thread-head-main' }, h('div', { class: 'thread-title-row' }, title, muteSlot), people),
      headActions,
    ),
    members.el,
    status,
    h('div', { class: 'scroll-wrap' }, scroller, jump),
    typingEl,
    form,
  );

  // ---- rendering
  const atBottom = () => scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 48;
  const toBottom = () => {
    scroller.scrollTop = scroller.scrollHeight;
    jump.hidden = true;
  };
  /**
   * Runs `change` (rows growing or shrinking in place) without moving what the reader is
   * looking at: the bottom stays the bottom, else the first row in view stays where it was.
   */
  function keepPlace(change: () => void): void {
    if (atBottom()) {
      change();
      return toBottom();
    }
    const top = scroller.getBoundingClientRect().top;
    const anchor = [...tl.list.children].find((row) => row.getBoundingClientRect().bottom > top);
    const before = anchor?.getBoundingClientRect().top ?? 0;
    change();
    if (anchor?.isConnected) scroller.scrollTop += anchor.getBoundingClientRect().top - before;
  }

  function render(): void {
    tl.render();
    emptyMsg.hidden = tl.size > 0 || hasMore;
    older.hidden = !hasMore;
    beginning.hidden = hasMore || tl.size === 0;
  }

  function put(item: HistoryItem): void {
    if (isNotice(item)) tl.putNotice(item);
    else if (item.thread_id === threadId) tl.putMessage(item);
  }

  /** What the server says the thread is now: heading, members, read marks, whether I may write. */
  function applyThread(t: Thread): void {
    thread = t;
    title.textContent = t.subject;
    el.dataset.kind = t.kind;
    headActions.hidden = false;
    replaceChildren(people, 'with ', ...peopleList(ctx.presence, others(t.participants, me)));
    members.update(t);
    tl.setThread(t);
    setReadOnly(!t.participants.includes(me));
    setPageTitle(t.subject);
    showMute();
  }

  // ---- muting and blocking (the thread menu)
  let muteTimer: number | undefined;
  /** The bell-slash beside the title while muted; redrawn when a timed mute ends. */
  function showMute(): void {
    if (!thread) return;
    window.clearTimeout(muteTimer);
    const mark = muteMark(thread);
    replaceChildren(muteSlot, mark);
    el.dataset.muted = String(!!mark);
    const ends = muteEndsIn(thread);
    if (ends !== null && ends < MAX_TIMER_MS) muteTimer = window.setTimeout(showMute, ends + 50);
    renderMenu();
  }
  scope.add(() => window.clearTimeout(muteTimer));

  let menuKey = '';
  /** The menu's items follow the thread's state: made again only when that changes. */
  function renderMenu(): void {
    if (!thread) return;
    const t = thread;
    const muted = isMuted(t);
    const other = t.kind === 'direct' ? others(t.participants, me).find((p) => p !== me) ?? null : null;
    const blocks = ctx.blocks.list.value;
    const blocked = other !== null && blocks !== null ? blocks.includes(other) : null;
    const key = JSON.stringify([muted, t.kind, other, blocked, t.participants.includes(me)]);
    if (key === menuKey) return;
    menuKey = key;

    const items: MenuItem[] = muted
      ? [{ label: 'Unmute', testid: 'thread-unmute', run: () => void mute(false) }]
      : MUTE_CHOICES.map((c) => ({ label: c.label, testid: c.testid, run: () => void mute(true, c.ms) }));
    if (other !== null && blocked === true) {
      items.push({ label: `Unblock ${other}`, testid: 'thread-unblock', attrs: { 'data-username': other }, run: () => void unblock(other) });
    } else if (other !== null && blocked === false) {
      items.push({ label: `Block ${other}…`, testid: 'thread-block', danger: true, attrs: { 'data-username': other }, run: () => askBlock(other) });
    } else if (t.kind === 'group') {
      // One member of many: chosen in the member list, where each has a Block button.
      items.push({ label: 'Block a member…', testid: 'thread-block-member', run: showMembersToBlock });
    }
    replaceChildren(menuSlot, actionMenu({ label: 'Conversation actions', testid: 'thread-menu', items }));
  }
  const menuButton = () => menuSlot.querySelector<HTMLElement>('[data-testid="thread-menu"]');
  const showActionError = (text: string) => replaceChildren(actionBox, confirmError(text));

  let muting = false;
  async function mute(on: boolean, ms: number | null = null): Promise<void> {
    if (muting) return;
    muting = true;
    showActionError('');
    try {
      const t = await setMute(ctx, threadId, on, ms);
      if (scope.alive) applyThread(t);
    } catch (err) {
      if (scope.alive) showActionError(err instanceof Error ? err.message : 'Could not change this.');
    } finally {
      muting = false;
    }
  }

  function askBlock(username: string): void {
    askInline(actionBox, {
      question: `Block ${username}? You will not see their new messages.`,
      action: async () => {
        try {
          await ctx.blocks.block(username);
        } catch (err) {
          return err instanceof ApiError ? err.message : 'Could not block.';
        }
        if (scope.alive) {
          showActionError('');
          menuButton()?.focus();
        }
        return null;
      },
      restore: (focus, err = '') => {
        showActionError(err);
        if (focus) menuButton()?.focus();
      },
    });
  }

  async function unblock(username: string): Promise<void> {
    showActionError('');
    try {
      await ctx.blocks.unblock(username);
    } catch (err) {
      if (scope.alive) showActionError(err instanceof ApiError ? err.message : 'Could not unblock.');
    }
  }

  function showMembersToBlock(): void {
    const panel = members.el as HTMLDetailsElement;
    panel.open = true;
    panel.querySelector<HTMLElement>('summary')?.focus();
  }

  scope.add(
    ctx.blocks.list.subscribe(() => {
      if (!thread) return;
      renderMenu();
      members.update(thread);
    }),
  );
  void ctx.blocks.load().catch(() => {});

  /** One who left or was removed keeps what they had, and can no longer write. */
  function setReadOnly(ro: boolean): void {
    readOnly = ro;
    el.dataset.readonly = String(ro);
    readOnlyNote.hidden = !ro;
    tl.setReadOnly(ro);
    if (ro) quoteInComposer(null);
    input.disabled = ro;
    sendBtn.disabled = ro || sending;
    if (ro) {
      stopTyping();
      typists.forEach((_, name) => setTypist(name, false));
    }
  }

  // ---- loading
  async function load(): Promise<void> {
    status.textContent = 'Loading…';
    try {
      const [{ thread: t }, page] = await Promise.all([api.thread(threadId), api.messages(threadId, null, PAGE)]);
      if (!scope.alive) return;
      applyThread(t);
      for (const item of page.messages) put(item);
      hasMore = page.has_more;
      status.textContent = '';
      render();
      toBottom();
      observeTop();
      markRead();
      void closeThreadNotifications(threadId);
      if (focusUrl) void jumpTo(focusUrl);
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

  /**
   * Merges the newest page into what is shown, dropping what it says no longer exists: after a
   * reconnect that missed events, and after a change of the group (whose notice the history
   * places, with its time, among the messages).
   */
  async function mergeNewest(): Promise<void> {
    const started = performance.now();
    try {
      const page = await api.messages(threadId, null, PAGE);
      if (!scope.alive) return;
      const wasAtBottom = atBottom();
      const fresh = (key: string) => (liveAt.get(key) ?? -1) >= started;
      const inPage = new Set(page.messages.map(keyOf));
      // More than a page arrived while we were away: what we hold no longer joins up with it.
      if (page.has_more && tl.size > 0 && ![...inPage].some((k) => tl.has(k))) {
        for (const e of tl.keys()) if (!fresh(e.key)) tl.drop(e.key);
        hasMore = true;
      }
      const oldest = page.messages.length ? timeOf(page.messages[0]) : Infinity;
      for (const e of tl.keys()) {
        if (!fresh(e.key) && !inPage.has(e.key) && (e.at >= oldest || !page.has_more)) tl.drop(e.key);
      }
      for (const item of page.messages) put(item);
      if (!page.has_more) hasMore = false;
      render();
      if (wasAtBottom) toBottom();
      observeTop();
      if (page.messages.some((item) => !isNotice(item) && isNewFor(item, me))) markRead();
    } catch (err) {
      if (scope.alive && err instanceof ApiError && err.status === 404) ctx.navigate('#/inbox');
    }
  }

  // One merge at a time: an older page answering after a newer one would undo it.
  let merging = false;
  let mergeAgain = false;
  async function refreshNewest(): Promise<void> {
    if (merging) return void (mergeAgain = true);
    merging = true;
    try {
      do {
        mergeAgain = false;
        await mergeNewest();
      } while (mergeAgain && scope.alive);
    } finally {
      merging = false;
    }
  }

  /** After a reconnect that did not recover: the thread and its newest page, again. */
  async function catchUp(): Promise<void> {
    if (!thread) return void load();
    try {
      const { thread: t } = await api.thread(threadId);
      if (scope.alive) applyThread(t);
    } catch (err) {
      if (scope.alive && err instanceof ApiError && err.status === 404) return void ctx.navigate('#/inbox');
    }
    await refreshNewest();
  }

  let olderLoad: Promise<boolean> | null = null;
  /** Loads the page before the oldest message shown (one load at a time); false if it could not. */
  function loadOlder(): Promise<boolean> {
    if (olderLoad) return olderLoad;
    // Pages are cut at a message: the oldest one shown.
    const oldest = tl.messages()[0];
    if (!hasMore || !oldest) return Promise.resolve(false);
    olderLoad = fetchOlder(oldest.url).finally(() => {
      olderLoad = null;
      if (scope.alive) observeTop();
    });
    return olderLoad;
  }

  async function fetchOlder(before: string): Promise<boolean> {
    older.textContent = 'Loading…';
    try {
      const page = await api.messages(threadId, before, PAGE);
      if (!scope.alive) return false;
      const fromBottom = scroller.scrollHeight - scroller.scrollTop;
      for (const item of page.messages) put(item);
      hasMore = page.has_more;
      render();
      // Keep what the reader was looking at in place while older messages appear above it.
      scroller.scrollTop = scroller.scrollHeight - fromBottom;
      return true;
    } catch (err) {
      status.textContent = err instanceof ApiError ? err.message : 'Could not load older messages.';
      return false;
    } finally {
      older.textContent = 'Load older messages';
    }
  }

  // ---- jumping to a message (a reply's quote, a search result): loaded if need be, then
  // scrolled to the middle and highlighted for a moment.
  let highlighted: { row: HTMLElement; timer: number } | null = null;
  let noteTimer: number | undefined;
  async function jumpTo(url: string): Promise<boolean> {
    for (let pages = 0; !tl.row(url) && hasMore && pages < JUMP_MAX_PAGES; pages++) {
      if (!(await loadOlder()) || !scope.alive) break;
    }
    if (!scope.alive) return false;
    const row = tl.row(url);
    if (!row) {
      status.textContent = 'That message is not in this conversation any more.';
      window.clearTimeout(noteTimer);
      noteTimer = window.setTimeout(() => {
        if (status.textContent?.startsWith('That message')) status.textContent = '';
      }, 5_000);
      return false;
    }
    const box = scroller.getBoundingClientRect();
    const at = row.getBoundingClientRect();
    scroller.scrollTop += at.top - box.top - Math.max(0, (scroller.clientHeight - at.height) / 2);
    if (atBottom()) jump.hidden = true;
    if (highlighted) {
      window.clearTimeout(highlighted.timer);
      unflash(highlighted.row);
    }
    void row.offsetWidth; // restart the animation when the same row is highlighted again
    row.classList.add('highlight');
    row.dataset.highlighted = 'true';
    row.tabIndex = -1;
    row.focus({ preventScroll: true });
    highlighted = { row, timer: window.setTimeout(() => unflash(row), HIGHLIGHT_MS) };
    return true;
  }
  function unflash(row: HTMLElement): void {
    row.classList.remove('highlight');
    delete row.dataset.highlighted;
  }
  scope.add(() => {
    window.clearTimeout(noteTimer);
    if (highlighted) window.clearTimeout(highlighted.timer);
  });

  const io = new IntersectionObserver((entries) => entries.some((e) => e.isIntersecting) && void loadOlder(), { root: scroller, rootMargin: '200px 0px 0px 0px' });
  const observeTop = () => {
    io.unobserve(older);
    if (hasMore) io.observe(older);
  };
  scope.add(() => io.disconnect());

  // ---- read marks (the server tells the other members, as receipts)
  function markRead(): void {
    if (readOnly) return;
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
    for (const m of tl.messages()) if (isNewFor(m, me)) tl.putMessage({ ...m, read: true });
    render();
  }
  scope.listen(document, 'visibilitychange', () => {
    if (document.visibilityState !== 'visible') return;
    if (readPending) markRead();
    void closeThreadNotifications(threadId);
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
    if (!input.value.trim() || readOnly) return stopTyping();
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

  // ---- the message a reply answers
  let replyingTo: Message | null = null;
  function quoteInComposer(m: Message | null): void {
    keepPlace(() => {
      replyingTo = m;
      composerQuote.hidden = !m;
      if (!m) {
        delete composerQuote.dataset.url;
        return replaceChildren(quoteText);
      }
      composerQuote.dataset.url = m.url;
      const excerpt = excerptOf(m.removed ? null : m.body);
      replaceChildren(
        quoteText,
        h('span', { class: 'muted' }, 'Replying to '),
        h('span', { class: 'quote-sender', testid: 'reply-quote-sender' }, m.sender === me ? 'yourself' : m.sender),
        ' ',
        h('span', { class: `quote-excerpt${excerpt === null ? ' removed' : ''}`, testid: 'reply-quote-excerpt' }, excerpt ?? 'removed message'),
      );
    });
  }
  /** Removed for everyone: shown as such, here and wherever it is quoted. */
  function removed(url: string): void {
    keepPlace(() => tl.applyRemoved(url));
    if (replyingTo?.url === url) quoteInComposer({ ...replyingTo, body: null, removed: true });
  }

  // ---- sending
  let pending: { body: string; replyTo: string | null; clientId: string } | null = null;
  let sending = false;
  async function send(): Promise<void> {
    if (sending || readOnly) return;
    const body = input.value;
    error.textContent = '';
    if (!body.trim()) {
      error.textContent = 'Write something first.';
      return;
    }
    const replyTo = replyingTo?.url ?? null;
    // Retrying the same text reuses its client_id, so the server never stores it twice.
    if (!pending || pending.body !== body || pending.replyTo !== replyTo) pending = { body, replyTo, clientId: newClientId() };
    sending = true;
    sendBtn.disabled = true;
    stopTyping();
    try {
      const ack = await ctx.rt.request('message:send', {
        thread_id: threadId,
        body,
        client_id: pending.clientId,
        ...(replyTo ? { reply_to: replyTo } : {}),
      });
      if (!scope.alive) return;
      if (ack.status) {
        liveAt.set(ack.message.url, performance.now());
        pending = null;
        if (input.value === body) input.value = '';
        if (replyTo && replyingTo?.url === replyTo) quoteInComposer(null);
        autosize();
        tl.putMessage(ack.message);
        render();
        toBottom();
      } else {
        error.textContent = ack.message;
      }
    } finally {
      sending = false;
      sendBtn.disabled = readOnly;
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
    } else if (e.key === 'Escape' && replyingTo) {
      e.preventDefault();
      quoteInComposer(null);
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
      tl.putMessage(message);
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
    ctx.rt.on('thread:updated', ({ thread: t, change }) => {
      if (t.thread_id !== threadId) return;
      const stick = atBottom();
      applyThread(t);
      // Shown at once at the end; the history's own copy (with its time) replaces it next.
      const key = tl.putNotice({ kind: 'change', change, at: '' }, true);
      liveAt.set(key, performance.now());
      render();
      if (stick) toBottom();
      void refreshNewest();
    }),
  );
  scope.add(
    ctx.rt.on('receipt', ({ thread_id, username, up_to }) => {
      if (thread_id !== threadId) return;
      const stick = atBottom();
      tl.receipt(username, up_to);
      render();
      if (stick) toBottom();
    }),
  );
  scope.add(
    ctx.rt.on('message:edited', ({ message }) => {
      if (message.thread_id !== threadId) return;
      keepPlace(() => tl.applyEdit(message));
      if (replyingTo?.url === message.url) quoteInComposer(message);
    }),
  );
  scope.add(
    ctx.rt.on('message:reactions', ({ url, thread_id, reactions }) => {
      if (thread_id === threadId) keepPlace(() => tl.applyReactions(url, reactions));
    }),
  );
  scope.add(
    ctx.rt.on('message:removed', ({ url, thread_id }) => {
      if (thread_id === threadId) removed(url);
    }),
  );
  scope.add(
    ctx.rt.on('message:deleted', ({ url, thread_id }) => {
      if (thread_id !== threadId) return;
      tl.drop(url);
      render();
      if (replyingTo?.url === url) quoteInComposer(null);
    }),
  );
  scope.add(
    ctx.rt.on('thread:deleted', ({ thread_id }) => {
      if (thread_id === threadId) ctx.navigate('#/inbox');
    }),
  );
  // Muted or unmuted here or in another tab of mine.
  scope.add(
    ctx.rt.on('thread:muted', ({ thread_id, muted, muted_until }) => {
      if (thread_id !== threadId || !thread) return;
      thread = { ...thread, muted, muted_until };
      showMute();
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

  void closeThreadNotifications(threadId);
  void load();
  queueMicrotask(() => input.focus());
  return { el, destroy: () => scope.dispose() };
}
