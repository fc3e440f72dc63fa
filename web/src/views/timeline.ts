// A conversation's history as a messenger shows it: a separator per day, consecutive messages
// of one sender grouped under one name, membership changes as one-line notices in place, and
// "Seen" marks under the last message each member read. One's own messages can be edited in
// place.

import type { Change, ChangeNotice, Message, Thread } from '../api';
import type { ThreadKind } from '../generated/events';
import { actionMenu, askInline, confirmError, type MenuItem } from '../components';
import { h, reconcile, replaceChildren, setAttrs } from '../dom';
import { clockTime, dayKey, dayLabelSpan, verboseDateTime } from '../time';

/** Messages of one sender closer together than this share one name. */
const GROUP_GAP_MS = 5 * 60_000;
/** The server's default edit window: "Edit" is offered this long after sending (the server decides). */
const EDIT_WINDOW_MS = 24 * 3_600_000;

let editorIds = 0;

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
 * `incoming`, unless `held` has a later edit: a copy fetched before an edit arrived live must
 * not bring the old text back.
 */
export function withLatestEdit(held: Message, incoming: Message): Message {
  const editedAt = (m: Message) => (m.edited_at ? Date.parse(m.edited_at) || 0 : 0);
  return editedAt(held) > editedAt(incoming) ? { ...incoming, body: held.body, edited_at: held.edited_at } : incoming;
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

  function drop(key: string): void {
    entries.delete(key);
    rows.get(key)?.remove();
    rows.delete(key);
    messageRows.delete(key);
  }

  function messageRow(first: Message): MessageRow {
    const url = first.url;
    const mine = first.sender === me;
    /** The message as it is now (edits and read marks update it after the row is built). */
    const current = () => heldMessage(url) ?? first;
    const body = h('div', { class: 'msg-body', testid: 'message-body' });
    const edited = h('time', { class: 'msg-edited', testid: 'edited-label', attrs: { hidden: true } }, 'edited');
    const time = h(
      'time',
      { class: 'msg-time', testid: 'message-time', attrs: { datetime: first.timestamp, title: verboseDateTime(first.timestamp) } },
      clockTime(first.timestamp),
    );
    const bubble = h('div', { class: 'bubble' }, body, edited, time);
    const actions = h('span', { class: 'msg-actions' });
    let editor: HTMLElement | null = null;

    const showMenu = (focus = false, error = '') => {
      const items: MenuItem[] = [];
      // Offered while the default window is open; a shorter one on the server refuses, and says so.
      if (mine && Date.now() - (Date.parse(first.timestamp) || 0) < EDIT_WINDOW_MS) {
        items.push({ label: 'Edit', testid: 'message-edit', run: startEdit });
      }
      items.push({
        label: 'Delete for me',
        testid: 'message-delete',
        danger: true,
        run: () => askInline(actions, { question: 'Delete message?', action: () => opts.deleteMessage(current()), restore: showMenu }),
      });
      const menu = actionMenu({ label: `Actions for the message from ${mine ? 'you' : first.sender}`, testid: 'message-menu', items });
      replaceChildren(actions, menu, confirmError(error));
      if (focus) menu.querySelector('button')?.focus();
    };

    /** The body turns into a text box: Enter saves, Shift+Enter is a new line, Escape cancels. */
    function startEdit(): void {
      if (editor) return void editor.querySelector('textarea')?.focus();
      const id = `edit-${++editorIds}`;
      const input = h('textarea', {
        class: 'edit-input',
        testid: 'edit-input',
        attrs: { id, rows: 1, 'aria-label': 'Edit message', 'aria-describedby': `${id}-hint ${id}-error` },
      });
      input.value = current().body;
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
        if (text.trim() === current().body.trim()) return stopEdit(true);
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
      body.hidden = false;
      actions.hidden = false;
      if (focus) actions.querySelector<HTMLElement>('[data-testid="message-menu"]')?.focus();
    }

    function show(m: Message): void {
      if (body.textContent !== m.body) body.textContent = m.body;
      edited.hidden = !m.edited_at;
      if (m.edited_at) setAttrs(edited, { datetime: m.edited_at, title: `Edited ${verboseDateTime(m.edited_at)}` });
      el.classList.toggle('new', isNewFor(m, me));
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
    );
    showMenu();
    show(first);
    return { el, show };
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
