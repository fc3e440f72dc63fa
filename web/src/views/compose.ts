// Start a new conversation: recipient (checked as you type), subject, body.

import { ApiError, api } from '../api';
import { field, showFieldErrors } from '../components';
import { Scope, debounce, h, replaceChildren } from '../dom';
import { newClientId } from '../ids';
import { threadHref, type View } from '../router';
import type { Ctx } from '../state';

const SUBJECT_MAX = 70;
const USERNAME = /^[a-z0-9_]{1,32}$/;

/** Which form field a socket error code belongs to. */
const FIELD_FOR_CODE: Record<string, string> = {
  unknown_recipient: 'recipient',
  invalid_recipient: 'recipient',
  subject_too_long: 'subject',
  empty_subject: 'subject',
  empty_body: 'body',
  message_too_long: 'body',
};

export function composeView(ctx: Ctx, prefill: URLSearchParams): View {
  const scope = new Scope();
  const recipient = h('input', {
    attrs: { type: 'text', autocomplete: 'off', autocapitalize: 'none', spellcheck: 'false', maxlength: 32, required: true },
  });
  recipient.value = prefill.get('to') ?? '';
  const recipientStatus = h('div', { class: 'recipient-status', testid: 'recipient-status', attrs: { 'aria-live': 'polite', 'data-state': 'empty' } });
  const subject = h('input', { attrs: { type: 'text', maxlength: SUBJECT_MAX, required: true } });
  const counter = h('div', { class: 'hint counter', testid: 'subject-counter' }, `0 / ${SUBJECT_MAX}`);
  const body = h('textarea', { attrs: { rows: 8, required: true } });
  const error = h('div', { class: 'form-error', testid: 'compose-error', attrs: { role: 'alert' } });
  const submit = h('button', { class: 'primary', testid: 'compose-send', attrs: { type: 'submit' } }, 'Send');

  const form = h(
    'form',
    { class: 'card compose', testid: 'compose-form', attrs: { novalidate: true } },
    h('h1', null, 'New message'),
    field({ label: 'To', name: 'recipient', testid: 'compose-recipient', input: recipient, hint: recipientStatus }),
    field({ label: 'Subject', name: 'subject', testid: 'compose-subject', input: subject, hint: counter }),
    field({ label: 'Message', name: 'body', testid: 'compose-body', input: body }),
    error,
    h('div', { class: 'actions' }, h('a', { class: 'button', attrs: { href: '#/inbox' } }, 'Cancel'), submit),
  );

  function setStatus(state: string, ...content: (Node | string)[]): void {
    recipientStatus.dataset.state = state;
    replaceChildren(recipientStatus, ...content);
  }

  // Only the latest check may update the status: answers can arrive out of order.
  let checkSeq = 0;
  const check = debounce(async () => {
    const seq = ++checkSeq;
    const name = recipient.value.trim().toLowerCase();
    if (!name) return setStatus('empty');
    if (!USERNAME.test(name)) return setStatus('invalid', 'Usernames use only a–z, 0–9 and _.');
    setStatus('checking', 'Checking…');
    try {
      const user = await api.user(name);
      if (seq !== checkSeq || !scope.alive) return;
      ctx.presence.set(user.username, user.online);
      setStatus('ok', ctx.presence.dot(user.username), ' ', `${user.username} is ${user.online ? 'online' : 'offline'}`);
    } catch (err) {
      if (seq !== checkSeq || !scope.alive) return;
      if (err instanceof ApiError && err.status === 404) setStatus('missing', 'No user by that name.');
      else setStatus('error', 'Could not check this name right now.');
    }
  }, 300);
  scope.add(() => check.cancel());
  recipient.addEventListener('input', () => {
    showFieldErrors(form, {});
    check();
  });
  subject.addEventListener('input', () => {
    counter.textContent = `${[...subject.value].length} / ${SUBJECT_MAX}`;
  });

  let pending: { key: string; clientId: string } | null = null;
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    error.textContent = '';
    const to = recipient.value.trim().toLowerCase();
    const subj = subject.value.trim();
    const text = body.value;
    const local: Record<string, string[]> = {};
    if (!to) local.recipient = ['Who is this for?'];
    else if (!USERNAME.test(to)) local.recipient = ['Usernames use only a–z, 0–9 and _.'];
    if (!subj) local.subject = ['Add a subject.'];
    else if ([...subj].length > SUBJECT_MAX) local.subject = [`At most ${SUBJECT_MAX} characters.`];
    if (!text.trim()) local.body = ['Write a message.'];
    showFieldErrors(form, local);
    if (Object.keys(local).length) return;

    const key = JSON.stringify([to, subj, text]);
    if (!pending || pending.key !== key) pending = { key, clientId: newClientId() };
    submit.disabled = true;
    try {
      const ack = await ctx.rt.request('message:send', {
        recipient: to,
        subject: subj,
        body: text,
        client_id: pending.clientId,
      });
      if (!scope.alive) return;
      if (ack.status) {
        ctx.navigate(threadHref(ack.message.thread_id));
        return;
      }
      const slot = FIELD_FOR_CODE[ack.code];
      if (slot) showFieldErrors(form, { [slot]: [ack.message] });
      else error.textContent = ack.message;
    } finally {
      submit.disabled = false;
    }
  });

  if (recipient.value) check();
  queueMicrotask(() => (recipient.value ? subject : recipient).focus());
  return { el: h('section', { class: 'compose-page' }, form), destroy: () => scope.dispose() };
}
