// A conversation's history as a messenger shows it: a separator per day, consecutive messages
// of one sender grouped under one name, membership changes as one-line notices in place, and
// "Seen" marks under the last message each member read. One's own messages can be edited in
// place or removed for everyone; any message can be reacted to and replied to (a reply quotes
// what it answers).

import type { Change, ChangeNotice, Message, Reaction, Thread } from '../api';
import type { ThreadKind } from '../generated/events';
import { actionMenu, askInline, confirmError, type MenuItem } from '../components';
import { h, reconcile, replaceChildren, setAttrs } from '../dom';
import { clockTime, dayKey, dayLabelSpan, verboseDateTime } from '../time';

/** Messages of one sender closer together than this share one name. */
const GROUP_GAP_MS = 5 * 60_000;
/** The server's default edit window: "Edit" is offered this long after sending (the server decides). */
const EDIT_WINDOW_MS = 24 * 3_600_000;

let editorIds = 0;

/** The reactions the picker offers (any single emoji is allowed; these are the usual ones). */
export const COMMON_REACTIONS = ['👍', '❤️', '😂', '😮', '😢', '🎉'];

/** What a message removed for everyone shows in place of its body. */
export const REMOVED_TEXT = 'This message was removed';

/** What the server quotes of a body in a reply: its first 100 characters (code points). */
export const EXCERPT_CHARS = 100;
export const excerptOf = (body: string | null): string | null => (body === null ? null : Array.from(body).slice(0, EXCERPT_CHARS).join(''));

/** "alice", "alice and bob", "alice, bob and carol". */
function listNames(names: string[]): string {
  return names.length <= 1 ? (names[0] ?? '') : `${names.slice(0, -1).join(', ')} and ${names[names.length - 1]}`;
}

type Entry =
  | { key: string; at: number; message: Message }
  | { key: string; at: number; notice: ChangeNotice };

/** The history's key of a change notice: the same change from two pages is one entry. */
export const noticeKey = (n: ChangeNotice): string =>
  ['change', n.at, n.change.kind, n.change.by, n.change.username ?? '', n.change.subject ?? ''].join('|');

/** One line describing a change, from `me`'s point of view ("You added dave", "bob left"). */
export function describeChange(c: Change, me: string): string {
  const who = (name: string | undefined, start: boolean) => (name === me ? (start ? 'You' : 'you') : (name ?? 'someone'));
  switch (c.kind) {
    case 'added':
      return `${who(c.by, true)} added ${who(c.username, false)}`;
    case 'removed':
      return `${who(c.by, true)} removed ${who(c.username, false)}`;
    case 'left':
      return `${who(c.username ?? c.by, true)} left`;
    case 'renamed':
      return `${who(c.by, true)} renamed the conversation to “${c.subject ?? ''}”`;
    default:
      return `${who(c.by, true)} changed the conversation`;
  }
}

/** Whether `m` is a message someone else sent to `me` that `me` has not read yet. */
export function isNewFor(m: Message, me: string): boolean {
  // Direct: `read` is the recipient's. Group (no recipient): `read` is the viewer's own.
  return !m.read && (m.recipient === me || (m.recipient === null && m.sender !== me));
}

/**
 * `incoming`, unless `held` has a later edit or was removed: a copy fetched before an edit or a
 * removal arrived live must not bring the old text back.
 */
export function withLatestEdit(held: Message, incoming: Message): Message {
  if (held.removed && !incoming.removed) return asRemoved(incoming);
  const editedAt = (m: Message) => (m.edited_at ? Date.parse(m.edited_at) || 0 : 0);
  return editedAt(held) > editedAt(incoming) ? { ...incoming, body: held.body, edited_at: held.edited_at } : incoming;
}

/** A message as it is once its sender removed it for everyone: no body, no reactions. */
export function asRemoved(m: Message): Message {
  return { ...m, body: null, removed: true, reactions: [] };
}

/** What a list shows of a message: its text, or that it was removed. */
export function previewOf(m: Message): string {
  return m.removed || m.body === null ? REMOVED_TEXT : m.body;
}

