// Notifications: the service worker (/sw.js, web/public/sw.js), the browser's push subscription
// and the server's record of it. Registering the worker never asks anything; the permission
// prompt only ever follows a click on "Enable notifications".

import { ApiError, api, type PushSubscriptionBody } from './api';

/** Who enabled notifications in this browser: a subscription is only offered again to them. */
const OWNER_KEY = 'missive.push.owner';
/** The browser's push service is a vendor's server; it may never answer (no network, no keys). */
const SUBSCRIBE_TIMEOUT_MS = 15_000;

export type PushState =
  | { state: 'unsupported'; reason: string }
  | { state: 'off' }
  | { state: 'blocked' }
  | { state: 'enabled' }
  | { state: 'failed'; reason: string };

export function pushSupported(): boolean {
  return window.isSecureContext && 'serviceWorker' in navigator && 'PushManager' in window && 'Notification' in window;
}

let registration: Promise<ServiceWorkerRegistration | null> | null = null;

/** Registers /sw.js (no prompt: showing notifications still needs the user's permission). */
export function registerServiceWorker(): Promise<ServiceWorkerRegistration | null> {
  if (!('serviceWorker' in navigator) || !window.isSecureContext) return Promise.resolve(null);
  registration ??= navigator.serviceWorker.register('/sw.js', { scope: '/' }).catch((err) => {
    console.warn('service worker registration failed', err);
    return null;
  });
  return registration;
}

/** Calls `fn` with the thread a clicked notification asks this tab to show; returns the unsubscribe. */
export function onOpenThreadRequest(fn: (threadId: string | null) => void): () => void {
  if (!('serviceWorker' in navigator)) return () => {};
  const onMessage = (e: MessageEvent) => {
    const d = e.data as { type?: unknown; thread_id?: unknown } | null;
    if (d && d.type === 'open-thread') fn(typeof d.thread_id === 'string' ? d.thread_id : null);
  };
  navigator.serviceWorker.addEventListener('message', onMessage);
  navigator.serviceWorker.startMessages();
  return () => navigator.serviceWorker.removeEventListener('message', onMessage);
}

/** Closes the notifications of a thread that is now on screen. */
export async function closeThreadNotifications(threadId: string): Promise<void> {
  if (!('serviceWorker' in navigator)) return;
  try {
    const reg = await navigator.serviceWorker.getRegistration('/');
    if (!reg) return;
    for (const n of await reg.getNotifications({ tag: threadId })) n.close();
  } catch {
    // Nothing to close, or notifications are unavailable here.
  }
}

async function currentSubscription(): Promise<PushSubscription | null> {
  const reg = await registerServiceWorker();
  if (!reg) return null;
  try {
    return await reg.pushManager.getSubscription();
  } catch {
    return null;
  }
}

/** What the notifications control shows for `username` in this browser, before anything is clicked. */
export async function pushState(username: string): Promise<PushState> {
  if (!pushSupported()) return { state: 'unsupported', reason: unsupportedReason() };
  if (Notification.permission === 'denied') return { state: 'blocked' };
  if (Notification.permission !== 'granted') return { state: 'off' };
  const sub = await currentSubscription();
  return sub && localStorage.getItem(OWNER_KEY) === username ? { state: 'enabled' } : { state: 'off' };
}

function unsupportedReason(): string {
  if (!window.isSecureContext) return 'Notifications need a secure (https://) connection to this server.';
  return 'This browser cannot show notifications from websites.';
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = window.setTimeout(() => reject(new Error(what)), ms);
    p.then(
      (v) => (window.clearTimeout(timer), resolve(v)),
      (e) => (window.clearTimeout(timer), reject(e)),
    );
  });
}

/** base64url (the VAPID key as the server gives it) to bytes. */
function keyBytes(b64url: string): Uint8Array<ArrayBuffer> {
  const b64 = b64url.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(b64url.length / 4) * 4, '=');
  const raw = atob(b64);
  const out = new Uint8Array(new ArrayBuffer(raw.length));
  for (let i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
  return out;
}

