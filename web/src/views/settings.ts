// The user's settings: read receipts on or off, notifications on this device, blocked users,
// and the account's security (views/security.ts).

import { ApiError, api } from '../api';
import { Scope, h, replaceChildren } from '../dom';
import { disablePush, enablePush, pushState, type PushState } from '../push';
import type { View } from '../router';
import type { Ctx } from '../state';
import { deleteCard, emailCard, exportCard, passwordCard, securityLogCard, sessionsCard, twoFactorCard, type Card } from './security';

export function settingsView(ctx: Ctx): View {
  const scope = new Scope();
  let alive = true;
  scope.add(() => (alive = false));
  /** Set once the user flips the switch: a slower first answer must not flip it back. */
  let touched = false;
  const receipts = h(
    'button',
    {
      class: 'switch',
      testid: 'receipts-switch',
      attrs: { type: 'button', role: 'switch', 'aria-labelledby': 'receipts-label', 'aria-describedby': 'receipts-hint' },
    },
    h('span', { class: 'switch-knob', attrs: { 'aria-hidden': 'true' } }),
  );
  const error = h('div', { class: 'form-error', testid: 'settings-error', attrs: { role: 'alert' } });

  function show(on: boolean): void {
    receipts.setAttribute('aria-checked', String(on));
    receipts.dataset.on = String(on);
  }

  receipts.addEventListener('click', async () => {
    const on = receipts.getAttribute('aria-checked') !== 'true';
    touched = true;
    error.textContent = '';
    receipts.disabled = true;
    try {
      const { user } = await api.updateMe({ read_receipts: on });
      ctx.me.read_receipts = user.read_receipts;
      if (alive) show(user.read_receipts !== false);
    } catch (err) {
      if (alive) error.textContent = err instanceof ApiError ? err.message : 'Could not save this setting.';
    } finally {
      receipts.disabled = false;
    }
  });

  // Receipts are on unless the user turned them off.
  show(ctx.me.read_receipts !== false);
  // Another device may have changed it since this tab signed in.
  void ctx
    .refreshMe()
    .then((me) => {
      if (touched) return;
      if (alive) show(me.read_receipts !== false);
    })
    .catch(() => {});

  const security: Card[] = [
    sessionsCard(scope),
    passwordCard(ctx, scope),
    emailCard(ctx, scope),
    twoFactorCard(ctx, scope),
    securityLogCard(scope),
    exportCard(ctx, scope),
    deleteCard(ctx, scope),
  ];
  // The account as /me says (the address, its confirmation, two-factor), now and after each change.
  scope.add(ctx.account.subscribe((me) => security.forEach((c) => c.refresh?.(me))));
  // A change here or on another device: the sessions and the log have new entries.
  scope.add(ctx.rt.on('account:changed', () => security.forEach((c) => c.reload?.())));

  const el = h(
    'section',
    { class: 'settings', testid: 'settings-view' },
    h('h1', null, 'Settings'),
    h(
      'div',
      { class: 'card' },
      h('p', { class: 'muted' }, 'Signed in as ', h('strong', { testid: 'settings-username' }, ctx.me.username)),
      h(
        'div',
        { class: 'setting' },
        h(
          'div',
          { class: 'setting-text' },
          h('div', { class: 'setting-name', attrs: { id: 'receipts-label' } }, 'Read receipts'),
          h(
            'div',
            { class: 'hint', attrs: { id: 'receipts-hint' } },
            'Others see when you have read their messages, and you see when they have read yours. Turned off, neither: it works both ways.',
          ),
        ),
        receipts,
      ),
      error,
    ),
    notificationsCard(ctx, scope),
    blockedCard(ctx, scope),
    h('h2', { class: 'settings-section' }, 'Account security'),
    ...security.map((c) => c.el),
  );
  return { el, destroy: () => scope.dispose() };
}

const PUSH_TEXT: Record<PushState['state'], string> = {
  unsupported: 'Not available here.',
  off: 'Off on this device.',
  blocked: 'Blocked by the browser. Allow notifications for this site in the browser’s settings, then try again.',
  enabled: 'On: this device shows new messages while Missive is closed.',
  failed: 'Could not turn them on.',
};

/**
 * Notifications on this device: the browser's permission is only asked for when "Enable" is
 * clicked. The state (`data-state`) is one of PushState's, or `working` while it changes.
 */
