// Small reusable pieces of UI.

import { h, replaceChildren } from './dom';

/**
 * A button that asks "Delete? Yes / No" inline before acting (no window.confirm, so it is
 * keyboard- and test-friendly). `action` returns an error message to show, or null.
 */
export function confirmButton(opts: {
  label: string;
  question: string;
  testid: string;
  ariaLabel?: string;
  action: () => Promise<string | null>;
}): HTMLElement {
  const box = h('span', { class: 'confirm', testid: `${opts.testid}-box` });

  const showButton = (focus = false, err = '') => {
    const btn = h(
      'button',
      {
        class: 'link danger',
        testid: opts.testid,
        attrs: { type: 'button', 'aria-label': opts.ariaLabel ?? opts.label },
        on: { click: () => askInline(box, { question: opts.question, action: opts.action, restore: showButton }) },
      },
      opts.label,
    );
    replaceChildren(box, btn, confirmError(err));
    if (focus) btn.focus();
  };

  showButton();
  return box;
}

/** Where a refused action says why, beside its button. */
export const confirmError = (text: string) => h('span', { class: 'error small', testid: 'confirm-error', attrs: { role: 'alert' } }, text);

/**
 * Shows "question Yes / No" in `box`. No (or Escape) calls `restore(true)`; Yes runs `action`,
 * and when it fails, `restore(true, error)` puts back what was there with the error beside it.
 */
export function askInline(
  box: HTMLElement,
  opts: { question: string; action: () => Promise<string | null>; restore: (focus: boolean, error?: string) => void },
): void {
  const no = h('button', { class: 'link', testid: 'confirm-no', attrs: { type: 'button' }, on: { click: () => opts.restore(true) } }, 'No');
  const yes = h(
    'button',
    {
      class: 'link danger',
      testid: 'confirm-yes',
      attrs: { type: 'button' },
      on: {
        click: async () => {
          yes.disabled = true;
          no.disabled = true;
          const err = await opts.action();
          if (err) opts.restore(true, err);
        },
      },
    },
    'Yes',
  );
  const group = h(
    'span',
    { class: 'confirm-ask', attrs: { role: 'group', 'aria-label': opts.question }, on: { keydown: (e) => (e as KeyboardEvent).key === 'Escape' && opts.restore(true) } },
    h('span', { class: 'muted' }, opts.question),
    ' ',
    yes,
    ' / ',
    no,
  );
  replaceChildren(box, group, confirmError(''));
  no.focus();
}

export interface MenuItem {
  label: string;
  testid: string;
  danger?: boolean;
  /** What a screen reader says, when the label alone does not (an emoji). */
  ariaLabel?: string;
  attrs?: Record<string, string>;
  run: () => void;
}

/**
 * A small "⋯" button (or `icon`) opening a list of actions (WAI-ARIA menu button: arrows move,
 * Escape closes and returns to the button). The menu closes on a click anywhere else.
 */
export function actionMenu(opts: { label: string; testid: string; items: MenuItem[]; icon?: string; menuClass?: string }): HTMLElement {
  const button = h(
    'button',
    {
      class: 'menu-button',
      testid: opts.testid,
      attrs: { type: 'button', 'aria-haspopup': 'menu', 'aria-expanded': 'false', 'aria-label': opts.label, title: opts.label },
    },
    opts.icon ?? '⋯',
  );
  const items = opts.items.map((item) =>
    h(
      'button',
      {
        class: `menu-item${item.danger ? ' danger' : ''}`,
        testid: item.testid,
        attrs: { ...item.attrs, type: 'button', role: 'menuitem', tabindex: -1, 'aria-label': item.ariaLabel, title: item.ariaLabel },
        on: {
          click: () => {
            close(false);
            item.run();
          },
        },
      },
      item.label,
    ),
  );
  const menu = h('div', { class: opts.menuClass ? `menu ${opts.menuClass}` : 'menu', testid: `${opts.testid}-items`, attrs: { role: 'menu', hidden: true, 'aria-label': opts.label } }, ...items);
  const box = h('span', { class: 'menu-box' }, button, menu);

  const onOutside = (e: Event) => {
    if (!box.isConnected || !box.contains(e.target as Node)) close(false);
  };
  function open(): void {
    menu.hidden = false;
    button.setAttribute('aria-expanded', 'true');
    items[0]?.focus();
    // Added after this click has finished bubbling, so it does not close the menu at once.
    setTimeout(() => !menu.hidden && document.addEventListener('pointerdown', onOutside), 0);
  }
  function close(focusButton: boolean): void {
    document.removeEventListener('pointerdown', onOutside);
    if (menu.hidden) return;
    menu.hidden = true;
    button.setAttribute('aria-expanded', 'false');
    if (focusButton) button.focus();
  }
  button.addEventListener('click', () => (menu.hidden ? open() : close(true)));
  menu.addEventListener('keydown', (e) => {
    const i = items.indexOf(document.activeElement as HTMLButtonElement);
    const step = e.key === 'ArrowDown' || e.key === 'ArrowRight' ? 1 : e.key === 'ArrowUp' || e.key === 'ArrowLeft' ? -1 : 0;
    if (step) {
      e.preventDefault();
      items[(i + step + items.length) % items.length]?.focus();
    } else if (e.key === 'Escape' || e.key === 'Tab') {
      if (e.key === 'Escape') e.preventDefault();
      close(e.key === 'Escape');
    }
  });
  return box;
}

/** Shows per-field server errors (`fields`) next to the inputs that have a matching error slot. */
export function showFieldErrors(form: HTMLElement, fields: Record<string, string[]>): boolean {
  let shown = false;
  for (const slot of form.querySelectorAll<HTMLElement>('[data-field-error]')) {
    const problems = fields[slot.dataset.fieldError ?? ''] ?? [];
    slot.textContent = problems.join(' ');
    const input = form.querySelector<HTMLElement>(`[name="${CSS.escape(slot.dataset.fieldError ?? '')}"]`);
    if (input) input.setAttribute('aria-invalid', problems.length ? 'true' : 'false');
    if (problems.length) shown = true;
  }
  return shown;
}

/** A labelled input with an error slot under it. */
export function field(opts: {
  label: string;
  name: string;
  testid: string;
  input: HTMLInputElement | HTMLTextAreaElement;
  hint?: Node | string;
}): HTMLElement {
  const id = `f-${opts.name}-${Math.random().toString(36).slice(2, 8)}`;
  opts.input.id = id;
  opts.input.name = opts.name;
  opts.input.dataset.testid = opts.testid;
  const err = h('div', {
    class: 'field-error',
    testid: `field-error-${opts.name}`,
    attrs: { 'data-field-error': opts.name, id: `${id}-err`, 'aria-live': 'polite' },
  });
  opts.input.setAttribute('aria-describedby', `${id}-err`);
  return h('div', { class: 'field' }, h('label', { attrs: { for: id } }, opts.label), opts.input, opts.hint ?? null, err);
}
