// Missive browser client: session bootstrap, header, routing, the service worker.

import './style.css';
import { ApiError, api, onUnauthorized, type Unread, type User } from './api';
import { h, replaceChildren } from './dom';
import { setUnreadOnFavicon } from './favicon';
import { forgetPushOnServer, onOpenThreadRequest, registerServiceWorker, resumePush } from './push';
import { Realtime, type SessionEndReason } from './realtime';
import { parseHash, threadHref, type Route, type View } from './router';
import { Blocks, Presence, Store, type Ctx } from './state';
import { refreshDayLabels } from './time';
import { setPageTitle, setUnreadInTitle } from './title';
import { adminView } from './views/admin';
import { authView, forgotView, resetPasswordView, verifyEmailView } from './views/auth';
import { composeView } from './views/compose';
import { inboxView } from './views/inbox';
import { settingsView } from './views/settings';
import { threadView } from './views/thread';

const root = document.getElementById('app')!;
let ctx: Ctx | null = null;
let current: View | null = null;
let sessionCleanup: (() => void)[] = [];
let flash = '';

// ---- header
const mailbox = h('a', { class: 'mailbox', testid: 'mailbox-indicator', attrs: { href: '#/inbox', hidden: true } });
const connection = h('span', { class: 'connection', testid: 'connection-status', attrs: { 'data-state': 'offline', hidden: true, role: 'status' } });
const userName = h('span', { class: 'me', testid: 'current-user' });
const logoutBtn = h('button', { class: 'link', testid: 'logout-button', attrs: { type: 'button' }, on: { click: () => void logout() } }, 'Log out');
const nav = h(
  'nav',
  { class: 'nav', attrs: { 'aria-label': 'Main', hidden: true } },
  h('a', { testid: 'nav-inbox', attrs: { href: '#/inbox' } }, 'Inbox'),
  mailbox,
  h('a', { testid: 'nav-compose', attrs: { href: '#/compose' } }, 'Compose'),
  h('span', { class: 'spacer' }),
  connection,
  userName,
  h('a', { class: 'settings-link', testid: 'nav-settings', attrs: { href: '#/settings', 'aria-label': 'Settings', title: 'Settings' } }, '⚙'),
  logoutBtn,
);
const header = h('header', { class: 'top' }, h('a', { class: 'brand', attrs: { href: '#/inbox' } }, 'Missive'), nav);
const main = h('main', { class: 'main', attrs: { id: 'main', tabindex: -1 } });
replaceChildren(root, h('a', { class: 'skip', attrs: { href: '#main' }, on: { click: (e) => (e.preventDefault(), main.focus()) } }, 'Skip to content'), header, main);

function showUnread(u: Unread): void {
  mailbox.hidden = u.messages <= 0;
  mailbox.dataset.messages = String(u.messages);
  mailbox.dataset.threads = String(u.threads);
  replaceChildren(mailbox, h('span', { attrs: { 'aria-hidden': 'true' } }, '✉'), ' ', h('span', { class: 'count', testid: 'mailbox-count' }, String(u.messages)));
  mailbox.setAttribute('aria-label', `${u.messages} unread ${u.messages === 1 ? 'message' : 'messages'} in ${u.threads} ${u.threads === 1 ? 'conversation' : 'conversations'}`);
  setUnreadInTitle(u.messages);
  setUnreadOnFavicon(u.messages);
}

// ---- session
const EXPIRED = 'Your session has ended. Please log in again.';

/** What the login page says after the server ended this tab's session (`session:ended`). */
const ENDED: Record<SessionEndReason, string> = {
  logout: 'You logged out.',
  password_changed: 'You were signed out: your password was changed.',
  ended_elsewhere: 'You were signed out: this session was ended from another device.',
  disabled: 'You were signed out: your account was disabled.',
  deleted: 'You were signed out: your account was deleted.',
};

/** The pages shown without a session: logging in, and the links that mails carry. */
const PUBLIC = new Set(['login', 'register', 'forgot', 'reset-password', 'verify-email']);

function navigate(hash: string): void {
  if (location.hash === hash) route();
  else location.hash = hash;
}

function signIn(me: User): void {
  if (ctx) signOut('');
  const unread = new Store<Unread>({ messages: 0, threads: 0 });
  const presence = new Presence();
  const account = new Store<User>(me);
  const rt = new Realtime({
    unauthorized: () => signOut(EXPIRED),
    // The server dropped us on purpose: if the session is still good, connect again.
    kicked: () =>
      void api
        .me()
        .then(() => rt.socket.connect())
        .catch((err) => (err instanceof ApiError && err.status === 401 ? signOut(EXPIRED) : rt.socket.connect())),
    ended: (reason) => signOut(ENDED[reason as SessionEndReason] ?? EXPIRED),
  });
  const session: Ctx = {
    me,
    rt,
    unread,
    presence,
    blocks: new Blocks(),
    navigate,
    account,
    refreshMe: async () => {
      try {
        const fresh = await api.me();
        // Still this session (not signed out meanwhile): views hold `me`, so it is updated in place.
        if (ctx === session) {
          Object.assign(me, fresh);
          account.set(me);
        }
        return me;
      } catch (err) {
        if (err instanceof ApiError && err.status === 401 && ctx === session) signOut(EXPIRED);
        throw err;
      }
    },
    // Once signed out (the server's session:ended came first), the login page already says why.
    endSession: (text) => {
      if (ctx === session) signOut(text);
    },
  };
  ctx = session;

  const refreshUnread = () =>
    void api
      .unread()
      .then((u) => unread.set(u))
      .catch(() => {});
  sessionCleanup = [
    unread.subscribe(showUnread),
    rt.on('unread', (u) => unread.set(u)),
    rt.on('thread:read', (p) => {
      if (p.unread && typeof p.unread === 'object') unread.set(p.unread);
    }),
    rt.on('presence', (p) => presence.set(p.username, p.online)),
    // A password, address or second factor changed (here or on another device): read /me again.
    rt.on('account:changed', () => void session.refreshMe().catch(() => {})),
    rt.onResync(() => {
      refreshUnread();
      presence.refreshAll();
    }),
    rt.onState((s) => {
      connection.dataset.state = s;
      connection.hidden = s === 'online';
      connection.textContent = s === 'online' ? 'Online' : s === 'connecting' ? 'Reconnecting…' : 'Offline';
    }),
  ];
  refreshUnread();
  // A browser where this user turned notifications on gives the server its subscription again.
  void resumePush(me.username).catch(() => {});

  userName.textContent = me.username;
  nav.hidden = false;
  const r = parseHash(location.hash);
  if (r.name === '' || r.name === 'login' || r.name === 'register') navigate('#/inbox');
  else route();
}

