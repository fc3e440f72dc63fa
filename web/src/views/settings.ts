// The user's settings: for now, read receipts on or off.

import { ApiError, api } from '../api';
import { h } from '../dom';
import type { View } from '../router';
import type { Ctx } from '../state';

export function settingsView(ctx: Ctx): View {
  let alive = true;
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
  void api
    .me()
    .then((me) => {
      if (touched) return;
      ctx.me.read_receipts = me.read_receipts;
      if (alive) show(me.read_receipts !== false);
    })
    .catch(() => {});

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
  );
  return { el, destroy: () => (alive = false) };
}