function notificationsCard(ctx: Ctx, scope: Scope): HTMLElement {
  const status = h('div', { class: 'hint push-status', testid: 'notifications-status', attrs: { 'data-state': 'working', role: 'status', id: 'push-status' } }, 'Checking…');
  const enable = h(
    'button',
    { class: 'primary small-button', testid: 'notifications-enable', attrs: { type: 'button', hidden: true, 'aria-describedby': 'push-status' } },
    'Enable notifications',
  );
  const disable = h('button', { class: 'small-button', testid: 'notifications-disable', attrs: { type: 'button', hidden: true } }, 'Turn off');

  function show(s: PushState | { state: 'working' }): void {
    status.dataset.state = s.state;
    if (s.state === 'working') {
      status.textContent = 'Working…';
    } else {
      const reason = 'reason' in s ? s.reason : '';
      replaceChildren(status, h('span', { class: 'push-state-text' }, PUSH_TEXT[s.state]), reason ? ' ' : null, reason ? h('span', { testid: 'notifications-reason' }, reason) : null);
    }
    enable.hidden = !(s.state === 'off' || s.state === 'failed' || s.state === 'blocked');
    enable.textContent = s.state === 'failed' || s.state === 'blocked' ? 'Try again' : 'Enable notifications';
    disable.hidden = s.state !== 'enabled';
    enable.disabled = disable.disabled = s.state === 'working';
  }

  let busy = false;
  async function run(change: () => Promise<PushState>): Promise<void> {
    if (busy) return;
    busy = true;
    show({ state: 'working' });
    let next: PushState;
    try {
      next = await change();
    } catch (err) {
      next = { state: 'failed', reason: err instanceof Error ? err.message : String(err) };
    }
    busy = false;
    if (scope.alive) show(next);
  }
  // requestPermission must be called within the click (a user gesture): nothing awaited before it.
  enable.addEventListener('click', () => void run(() => enablePush(ctx.me.username)));
  disable.addEventListener('click', () => void run(disablePush));

  void pushState(ctx.me.username)
    .then((s) => scope.alive && !busy && show(s))
    .catch(() => scope.alive && !busy && show({ state: 'off' }));

  return h(
    'div',
    { class: 'card', testid: 'notifications-card' },
    h(
      'div',
      { class: 'setting' },
      h(
        'div',
        { class: 'setting-text' },
        h('h2', { class: 'setting-name' }, 'Notifications'),
        h('div', { class: 'hint' }, 'Get a notification on this device when a message arrives while Missive is not open. Muted conversations and blocked people never notify.'),
        status,
      ),
      h('div', { class: 'setting-actions' }, enable, disable),
    ),
  );
}

/** The people I blocked, each with Unblock. */
function blockedCard(ctx: Ctx, scope: Scope): HTMLElement {
  const list = h('ul', { class: 'blocked-list', testid: 'blocked-list', attrs: { 'aria-labelledby': 'blocked-title' } });
  const empty = h('p', { class: 'muted', testid: 'blocked-empty', attrs: { hidden: true } }, 'You have not blocked anyone.');
  const status = h('p', { class: 'muted', testid: 'blocked-status', attrs: { 'aria-live': 'polite' } }, 'Loading…');
  const error = h('div', { class: 'form-error', testid: 'blocked-error', attrs: { role: 'alert' } });

  function row(username: string): HTMLElement {
    const button = h(
      'button',
      {
        class: 'small-button',
        testid: 'unblock-button',
        attrs: { type: 'button', 'aria-label': `Unblock ${username}` },
        on: {
          click: async () => {
            error.textContent = '';
            button.disabled = true;
            try {
              await ctx.blocks.unblock(username); // the list redraws without them
            } catch (err) {
              if (scope.alive) error.textContent = err instanceof ApiError ? err.message : 'Could not unblock.';
              button.disabled = false;
            }
          },
        },
      },
      'Unblock',
    );
    return h('li', { class: 'blocked-user', testid: 'blocked-user', attrs: { 'data-username': username } }, h('span', { class: 'blocked-name' }, username), button);
  }

  scope.add(
    ctx.blocks.list.subscribe((names) => {
      if (names === null) return;
      status.textContent = '';
      replaceChildren(list, ...names.map(row));
      empty.hidden = names.length > 0;
    }),
  );
  // Another tab or device may have blocked or unblocked someone since: ask again.
  ctx.blocks.load(true).catch((err) => {
    if (!scope.alive) return;
    status.textContent = '';
    error.textContent = err instanceof ApiError ? err.message : 'Could not load the blocked users.';
  });

  return h(
    'div',
    { class: 'card', testid: 'blocked-card' },
    h('h2', { class: 'setting-name', attrs: { id: 'blocked-title' } }, 'Blocked users'),
    h('p', { class: 'hint' }, 'You do not see their new messages, presence or typing; they are not told. Block someone from the menu of a conversation with them.'),
    status,
    list,
    empty,
    error,
  );
}