export interface Timeline {
  list: HTMLOListElement;
  /** Messages, oldest first. */
  messages(): Message[];
  has(key: string): boolean;
  /** Every entry's key and time (messages: url; notices: noticeKey or a live key). */
  keys(): { key: string; at: number }[];
  putMessage(m: Message): void;
  /** An edit (an ack, a `message:edited` event): shown if the message is, ignored otherwise. */
  applyEdit(m: Message): void;
  /** A message's reactions changed (an ack, a `message:reactions` event). */
  applyReactions(url: string, reactions: Reaction[]): void;
  /** Its sender removed a message for everyone (also changes what replies quote of it). */
  applyRemoved(url: string): void;
  /** The row of message `url`, if shown. */
  row(url: string): HTMLElement | undefined;
  /** One who left a group can no longer react or reply. */
  setReadOnly(readOnly: boolean): void;
  /** A notice from the history, or (`live`) one just heard of, placed after everything shown. */
  putNotice(n: ChangeNotice, live?: boolean): string;
  drop(key: string): void;
  /** Who is in the thread and who read how far (a thread view from the server). */
  setThread(t: Thread): void;
  /** A member read further (a `receipt` event). */
  receipt(username: string, upTo: string): void;
  render(): void;
  readonly size: number;
}

/** What a row's actions do; each returns the server's refusal to show, or null. */
export interface MessageActions {
  deleteMessage(m: Message): Promise<string | null>;
  editMessage(m: Message, body: string): Promise<string | null>;
  removeForEveryone(m: Message): Promise<string | null>;
  /** Adds (`add`) or takes back my reaction `emoji`. */
  react(m: Message, emoji: string, add: boolean): Promise<string | null>;
  /** Quote `m` above the reply box. */
  reply(m: Message): void;
  /** A reply's quote was clicked: show the message it answers. */
  openQuote(url: string): void;
}

/** A message's row: built once, then updated in place, so an open menu or editor survives. */
interface MessageRow {
  el: HTMLElement;
  show(m: Message): void;
}

