// A group's member panel: who is in it and who may remove others, and (for members) add,
// remove, leave and rename; blocking one member (or unblocking) is offered beside each name. Changes go through the socket, and the panel shows them when
// `thread:updated` comes back (to every member's tabs, the actor's too): one path for what
// this tab did and what others did, so acks and events never race to draw the list.

import { ApiError, type Thread } from '../api';
import type { Ack, ThreadBody } from '../generated/events';
import { confirmButton } from '../components';
import { h, replaceChildren } from '../dom';
import type { Ctx } from '../state';

const SUBJECT_MAX = 70;

export interface MembersPanel {
  el: HTMLElement;
  update(t: Thread): void;
}

export function membersPanel(ctx: Ctx, threadId: string): MembersPanel {
  const me = ctx.me.username;
  const summary = h('summary', { class: 'members-summary', testid: 'members-toggle' }, 'Members');
  const list = h('ul', { class: 'member-list', testid: 'member-list', attrs: { 'aria-label': 'Members' } });

  // ---- add
  const addInput = h('input', {
    testid: 'member-add-input',
    attrs: { type: 'text', name: 'username', autocomplete: 'off', autocapitalize: 'none', spellcheck: 'false', maxlength: 32, 'aria-label': 'Username to add' },
  });
  const addBtn = h('button', { class: 'small-button', testid: 'member-add-submit', attrs: { type: 'submit' } }, 'Add');
  const addError = h('div', { class: 'field-error', testid: 'member-add-error', attrs: { role: 'alert' } });
  const addForm = h(
    'form',
    { class: 'inline-form', testid: 'member-add-form' },
    h('label', { class: 'inline-label' }, 'Add someone', h('span', { class: 'inline-row' }, addInput, addBtn)),
    addError,
  );
  addForm.addEventListener('submit', (e) => {
    e.preventDefault();
    const username = addInput.value.trim().toLowerCase();
    if (!username) return void (addError.textContent = 'Whom should we add?');
    void run(addBtn, addError, () => ctx.rt.request('thread:add', { thread_id: threadId, username }), () => (addInput.value = ''));
  });

  // ---- rename
  const renameInput = h('input', {
    testid: 'rename-input',
    attrs: { type: 'text', name: 'subject', maxlength: SUBJECT_MAX, 'aria-label': 'Conversation name' },
  });
  const renameBtn = h('button', { class: 'small-button', testid: 'rename-submit', attrs: { type: 'submit' } }, 'Rename');
  const renameError = h('div', { class: 'field-error', testid: 'rename-error', attrs: { role: 'alert' } });
  const renameForm = h(
    'form',
    { class: 'inline-form', testid: 'rename-form' },
    h('label', { class: 'inline-label' }, 'Name', h('span', { class: 'inline-row' }, renameInput, renameBtn)),
    renameError,
  );
  let renameDirty = false;
  renameInput.addEventListener('input', () => (renameDirty = true));
  renameForm.addEventListener('submit', (e) => {
    e.preventDefault();
    const subject = renameInput.value.trim();
    if (!subject) return void (renameError.textContent = 'Give the conversation a name.');
    if ([...subject].length > SUBJECT_MAX) return void (renameError.textContent = `At most ${SUBJECT_MAX} characters.`);
    void run(renameBtn, renameError, () => ctx.rt.request('thread:rename', { thread_id: threadId, subject }), () => (renameDirty = false));
  });

  // ---- leave (made anew for each membership: a confirmed one stays disabled)
  const leaveSlot = h('div', { class: 'leave' });
  const leaveButton = () =>
    confirmButton({
      label: 'Leave conversation',
      question: 'Leave this conversation?',
      testid: 'thread-leave',
      action: async () => {
        const ack = await ctx.rt.request('thread:remove', { thread_id: threadId, username: me });
        return ack.status ? null : ack.message;
      },
    });

  const actions = h('div', { class: 'member-actions' }, addForm, renameForm, leaveSlot);
  const el = h('details', { class: 'members', testid: 'members-panel' }, summary, h('div', { class: 'members-body' }, list, actions));

  /** Sends one change and shows the server's refusal next to its form. */
  async function run(button: HTMLButtonElement, error: HTMLElement, request: () => Promise<Ack<ThreadBody>>, done: () => void): Promise<void> {
    error.textContent = '';
    button.disabled = true;
    try {
      const ack = await request();
      if (ack.status) done();
      else error.textContent = ack.message;
    } finally {
      button.disabled = false;
    }
  }

  function memberRow(t: Thread, username: string, canRemove: boolean): HTMLElement {
    const holder = username === t.created_by;
    return h(
      'li',
      { class: 'member', testid: 'member-row', attrs: { 'data-username': username, 'data-can-remove': String(holder) } },
      ctx.presence.dot(username),
      ' ',
      h('span', { class: 'member-name' }, username),
      username === me ? h('span', { class: 'muted' }, ' (you)') : null,
      holder ? h('span', { class: 'tag', testid: 'member-remover', attrs: { title: 'Can remove members' } }, 'admin') : null,
      canRemove && username !== me
        ? h(
            'span',
            { class: 'member-remove' },
            confirmButton({
              label: 'Remove',
              question: `Remove ${username}?`,
              testid: 'member-remove',
              ariaLabel: `Remove ${username} from the conversation`,
              action: async () => {
                const ack = await ctx.rt.request('thread:remove', { thread_id: threadId, username });
                return ack.status ? null : ack.message;
              },
            }),
          )
        : null,
      username !== me ? blockControl(username) : null,
    );
  }

  /** "Block" (asked first) or "Unblock" for one member; nothing until the block list is known. */
  function blockControl(username: string): HTMLElement | null {
    if (ctx.blocks.list.value === null) return null;
    if (ctx.blocks.has(username)) {
      const error = h('span', { class: 'error small', attrs: { role: 'alert' } });
      const button = h(
        'button',
        {
          class: 'link',
          testid: 'member-unblock',
          attrs: { type: 'button', 'aria-label': `Unblock ${username}` },
          on: {
            click: async () => {
              button.disabled = true;
              try {
                await ctx.blocks.unblock(username); // the list's change redraws this row
              } catch (err) {
                error.textContent = err instanceof ApiError ? err.message : 'Could not unblock.';
                button.disabled = false;
              }
            },
          },
        },
        'Unblock',
      );
      return h('span', { class: 'member-block' }, h('span', { class: 'tag', testid: 'member-blocked' }, 'blocked'), ' ', button, error);
    }
    return h(
      'span',
      { class: 'member-block' },
      confirmButton({
        label: 'Block',
        question: `Block ${username}?`,
        testid: 'member-block',
        ariaLabel: `Block ${username}: you will not see their new messages`,
        action: async () => {
          try {
            await ctx.blocks.block(username);
            return null;
          } catch (err) {
            return err instanceof ApiError ? err.message : 'Could not block.';
          }
        },
      }),
    );
  }

  function update(t: Thread): void {
    const member = t.participants.includes(me);
    if (el.dataset.member !== String(member)) replaceChildren(leaveSlot, leaveButton());
    const canRemove = member && t.created_by === me;
    el.hidden = t.kind !== 'group';
    el.dataset.member = String(member);
    replaceChildren(summary, `Members (${t.participants.length})`);
    replaceChildren(list, ...t.participants.map((p) => memberRow(t, p, canRemove)));
    actions.hidden = !member;
    if (!renameDirty && document.activeElement !== renameInput) renameInput.value = t.subject;
  }

  return { el, update };
}
