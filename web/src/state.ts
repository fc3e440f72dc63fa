// Shared client state: the signed-in user, the socket, unread counts, presence and blocks.

import { api, type Unread, type User } from './api';
import { h } from './dom';
import type { Realtime } from './realtime';

export class Store<T> {
  private listeners = new Set<(v: T) => void>();
  constructor(private current: T) {}

  get value(): T {
    return this.current;
  }

  set(v: T): void {
    this.current = v;
    for (const fn of this.listeners) fn(v);
  }

  /** Calls `fn` now and on every change; returns the unsubscribe function. */
  subscribe(fn: (v: T) => void): () => void {
    this.listeners.add(fn);
    fn(this.current);
    return () => this.listeners.delete(fn);
  }
}

/** Online/offline dots for usernames. Every dot on the page follows `presence` events. */
export class Presence {
  private known = new Map<string, boolean>();
  private inflight = new Set<string>();

  dot(username: string): HTMLSpanElement {
    const el = h('span', {
      class: 'presence',
      testid: 'presence-dot',
      attrs: { 'data-username': username, role: 'img' },
    });
    const online = this.known.get(username);
    paint(el, username, online);
    if (online === undefined) void this.fetch(username);
    return el;
  }

  set(username: string, online: boolean): void {
    this.known.set(username, online);
    for (const el of document.querySelectorAll<HTMLElement>(`[data-testid="presence-dot"][data-username="${CSS.escape(username)}"]`)) {
      paint(el, username, online);
    }
  }

  /** After a reconnect: anything may have changed while we were away. */
  refreshAll(): void {
    const names = new Set(this.known.keys());
    for (const el of document.querySelectorAll<HTMLElement>('[data-testid="presence-dot"]')) if (el.dataset.username) names.add(el.dataset.username);
    this.known.clear();
    for (const n of names) void this.fetch(n);
  }

  private async fetch(username: string): Promise<void> {
    if (this.inflight.has(username)) return;
    this.inflight.add(username);
    try {
      const s = await api.user(username);
      this.set(username, s.online);
    } catch {
      // Unknown user or network trouble: leave the dot grey.
    } finally {
      this.inflight.delete(username);
    }
  }
}

function paint(el: HTMLElement, username: string, online: boolean | undefined): void {
  el.dataset.online = online === undefined ? 'unknown' : String(online);
  el.classList.toggle('online', online === true);
  const label = `${username} is ${online ? 'online' : 'offline'}`;
  el.setAttribute('aria-label', label);
  el.title = label;
}

/**
 * The users I blocked (GET /blocks), shared by the settings list, the thread menu and the member
 * panel: `list` is null until first loaded. The server tells no other tab, so each loads its own.
 */
export class Blocks {
  readonly list = new Store<readonly string[] | null>(null);
  private loading: Promise<void> | null = null;

  /** Loads the list once (`force`: again, e.g. when the settings page opens). */
  load(force = false): Promise<void> {
    if (this.loading && !force) return this.loading;
    const p = api.blocks().then(({ blocks }) => this.list.set([...blocks].sort()));
    this.loading = p.catch(() => {
      if (this.loading === p) this.loading = null;
    });
    return p;
  }

  has(username: string): boolean {
    return this.list.value?.includes(username) ?? false;
  }

  async block(username: string): Promise<void> {
    await api.block(username);
    this.list.set([...new Set([...(this.list.value ?? []), username])].sort());
  }

  async unblock(username: string): Promise<void> {
    await api.unblock(username);
    this.list.set((this.list.value ?? []).filter((n) => n !== username));
  }
}

export interface Ctx {
  /** The signed-in user as `/me` last said; kept current (the same object) by `refreshMe`. */
  me: User;
  /** Announces `me` after each change (the settings page follows it). */
  account: Store<User>;
  /** Reads `/me` again (after an `account:changed`, or a change made here). */
  refreshMe(): Promise<User>;
  /** Signs this tab out to the login page, showing `flash` there. */
  endSession(flash: string): void;
  rt: Realtime;
  unread: Store<Unread>;
  presence: Presence;
  blocks: Blocks;
  navigate(hash: string): void;
}

/** The people in a thread other than me (or me, for a note to self). */
export function others(participants: readonly string[], me: string): string[] {
  const rest = participants.filter((p) => p !== me);
  return rest.length ? rest : [me];
}

/**
 * Names with their presence dots, "bob, carol and 3 more" past `max`: for the inbox rows and
 * a thread's heading.
 */
export function peopleList(presence: Presence, names: readonly string[], max = 4): (Node | string)[] {
  const shown = names.length > max ? names.slice(0, max - 1) : names;
  const parts: (Node | string)[] = shown.flatMap((p, i) => [i ? ', ' : '', presence.dot(p), ' ', h('span', { class: 'person' }, p)]);
  if (shown.length < names.length) parts.push(` and ${names.length - shown.length} more`);
  return parts;
}
