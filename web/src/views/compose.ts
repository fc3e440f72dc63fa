// Start a new conversation: recipients (checked as you type; one name makes a direct thread,
// several a group), subject, body.

import { ApiError, api, type UserStatus } from '../api';
import { field, showFieldErrors } from '../components';
import { Scope, debounce, h, replaceChildren } from '../dom';
import type { SendMessage } from '../generated/events';
import { newClientId } from '../ids';
import { threadHref, type View } from '../router';
import type { Ctx } from '../state';

const SUBJECT_MAX = 70;
const USERNAME = /^[a-z0-9_]{1,32}$/;

/** Which form field a socket error code belongs to. */
const FIELD_FOR_CODE: Record<string, string> = {
  unknown_recipient: 'recipient',
  invalid_recipient: 'recipient',
  group_full: 'recipient',
  subject_too_long: 'subject',
  empty_subject: 'subject',
  empty_body: 'body',
  message_too_long: 'body',
};

/**
 * The names typed in the "To" field: separated by commas or spaces, lowercased, each once.
 * My own name is dropped when there are others (I am in every thread I start anyway).
 */
export function parseRecipients(value: string, me: string): string[] {
  const names = [...new Set(value.toLowerCase().split(/[\s,;]+/).filter(Boolean))];
  const rest = names.filter((n) => n !== me);
  return rest.length ? rest : names;
}

export function composeView(ctx: Ctx, prefill: URLSearchParams): View {
  const scope = new Scope();
  const me = ctx.me.username;
  const recipient = h('input', {
    attrs: { type: 'text', autocomplete: 'off', autocapitalize: 'none', spellcheck: 'false', maxlength: 1200, required: true },
  });
  recipient.value = prefill.get('to') ?? '';
  const recipientStatus = h('div', { class: 'recipient-status', testid: 'recipient-status', attrs: { 'aria-live': 'polite', 'data-state': 'empty' } });
  const recipientHint = h('div', { class: 'hint' }, 'One name, or several separated by commas for a group.');
  const subject = h('input', { attrs: { type: 'text', maxlength: SUBJECT_MAX, required: true } });
  const counter = h('div', { class: 'hint counter', testid: 'subject-counter' }, `0 / ${SUBJECT_MAX}`);
  const body = h('textarea', { attrs: { rows: 8, required: true } });
  const error = h('div', { class: 'form-error', testid: 'compose-error', attrs: { role: 'alert' } });
  const submit = h('button', { class: 'primary', testid: 'compose-send', attrs: { type: 'submit' } }, 'Send');

  const form = h(
    'form',
    { class: 'card compose', testid: 'compose-form', attrs: { novalidate: true } },
    h('h1', null, 'New message'),
    field({ label: 'To', name: 'recipient', testid: 'compose-recipient', input: recipient, hint: h('div', null, recipientHint, recipientStatus) }),
    field({ label: 'Subject', name: 'subject', testid: 'compose-subject', input: subject, hint: counter }),
    field({ label: 'Message', name: 'body', testid: 'compose-body', input: body }),
    error,
    h('div', { class: 'actions' }, h('a', { class: 'button', attrs: { href: '#/inbox' } }, 'Cancel'), submit),
  );

  function setStatus(state: string, ...content: (Node | string)[]): void {
    recipientStatus.dataset.state = state;
    replaceChildren(recipientStatus, ...content);
  }

  /** Each name's answer, kept while the page is open: typing a third name re-checks only it. */
  const known = new Map<string, UserStatus | null>();
  async function lookUp(name: string): Promise<UserStatus | null> {
    if (known.has(name)) return known.get(name)!;
    try {
      const user = await api.user(name);
      ctx.presence.set(user.username, user.online);
      known.set(name, user);
      return user;
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) {
        known.set(name, null);
        return null;
      }
      throw err;
    }
  }

  // Only the latest check may update the status: answers can arrive out of order.
  let checkSeq = 0;
  const check = debounce(async () => {
    const seq = ++checkSeq;
    const names = parseRecipients(recipient.value, me);
    if (!names.length) return setStatus('empty');
    const bad = names.filter((n) => !USERNAME.test(n));
    if (bad.length) return setStatus('invalid', `Not a username: ${bad.join(', ')}. Usernames use only a–z, 0–9 and _.`);
    setStatus('checking', 'Checking…');
    try {
      const users = await Promise.all(names.map(lookUp));
      if (seq !== checkSeq || !scope.alive) return;
      const missing = names.filter((_, i) => !users[i]);
      if (missing.length) return setStatus('missing', missing.length === 1 && names.length === 1 ? 'No user by that name.' : `No user named ${missing.join(', ')}.`);
      const found = users.filter((u): u is UserStatus => !!u);
      if (found.length === 1) {
        const [user] = found;
        return setStatus('ok', ctx.presence.dot(user.username), ' ', `${user.username} is ${user.online ? 'online' : 'offline'}`);
      }
      setStatus('ok', `A group of ${found.length + 1} with you: `, ...found.flatMap((u, i) => [i ? ', ' : '', ctx.presence.dot(u.username), ' ', u.username]));
    } catch {
      if (seq !== checkSeq || !scope.alive) return;
      setStatus('error', 'Could not check these names right now.');
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
    const to = parseRecipients(recipient.value, me);
    const subj = subject.value.trim();
    const text = body.value;
    const local: Record<string, string[]> = {};
    if (!to.length) local.recipient = ['Who is this for?'];
    else if (!to.every((n) => USERNAME.test(n))) local.recipient = ['Usernames use only a–z, 0–9 and _.'];
    if (!subj) local.subject = ['Add a subject.'];
    else if ([...subj].length > SUBJECT_MAX) local.subject = [`At most ${SUBJECT_MAX} characters.`];
    if (!text.trim()) local.body = ['Write a message.'];
    showFieldErrors(form, local);
    if (Object.keys(local).length) return;

    const key = JSON.stringify([to, subj, text]);
    if (!pending || pending.key !== key) pending = { key, clientId: newClientId() };
    // One name: a direct thread, sent as before; several: a group.
    const who: Pick<SendMessage, 'recipient' | 'recipients'> = to.length === 1 ? { recipient: to[0] } : { recipients: to };
    submit.disabled = true;
    try {
      const ack = await ctx.rt.request('message:send', { ...who, subject: subj, body: text, client_id: pending.clientId });
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
