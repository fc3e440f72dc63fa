// The native HTTP API (/api/v1), as described in DESIGN.md.

export interface User {
  username: string;
  websocket_id?: string;
  created_at?: string;
  /** Whether this user sends and sees read receipts ("seen by"). */
  read_receipts?: boolean;
}

// Shared with the realtime events: generated from the server's Rust types.
import type { Change, ChangeNotice, HistoryItem, Message, Reaction, ReplyTo, SearchResult, Thread, Unread } from './generated/events';
export type { Change, ChangeNotice, HistoryItem, Message, Reaction, ReplyTo, SearchResult, Thread, Unread };

export interface UserStatus {
  username: string;
  online: boolean;
}

export type FieldErrors = Record<string, string[]>;

/** A failed API call, carrying the server's error body (or a made-up one for network failures). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly fields: FieldErrors = {},
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

type Listener = () => void;
const unauthorizedListeners = new Set<Listener>();

/** Called whenever the server says the session is gone (401), so the app can show the login screen. */
export function onUnauthorized(fn: Listener): void {
  unauthorizedListeners.add(fn);
}

async function call<T>(method: string, path: string, body?: unknown, opts: { quiet401?: boolean } = {}): Promise<T> {
  let res: Response;
  try {
    res = await fetch(`/api/v1${path}`, {
      method,
      credentials: 'same-origin',
      headers: body === undefined ? { Accept: 'application/json' } : { Accept: 'application/json', 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, 'network', 'Cannot reach the server. Check your connection and try again.');
  }
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  let data: unknown = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!res.ok) {
    const err = (data as { error?: { code?: string; message?: string; fields?: FieldErrors } } | null)?.error;
    const message = err?.message ?? (res.status === 429 ? 'Too many attempts; wait a moment and try again.' : `Request failed (${res.status}).`);
    const apiErr = new ApiError(res.status, err?.code ?? `http_${res.status}`, message, err?.fields ?? {});
    if (res.status === 401 && !opts.quiet401) for (const fn of unauthorizedListeners) fn();
    throw apiErr;
  }
  return data as T;
}

const q = (params: Record<string, string | number | null | undefined>): string => {
  const s = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== null && v !== undefined && v !== '') s.set(k, String(v));
  const str = s.toString();
  return str ? `?${str}` : '';
};

const seg = encodeURIComponent;

export const api = {
  register: (username: string, password: string) =>
    call<{ user: User }>('POST', '/auth/register', { username, password }, { quiet401: true }),
  login: (username: string, password: string) =>
    call<{ user: User; token: string }>('POST', '/auth/login', { username, password }, { quiet401: true }),
  logout: () => call<void>('POST', '/auth/logout', undefined, { quiet401: true }),
  me: () => call<User>('GET', '/me', undefined, { quiet401: true }),
  updateMe: (changes: { read_receipts?: boolean }) => call<{ user: User }>('PATCH', '/me', changes),
  user: (username: string) => call<UserStatus>('GET', `/users/${seg(username)}`),
  unread: () => call<Unread>('GET', '/unread'),
  threads: (before: string | null, limit = 20) => call<{ threads: Thread[]; next: string | null }>('GET', `/threads${q({ limit, before })}`),
  thread: (id: string) => call<{ thread: Thread }>('GET', `/threads/${seg(id)}`),
  messages: (id: string, before: string | null, limit = 30) =>
    call<{ messages: HistoryItem[]; has_more: boolean }>('GET', `/threads/${seg(id)}/messages${q({ limit, before })}`),
  /** The sender erases a message for every member (within the edit window). */
  removeForEveryone: (url: string) => call<void>('DELETE', `/messages/${seg(url)}?for=everyone`),
  /** Messages matching every word of `query`, newest first; `before` is the previous page's `next`. */
  search: (query: string, before: string | null, limit = 20, threadId: string | null = null) =>
    call<{ results: SearchResult[]; next: string | null }>('GET', `/search${q({ q: query, thread_id: threadId, before, limit })}`),
  /** The server's VAPID public key (base64url), for `pushManager.subscribe`. */
  pushKey: () => call<{ public_key: string }>('GET', '/push/key'),
  /** Binds a browser push subscription (`subscription.toJSON()`) to this session. */
  addPushSubscription: (sub: PushSubscriptionBody) => call<void>('POST', '/push/subscriptions', sub),
  removePushSubscription: (endpoint: string) => call<void>('DELETE', '/push/subscriptions', { endpoint }),
  /** The people whose messages, presence and typing I do not see. */
  blocks: () => call<{ blocks: string[] }>('GET', '/blocks'),
  block: (username: string) => call<void>('PUT', `/blocks/${seg(username)}`),
  unblock: (username: string) => call<void>('DELETE', `/blocks/${seg(username)}`),
};

/** A push subscription as the server takes it: what `PushSubscription.toJSON()` gives. */
export interface PushSubscriptionBody {
  endpoint: string;
  keys: { p256dh: string; auth: string };
}
