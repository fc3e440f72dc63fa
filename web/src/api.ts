// The native HTTP API (/api/v1), as described in DESIGN.md.

export interface User {
  username: string;
  websocket_id?: string;
  created_at?: string;
  /** Whether this user sends and sees read receipts ("seen by"). */
  read_receipts?: boolean;
  /** The account's e-mail address (for password resets), or null. */
  email?: string | null;
  /** Whether `email` was confirmed by its link. */
  email_verified?: boolean;
  /** Whether logging in needs a code from an authenticator app. */
  two_factor?: boolean;
  /** False for accounts made with a Piratchat key: password-gated actions answer 409 `no_password`. */
  has_password?: boolean;
}

/** One login session of the signed-in user (`GET /sessions`). */
export interface SessionInfo {
  id: string;
  /** The session this browser uses. */
  current: boolean;
  created_at: string;
  last_seen_at: string;
  /** E.g. "Chrome on Linux". */
  device: string;
  /** Coarse: "127.0.0.0/24", "2001:db8::/48". */
  address: string;
}

/** An entry of an account's security log. */
export interface SecurityEvent {
  kind: string;
  at: string;
  address?: string | null;
  device?: string | null;
}

/** An account as the operators' list shows it (`GET /admin/users`). */
export interface AdminUser {
  username: string;
  is_admin: boolean;
  disabled: boolean;
  two_factor: boolean;
  created_at: string;
}

export interface TwoFactorSetup {
  /** Base32, no padding. */
  secret: string;
  otpauth_uri: string;
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

/** Sends a request; answers the response when it is 2xx, throws an ApiError otherwise. */
async function send(method: string, path: string, body?: unknown, opts: { quiet401?: boolean } = {}): Promise<Response> {
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
  if (res.ok) return res;
  const data = parse(await res.text().catch(() => ''));
  const err = (data as { error?: { code?: string; message?: string; fields?: FieldErrors } } | null)?.error;
  const message = err?.message ?? (res.status === 429 ? 'Too many attempts; wait a moment and try again.' : `Request failed (${res.status}).`);
  const apiErr = new ApiError(res.status, err?.code ?? `http_${res.status}`, message, err?.fields ?? {});
  if (res.status === 401 && !opts.quiet401) for (const fn of unauthorizedListeners) fn();
  throw apiErr;
}

function parse(text: string): unknown {
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

async function call<T>(method: string, path: string, body?: unknown, opts: { quiet401?: boolean } = {}): Promise<T> {
  const res = await send(method, path, body, opts);
  if (res.status === 204) return undefined as T;
  return parse(await res.text()) as T;
}

/** Calls that take the password or a code: a wrong one is a form error, not a signed-out session. */
const checked = { quiet401: true };

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
  /** `code`: a TOTP code or an unused recovery code, once the server answered 401 `code_required`. */
  login: (username: string, password: string, code?: string) =>
    call<{ user: User; token: string }>('POST', '/auth/login', code ? { username, password, code } : { username, password }, checked),
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

  // ---- account security
  /** This account's login sessions, newest first. */
  sessions: () => call<{ sessions: SessionInfo[] }>('GET', '/sessions'),
  endSession: (id: string) => call<void>('DELETE', `/sessions/${seg(id)}`),
  /** Ends every session but this one. */
  logoutOthers: () => call<void>('POST', '/auth/logout-others'),
  changePassword: (current_password: string, new_password: string) => call<void>('POST', '/me/password', { current_password, new_password }, checked),
  /** Sets the address (a confirmation link is mailed: 202), or removes it (`''`: 204). */
  setEmail: (email: string, password: string) => call<void>('PUT', '/me/email', { email, password }, checked),
  verifyEmail: (token: string) => call<void>('POST', '/auth/verify-email', { token }, checked),
  /** Mails a reset link when `login` (a username or a verified address) has a verified address; 202 either way. */
  requestPasswordReset: (login: string) => call<void>('POST', '/auth/password-reset', { login }, checked),
  resetPassword: (token: string, new_password: string) => call<void>('POST', '/auth/password-reset/confirm', { token, new_password }, checked),
  /** Starts turning two-factor sign-in on: the secret for the authenticator app. */
  startTwoFactor: (password: string) => call<TwoFactorSetup>('POST', '/me/two-factor', { password }, checked),
  /** Turns two-factor sign-in on with a first code from the app. */
  confirmTwoFactor: (code: string) => call<{ recovery_codes: string[] }>('POST', '/me/two-factor/confirm', { code }, checked),
  disableTwoFactor: (password: string, code: string) => call<void>('DELETE', '/me/two-factor', { password, code }, checked),
  /** New recovery codes; the old ones stop working. */
  newRecoveryCodes: (password: string, code: string) => call<{ recovery_codes: string[] }>('POST', '/me/two-factor/recovery-codes', { password, code }, checked),
  securityEvents: (before: string | null) => call<{ events: SecurityEvent[]; next: string | null }>('GET', `/me/security-events${q({ before })}`),
  /** Everything of the account as one JSON document (`{user, threads}`), as a file's contents. */
  exportData: async (password: string): Promise<Blob> => (await send('POST', '/me/export', { password }, checked)).blob(),
  /** Deletes the account; `code` is needed when two-factor sign-in is on (else 401 `code_required`). */
  deleteAccount: (password: string, code?: string) => call<void>('DELETE', '/me', code ? { password, code } : { password }, checked),

  // ---- operators (admins)
  adminUsers: (after: string | null, limit = 100) => call<{ users: AdminUser[]; next: string | null }>('GET', `/admin/users${q({ after, limit })}`),
  adminUserAction: (username: string, action: 'disable' | 'enable' | 'logout') => call<void>('POST', `/admin/users/${seg(username)}/${action}`),
  adminSecurityEvents: (username: string, before: string | null) =>
    call<{ events: SecurityEvent[]; next: string | null }>('GET', `/admin/users/${seg(username)}/security-events${q({ before })}`),
};

/** A push subscription as the server takes it: what `PushSubscription.toJSON()` gives. */
export interface PushSubscriptionBody {
  endpoint: string;
  keys: { p256dh: string; auth: string };
}
