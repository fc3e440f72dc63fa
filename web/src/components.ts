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
  const error = h('span', { class: 'error small', testid: 'confirm-error', attrs: { role: 'alert' } });

  const showButton = (focus = false) => {
    const btn = h(
      'button',
      { class: 'link danger', testid: opts.testid, attrs: { type: 'button', 'aria-label': opts.ariaLabel ?? opts.label }, on: { click: ask } },
      opts.label,
    );
    replaceChildren(box, btn, error);
    if (focus) btn.focus();
  };

  function ask() {
    error.textContent = '';
    const no = h('button', { class: 'link', testid: 'confirm-no', attrs: { type: 'button' }, on: { click: () => showButton(true) } }, 'No');
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
            if (err) {
              showButton(true);
              error.textContent = err;
            }
          },
        },
      },
      'Yes',
    );
    const group = h(
      'span',
      { class: 'confirm-ask', attrs: { role: 'group', 'aria-label': opts.question }, on: { keydown: (e) => (e as KeyboardEvent).key === 'Escape' && showButton(true) } },
      h('span', { class: 'muted' }, opts.question),
      ' ',
      yes,
      ' / ',
      no,
    );
    replaceChildren(box, group, error);
    no.focus();
  }

  showButton();
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