function bodyOf(sub: PushSubscription): PushSubscriptionBody | null {
  const j = sub.toJSON();
  if (!j.endpoint || !j.keys?.p256dh || !j.keys?.auth) return null;
  return { endpoint: j.endpoint, keys: { p256dh: j.keys.p256dh, auth: j.keys.auth } };
}

const reasonOf = (err: unknown) => (err instanceof Error ? err.message : String(err));

/**
 * "Enable notifications" (a click): asks for the permission, subscribes with the browser's push
 * service and tells the server. Every way it can end is a state the control can show.
 */
export async function enablePush(username: string): Promise<PushState> {
  if (!pushSupported()) return { state: 'unsupported', reason: unsupportedReason() };
  const permission = await Notification.requestPermission();
  if (permission === 'denied') return { state: 'blocked' };
  if (permission !== 'granted') return { state: 'failed', reason: 'The browser did not give the permission to show notifications (the question was dismissed).' };

  const reg = await registerServiceWorker();
  if (!reg) return { state: 'failed', reason: 'The notification service (/sw.js) could not be installed in this browser.' };
  let key: string;
  try {
    key = (await api.pushKey()).public_key;
  } catch (err) {
    return { state: 'failed', reason: err instanceof ApiError ? err.message : reasonOf(err) };
  }
  let sub: PushSubscription;
  try {
    await withTimeout(navigator.serviceWorker.ready, SUBSCRIBE_TIMEOUT_MS, 'The notification service did not start.');
    sub = await withTimeout(
      reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: keyBytes(key) }),
      SUBSCRIBE_TIMEOUT_MS,
      'it did not answer in time',
    );
  } catch (err) {
    // e.g. no connection to the browser vendor's push service, or a private window (Chrome).
    return { state: 'failed', reason: `The browser could not subscribe with its push service: ${reasonOf(err)}.` };
  }
  const body = bodyOf(sub);
  if (!body) return { state: 'failed', reason: 'The browser gave an incomplete push subscription.' };
  try {
    await api.addPushSubscription(body);
  } catch (err) {
    // e.g. 422 invalid_endpoint: the server will not send to that push service.
    void sub.unsubscribe().catch(() => {});
    return { state: 'failed', reason: err instanceof ApiError ? err.message : reasonOf(err) };
  }
  localStorage.setItem(OWNER_KEY, username);
  return { state: 'enabled' };
}

/** "Turn off": the server forgets the subscription and the browser drops it. */
export async function disablePush(): Promise<PushState> {
  const sub = await currentSubscription();
  localStorage.removeItem(OWNER_KEY);
  if (sub) {
    try {
      await api.removePushSubscription(sub.endpoint);
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 404)) return { state: 'failed', reason: err instanceof ApiError ? err.message : reasonOf(err) };
    }
    await sub.unsubscribe().catch(() => false);
  }
  return { state: 'off' };
}

/**
 * After signing in: the server keeps a subscription only as long as the session, so a browser
 * where this user enabled notifications hands it over again (nobody else's is).
 */
export async function resumePush(username: string): Promise<void> {
  if (!pushSupported() || Notification.permission !== 'granted' || localStorage.getItem(OWNER_KEY) !== username) return;
  const sub = await currentSubscription();
  const body = sub && bodyOf(sub);
  if (body) await api.addPushSubscription(body).catch(() => {});
}

/** Before logging out: the server drops this browser's subscription (it would with the session too). */
export async function forgetPushOnServer(): Promise<void> {
  if (!pushSupported()) return;
  const sub = await withTimeout(currentSubscription(), 2_000, 'timeout').catch(() => null);
  if (sub) await withTimeout(api.removePushSubscription(sub.endpoint), 3_000, 'timeout').catch(() => {});
}