export function timeline(opts: { me: string } & MessageActions): Timeline {
  const me = opts.me;
  const entries = new Map<string, Entry>();
  const rows = new Map<string, HTMLElement>();
  const messageRows = new Map<string, MessageRow>();
  const days = new Map<string, HTMLElement>();
  const marks = new Map<string, HTMLElement>();
  let kind: ThreadKind = 'direct';
  let others: string[] = [];
  /** Each other member's last read message url. */
  let readBy = new Map<string, string>();
  let liveSeq = 0;
  let readOnly = false;

  const list = h('ol', { class: 'message-list', testid: 'message-list', attrs: { 'aria-label': 'Messages' } });

  const ordered = () => [...entries.values()].sort((a, b) => a.at - b.at || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const timeOf = (e: Entry) => ('message' in e ? e.message.timestamp : e.notice.at);

  function heldMessage(url: string): Message | null {
    const e = entries.get(url);
    return e && 'message' in e ? e.message : null;
  }

  function putMessage(m: Message): void {
    const held = heldMessage(m.url);
    if (held) m = withLatestEdit(held, m);
    entries.set(m.url, { key: m.url, at: Date.parse(m.timestamp) || 0, message: m });
    const row = messageRows.get(m.url);
    if (row) return row.show(m);
    const made = messageRow(m);
    messageRows.set(m.url, made);
    rows.set(m.url, made.el);
  }

  function putNotice(n: ChangeNotice, live = false): string {
    let key: string;
    let at = Date.parse(n.at) || 0;
    if (live) {
      // The event carries no time: it happened after everything shown so far.
      key = `live|${++liveSeq}`;
      at = Math.max(Date.now(), ...[...entries.values()].map((e) => e.at + 1));
      n = { ...n, at: new Date(at).toISOString() };
    } else {
      key = noticeKey(n);
      if (entries.has(key)) return key;
    }
    entries.set(key, { key, at, notice: n });
    rows.set(key, noticeRow(n));
    return key;
  }

  /** The replies to `url` quote it as it is now (the server updates its own copies likewise). */
  function requote(url: string, excerpt: string | null): void {
    for (const e of entries.values()) {
      if (!('message' in e)) continue;
      const r = e.message.reply_to;
      if (r?.url === url && r.excerpt !== excerpt) putMessage({ ...e.message, reply_to: { ...r, excerpt } });
    }
  }

  function drop(key: string): void {
    entries.delete(key);
    rows.get(key)?.remove();
    rows.delete(key);
    messageRows.delete(key);
  }

  function messageRow(first: Message): MessageRow {
    const url = first.url;
    const mine = first.sender === me;
    /** The message as it is now (edits, reactions and read marks update it after the row is built). */
    const current = () => heldMessage(url) ?? first;
    const quote = h('button', {
      class: 'msg-quote',
      testid: 'message-quote',
      attrs: { type: 'button', hidden: true, title: 'Show the original message' },
      on: {
        click: () => {
          const r = current().reply_to;
          if (r) opts.openQuote(r.url);
        },
      },
    });
    const body = h('div', { class: 'msg-body', testid: 'message-body' });
    const removed = h('div', { class: 'msg-removed', testid: 'message-removed', attrs: { hidden: true } }, REMOVED_TEXT);
    const edited = h('time', { class: 'msg-edited', testid: 'edited-label', attrs: { hidden: true } }, 'edited');
    const time = h(
      'time',
      { class: 'msg-time', testid: 'message-time', attrs: { datetime: first.timestamp, title: verboseDateTime(first.timestamp) } },
      clockTime(first.timestamp),
    );
    const bubble = h('div', { class: 'bubble' }, quote, body, removed, edited, time);
    const actions = h('span', { class: 'msg-actions' });
    const chips = h('span', { class: 'reaction-chips' });
    const reactionError = h('span', { class: 'error small', testid: 'reaction-error', attrs: { role: 'alert' } });
    const reactions = h('div', { class: 'msg-reactions', testid: 'message-reactions', attrs: { hidden: true } }, chips, reactionError);
    let editor: HTMLElement | null = null;
    /** What the actions were built for: rebuilt when it changes (removed, read-only). */
    let actionsFor = '';
    let reactionsShown = '';
    let quoteShown = '';

    const actionsKey = () => `${current().removed}|${readOnly}`;

    const showMenu = (focus = false, error = '') => {
      const m = current();
      actionsFor = actionsKey();
      // A message removed for everyone keeps no actions at all.
      if (m.removed) return void replaceChildren(actions);
      const items: MenuItem[] = [];
      if (!readOnly) items.push({ label: 'Reply', testid: 'message-reply', run: () => opts.reply(current()) });
      // Offered while the default window is open; a shorter one on the server refuses, and says so.
      if (mine && !readOnly && Date.now() - (Date.parse(first.timestamp) || 0) < EDIT_WINDOW_MS) {
        items.push({ label: 'Edit', testid: 'message-edit', run: startEdit });
        items.push({
          label: 'Remove for everyone',
          testid: 'message-remove-everyone',
          danger: true,
          run: () => askInline(actions, { question: 'Remove for everyone?', action: () => opts.removeForEveryone(current()), restore: showMenu }),
        });
      }
      items.push({
        label: 'Delete for me',
        testid: 'message-delete',
        danger: true,
        run: () => askInline(actions, { question: 'Delete message?', action: () => opts.deleteMessage(current()), restore: showMenu }),
      });
      const who = mine ? 'you' : first.sender;
      const picker = readOnly
        ? null
        : actionMenu({
            label: `React to the message from ${who}`,
            testid: 'reaction-picker',
            icon: '☺',
            menuClass: 'emoji-menu',
            items: COMMON_REACTIONS.map((emoji) => ({
              label: emoji,
              testid: 'reaction-option',
              ariaLabel: `React with ${emoji}`,
              attrs: { 'data-emoji': emoji },
              // Picking one already given takes it back, like its chip.
              run: () => void react(emoji, !current().reactions.some((r) => r.emoji === emoji && r.users.includes(me))),
            })),
          });
      const menu = actionMenu({ label: `Actions for the message from ${who}`, testid: 'message-menu', items });
      replaceChildren(actions, picker, menu, confirmError(error));
      if (focus) menu.querySelector('button')?.focus();
    };

    let reacting = false;
    async function react(emoji: string, add: boolean): Promise<void> {
      if (reacting) return;
      reacting = true;
      reactionError.textContent = '';
      const refusal = await opts.react(current(), emoji, add);
      reacting = false;
      reactionError.textContent = refusal ?? '';
      showReactions(current());
    }

    /** One chip per emoji: its count, who (on hover), and mine pressed; a click toggles mine. */
    function showReactions(m: Message): void {
      const list = m.removed ? [] : m.reactions;
      reactions.hidden = list.length === 0 && !reactionError.textContent;
      const key = JSON.stringify([list, readOnly]);
      if (key === reactionsShown) return;
      reactionsShown = key;
      const focused = chips.contains(document.activeElement) ? (document.activeElement as HTMLElement).dataset.emoji : undefined;
      replaceChildren(
        chips,
        ...list.map((r) => {
          const minePressed = r.users.includes(me);
          const names = r.users.map((u) => (u === me ? 'You' : u));
          return h(
            'button',
            {
              class: `reaction${minePressed ? ' mine' : ''}`,
              testid: 'reaction-chip',
              attrs: {
                type: 'button',
                'data-emoji': r.emoji,
                'data-count': r.users.length,
                'data-users': r.users.join(','),
                'data-mine': String(minePressed),
                'aria-pressed': String(minePressed),
                'aria-label': `${r.emoji} ${r.users.length}: ${names.join(', ')}`,
                title: `${listNames(names)} reacted with ${r.emoji}`,
                disabled: readOnly,
              },
              on: { click: () => void react(r.emoji, !minePressed) },
            },
            h('span', { class: 'reaction-emoji', attrs: { 'aria-hidden': 'true' } }, r.emoji),
            h('span', { class: 'reaction-count', testid: 'reaction-count', attrs: { 'aria-hidden': 'true' } }, String(r.users.length)),
          );
        }),
      );
      if (focused) chips.querySelector<HTMLElement>(`[data-emoji="${CSS.escape(focused)}"]`)?.focus({ preventScroll: true });
    }

    /** The quoted message of a reply: who wrote it and its first words, or that it was removed. */
    function showQuote(m: Message): void {
      const r = m.removed ? null : m.reply_to;
      quote.hidden = !r;
      const key = JSON.stringify(r);
      if (!r || key === quoteShown) return;
      quoteShown = key;
      quote.dataset.url = r.url;
      quote.dataset.sender = r.sender;
      replaceChildren(
        quote,
        h('span', { class: 'quote-sender', testid: 'quote-sender' }, r.sender === me ? 'You' : r.sender),
        h(
          'span',
          { class: `quote-excerpt${r.excerpt === null ? ' removed' : ''}`, testid: 'quote-excerpt', attrs: { 'data-removed': String(r.excerpt === null) } },
          r.excerpt ?? 'removed message',
        ),
      );
    }

    /** The body turns into a text box: Enter saves, Shift+Enter is a new line, Escape cancels. */
    function startEdit(): void {
      if (editor) return void editor.querySelector('textarea')?.focus();
      const id = `edit-${++editorIds}`;
      const input = h('textarea', {
        class: 'edit-input',
        testid: 'edit-input',
        attrs: { id, rows: 1, 'aria-label': 'Edit message', 'aria-describedby': `${id}-hint ${id}-error` },
      });
      input.value = current().body ?? '';
      const error = h('div', { class: 'field-error', testid: 'edit-error', attrs: { id: `${id}-error`, role: 'alert' } });
      const save = h('button', { class: 'primary small-button', testid: 'edit-save', attrs: { type: 'submit' } }, 'Save');
      const cancel = h('button', { class: 'link', testid: 'edit-cancel', attrs: { type: 'button' }, on: { click: () => stopEdit(true) } }, 'Cancel');
      const form = h(
        'form',
        { class: 'edit-box', testid: 'edit-box' },
        input,
        error,
        h(
          'div',
          { class: 'edit-row' },
          h('span', { class: 'hint', attrs: { id: `${id}-hint` } }, 'Enter saves, Shift+Enter adds a new line, Escape cancels.'),
          cancel,
          save,
        ),
      );
      let saving = false;
      const submit = async () => {
        if (saving) return;
        const text = input.value;
        // Nothing changed: nothing to tell anyone (and no "edited" label for it).
        if (text.trim() === (current().body ?? '').trim()) return stopEdit(true);
        saving = true;
        save.disabled = true;
        error.textContent = '';
        input.removeAttribute('aria-invalid');
        const refusal = await opts.editMessage(current(), text);
        saving = false;
        save.disabled = false;
        if (editor !== form) return; // cancelled meanwhile
        if (refusal === null) return stopEdit(true);
        // Refused: say why beside the text, which stays as typed.
        error.textContent = refusal;
        input.setAttribute('aria-invalid', 'true');
        input.focus();
      };
      form.addEventListener('submit', (e) => {
        e.preventDefault();
        void submit();
      });
      form.addEventListener('keydown', (e) => {
        if (e.key === 'Escape') {
          e.preventDefault();
          stopEdit(true);
        }
      });
      input.addEventListener('keydown', (e) => {
        if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && !e.altKey && !e.ctrlKey && !e.metaKey) {
          e.preventDefault();
          void submit();
        }
      });
      const autosize = () => {
        input.style.height = 'auto';
        input.style.height = `${Math.min(input.scrollHeight + 2, 240)}px`;
      };
      input.addEventListener('input', autosize);

      editor = form;
      el.classList.add('editing');
      body.hidden = true;
      actions.hidden = true;
      bubble.insertBefore(form, body);
      autosize();
      input.focus();
      input.setSelectionRange(input.value.length, input.value.length);
      form.scrollIntoView({ block: 'nearest' });
    }

    function stopEdit(focus: boolean): void {
      editor?.remove();
      editor = null;
      el.classList.remove('editing');
      body.hidden = current().removed;
      actions.hidden = false;
      if (focus) actions.querySelector<HTMLElement>('[data-testid="message-menu"]')?.focus();
    }

    function show(m: Message): void {
      // Removed for everyone while being edited: there is nothing left to edit.
      if (m.removed && editor) stopEdit(false);
      const text = m.body ?? '';
      if (body.textContent !== text) body.textContent = text;
      body.hidden = m.removed || editor !== null;
      removed.hidden = !m.removed;
      el.dataset.removed = String(m.removed);
      el.classList.toggle('removed', m.removed);
      edited.hidden = !m.edited_at || m.removed;
      if (m.edited_at) setAttrs(edited, { datetime: m.edited_at, title: `Edited ${verboseDateTime(m.edited_at)}` });
      el.classList.toggle('new', isNewFor(m, me));
      showQuote(m);
      showReactions(m);
      if (actionsKey() !== actionsFor) showMenu();
    }

    const el = h(
      'li',
      {
        class: `msg${mine ? ' mine' : ''}`,
        testid: 'message-row',
        attrs: { 'data-url': url, 'data-sender': first.sender },
      },
      h('span', { class: 'sender', testid: 'message-sender' }, mine ? 'You' : first.sender),
      h('div', { class: 'msg-line' }, bubble, actions),
      reactions,
    );
    show(first);
    return { el, show: (m) => show(m) };
  }

  function noticeRow(n: ChangeNotice): HTMLElement {
    return h(
      'li',
      { class: 'notice', testid: 'change-notice', attrs: { 'data-kind': n.change.kind, title: verboseDateTime(n.at) } },
      describeChange(n.change, me),
    );
  }

  function daySeparator(day: string): HTMLElement {
    let el = days.get(day);
    if (!el) {
      el = h('li', { class: 'day', testid: 'day-separator', attrs: { 'data-day-key': day } }, dayLabelSpan(day, 'day-label'));
      days.set(day, el);
    }
    return el;
  }

  /** The "Seen" line under message `url`, rebuilt only when its readers change. */
  function seenMark(url: string, readers: string[]): HTMLElement {
    const users = readers.join(',');
    const old = marks.get(url);
    if (old && old.dataset.users === users) return old;
    const everyone = others.length > 1 && others.every((o) => readers.includes(o));
    const text = kind === 'direct' ? 'Seen' : everyone ? 'Seen by everyone' : `Seen by ${readers.join(', ')}`;
    const el = h('li', { class: 'seen', testid: 'seen-by', attrs: { 'data-url': url, 'data-users': users, title: `Seen by ${readers.join(', ')}` } }, text);
    marks.set(url, el);
    return el;
  }

  /**
   * Where each member's mark goes: under the newest message at or before the one they read
   * that they did not send themselves (their own replies say nothing about what they saw).
   */
  function seenPlaces(items: Entry[]): Map<string, string[]> {
    const index = new Map(items.map((e, i) => [e.key, i]));
    const places = new Map<string, string[]>();
    for (const [username, upTo] of readBy) {
      if (username === me) continue;
      for (let i = index.get(upTo) ?? -1; i >= 0; i--) {
        const e = items[i];
        if ('message' in e && e.message.sender !== username) {
          places.set(e.key, [...(places.get(e.key) ?? []), username].sort());
          break;
        }
      }
    }
    return places;
  }

  function render(): void {
    const items = ordered();
    const places = seenPlaces(items);
    const keys: string[] = [];
    const els = new Map<string, HTMLElement>();
    let day = '';
    let prev: Message | null = null; // the message just above, while a group can go on
    for (const e of items) {
      const d = dayKey(timeOf(e));
      if (d !== day) {
        day = d;
        prev = null;
        keys.push(`day|${d}`);
        els.set(`day|${d}`, daySeparator(d));
      }
      keys.push(e.key);
      els.set(e.key, rows.get(e.key)!);
      if (!('message' in e)) {
        prev = null;
        continue;
      }
      const m = e.message;
      const cont = prev !== null && prev.sender === m.sender && e.at - (Date.parse(prev.timestamp) || 0) < GROUP_GAP_MS;
      rows.get(e.key)!.classList.toggle('cont', cont);
      prev = m;
      const readers = places.get(e.key);
      if (readers) {
        keys.push(`seen|${e.key}`);
        els.set(`seen|${e.key}`, seenMark(e.key, readers));
        prev = null; // a mark ends the group: what follows starts under a name again
      }
    }
    for (const url of [...marks.keys()]) if (!places.has(url)) marks.delete(url);
    for (const d of [...days.keys()]) if (!els.has(`day|${d}`)) days.delete(d);
    reconcile(list, keys, (k) => els.get(k)!);
  }

  return {
    list,
    messages: () => ordered().flatMap((e) => ('message' in e ? [e.message] : [])),
    has: (key) => entries.has(key),
    keys: () => [...entries.values()].map((e) => ({ key: e.key, at: e.at })),
    putMessage,
    applyEdit(m) {
      if (heldMessage(m.url)) putMessage(m);
      requote(m.url, excerptOf(m.removed ? null : m.body));
    },
    applyReactions(url, reactions) {
      const held = heldMessage(url);
      if (held && !held.removed) putMessage({ ...held, reactions });
    },
    applyRemoved(url) {
      const held = heldMessage(url);
      if (held && !held.removed) putMessage(asRemoved(held));
      requote(url, null);
    },
    row: (url) => messageRows.get(url)?.el,
    setReadOnly(ro) {
      if (ro === readOnly) return;
      readOnly = ro;
      for (const [url, row] of messageRows) {
        const m = heldMessage(url);
        if (m) row.show(m);
      }
    },
    putNotice,
    drop,
    setThread(t) {
      kind = t.kind;
      others = t.participants.filter((p) => p !== me);
      readBy = new Map(t.read_by.map((r) => [r.username, r.up_to]));
    },
    receipt(username, upTo) {
      readBy.set(username, upTo);
    },
    render,
    get size() {
      return entries.size;
    },
  };
}
