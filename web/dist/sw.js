// Missive's service worker: shows a push as a notification (one per thread: a newer one replaces
// it), and opens the thread when the notification is clicked. Plain JavaScript, served as-is at
// /sw.js so that its scope is the whole site. It caches nothing: the app works as before offline.

/* eslint-env serviceworker */

self.addEventListener('install', () => {
  // A new version takes over at once: it holds no state an old page could depend on.
  self.skipWaiting();
});

self.addEventListener('activate', (event) => {
  event.waitUntil(self.clients.claim());
});

/** The client's route for a thread (web/src/router.ts: threadHref). */
const threadUrl = (threadId) => new URL(`/#/thread/${encodeURIComponent(threadId)}`, self.location.origin).href;

/** The push payload `{thread_id, subject, sender, preview?}` (DESIGN.md, Notifications), or null. */
function payloadOf(event) {
  if (!event.data) return null;
  try {
    const p = event.data.json();
    return p && typeof p === 'object' && typeof p.thread_id === 'string' ? p : null;
  } catch {
    return null;
  }
}

self.addEventListener('push', (event) => {
  const p = payloadOf(event);
  // Chrome requires every push to show something (userVisibleOnly): a malformed one says little.
  if (!p) {
    event.waitUntil(self.registration.showNotification('Missive', { body: 'You have a new message.', tag: 'missive' }));
    return;
  }
  const sender = typeof p.sender === 'string' ? p.sender : '';
  const preview = typeof p.preview === 'string' && p.preview !== '' ? p.preview : null;
  const title = (typeof p.subject === 'string' && p.subject) || sender || 'Missive';
  // Without a preview (the server is configured without them, or I was added to a group) say who.
  const body = preview !== null ? (sender ? `${sender}: ${preview}` : preview) : sender ? `From ${sender}` : 'New activity';
  event.waitUntil(
    self.registration.showNotification(title, {
      body,
      // One notification per thread: a newer push replaces the older one, and still alerts.
      tag: p.thread_id,
      renotify: true,
      timestamp: Date.now(),
      data: { thread_id: p.thread_id },
    }),
  );
});

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  const threadId = event.notification.data && event.notification.data.thread_id;
  event.waitUntil(openThread(typeof threadId === 'string' ? threadId : null));
});

/** Focuses a tab of the app and has it show the thread, or opens a new tab at the thread. */
async function openThread(threadId) {
  const url = threadId ? threadUrl(threadId) : new URL('/#/inbox', self.location.origin).href;
  const tabs = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
  const ours = tabs.filter((c) => new URL(c.url).origin === self.location.origin);
  // The focused tab first, then the one used last.
  const tab = ours.find((c) => c.focused) ?? ours[0];
  if (tab) {
    try {
      const focused = await tab.focus();
      // The page navigates itself (main.ts): a hash change keeps its session and socket.
      (focused ?? tab).postMessage({ type: 'open-thread', thread_id: threadId });
      return;
    } catch {
      // Focusing can be refused; a new window below still takes the user there.
    }
  }
  await self.clients.openWindow(url);
}

// The push service replaced the subscription (expiry, key change): tell the server the new one.
self.addEventListener('pushsubscriptionchange', (event) => {
  event.waitUntil(resubscribe(event.oldSubscription, event.newSubscription));
});

async function resubscribe(oldSub, newSub) {
  const json = { Accept: 'application/json', 'Content-Type': 'application/json' };
  let sub = newSub;
  if (!sub) {
    const res = await fetch('/api/v1/push/key', { credentials: 'same-origin', headers: { Accept: 'application/json' } });
    if (!res.ok) return;
    const { public_key } = await res.json();
    sub = await self.registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: public_key });
  }
  await fetch('/api/v1/push/subscriptions', { method: 'POST', credentials: 'same-origin', headers: json, body: JSON.stringify(sub.toJSON()) });
  if (oldSub && oldSub.endpoint !== sub.endpoint) {
    await fetch('/api/v1/push/subscriptions', { method: 'DELETE', credentials: 'same-origin', headers: json, body: JSON.stringify({ endpoint: oldSub.endpoint }) });
  }
}