/** Signs this tab out (when signed in) and shows the login page with `text` on it. */
function signOut(text: string): void {
  if (!ctx) return;
  for (const fn of sessionCleanup) fn();
  sessionCleanup = [];
  ctx.rt.close();
  ctx = null;
  nav.hidden = true;
  userName.textContent = '';
  showUnread({ messages: 0, threads: 0 });
  flash = text;
  const r = parseHash(location.hash);
  if (r.name === 'register') route();
  else navigate('#/login');
}

/** The login page with `text` on it, signed out already (e.g. after a password reset). */
function showLogin(text: string): void {
  if (ctx) {
    signOut(text);
    return;
  }
  flash = text;
  navigate('#/login');
}

async function logout(): Promise<void> {
  // The server drops this browser's push subscription with the session; saying so first is quicker.
  if (ctx) await forgetPushOnServer();
  // Close our socket first: the server is about to drop it, and that must not read as an expired session.
  ctx?.rt.close();
  try {
    await api.logout();
  } catch {
    // Logging out locally is what matters; the cookie is HttpOnly, so ask again on next load.
  }
  signOut('');
}

onUnauthorized(() => signOut(EXPIRED));

// ---- routing
function mount(view: View, name: string): void {
  current?.destroy?.();
  current = view;
  main.dataset.view = name;
  replaceChildren(main, view.el);
}

const TITLES: Record<string, string> = {
  login: 'Log in',
  register: 'Register',
  forgot: 'Forgot password',
  'reset-password': 'New password',
  'verify-email': 'Confirm e-mail address',
  inbox: 'Inbox',
  compose: 'New message',
  admin: 'Server',
  settings: 'Settings',
};

/** The pages that work with or without a session; null for the others. */
function publicView(r: Route): View | null {
  const token = r.query.get('token') ?? '';
  switch (r.name) {
    case 'forgot':
      return forgotView();
    case 'reset-password':
      return resetPasswordView(token, showLogin);
    case 'verify-email':
      // Signed in: the settings page then shows the address as confirmed.
      return verifyEmailView(token, ctx ? () => void ctx?.refreshMe().catch(() => {}) : null);
    default:
      return null;
  }
}

function route(): void {
  const r = parseHash(location.hash);
  setPageTitle(TITLES[r.name] ?? null);
  if (!ctx) {
    if (!PUBLIC.has(r.name)) {
      location.replace('#/login');
      return; // hashchange routes again
    }
    const view = publicView(r) ?? authView(r.name === 'register' ? 'register' : 'login', signIn);
    if (flash) view.el.prepend(h('p', { class: 'flash', testid: 'flash', attrs: { role: 'status' } }, flash));
    flash = '';
    mount(view, r.name);
    return;
  }
  const shared = publicView(r);
  if (shared) {
    mount(shared, r.name);
    return;
  }
  switch (r.name) {
    case 'inbox':
      mount(inboxView(ctx, r.query.get('q')), 'inbox');
      break;
    case 'thread':
      if (r.params[0]) mount(threadView(ctx, r.params[0], r.query.get('m')), 'thread');
      else navigate('#/inbox');
      break;
    case 'compose':
      mount(composeView(ctx, r.query), 'compose');
      break;
    case 'settings':
      mount(settingsView(ctx), 'settings');
      break;
    case 'admin':
      mount(adminView(), 'admin');
      break;
    default:
      navigate('#/inbox');
      return;
  }
}

window.addEventListener('hashchange', route);
// A click on a notification (sw.js) brings this tab forward and asks it to show the thread.
onOpenThreadRequest((threadId) => navigate(threadId ? threadHref(threadId) : '#/inbox'));
// Registering asks nothing: the permission prompt only follows "Enable notifications" (settings).
void registerServiceWorker();
window.setInterval(refreshDayLabels, 30_000);

async function boot(): Promise<void> {
  try {
    signIn(await api.me());
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      route();
      return;
    }
    const retry = h('button', { class: 'primary', attrs: { type: 'button' }, on: { click: () => void boot() } }, 'Try again');
    replaceChildren(main, h('div', { class: 'card center', testid: 'boot-error' }, h('p', null, 'Cannot reach the Missive server.'), retry));
  }
}

void boot();
