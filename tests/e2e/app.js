// What a user does in the Missive web client, as small steps the scenarios read like stories with.

import assert from 'node:assert/strict';
import { WAIT, eventually } from './harness.js';

export const PASSWORD = 'correct horse battery';

export const rowFor = (page, threadId) => page.locator(`[data-testid="thread-row"][data-thread-id="${threadId}"]`);
export const messageRows = (page) => page.getByTestId('message-row');

export async function register(page, username, password = PASSWORD) {
  await page.goto('/#/register');
  await page.getByTestId('register-username').fill(username);
  await page.getByTestId('register-password').fill(password);
  await page.getByTestId('register-submit').click();
  await page.getByTestId('inbox').waitFor();
  await online(page);
}

export async function login(page, username, password = PASSWORD) {
  await page.goto('/#/login');
  await page.getByTestId('login-username').fill(username);
  await page.getByTestId('login-password').fill(password);
  await page.getByTestId('login-submit').click();
  await page.getByTestId('inbox').waitFor();
  await online(page);
}

/** Waits until the page's socket is connected (the header's connection status says so). */
export async function online(page, timeout = WAIT) {
  await page.locator('[data-testid="connection-status"][data-state="online"]').waitFor({ state: 'attached', timeout });
}

export async function openInbox(page) {
  await page.goto('/#/inbox');
  await page.getByTestId('inbox').waitFor();
  await online(page);
}

/**
 * Composes a new thread and returns its id (read from the thread view it lands on). `to` is one
 * name (a direct thread) or several (a group).
 */
export async function compose(page, { to, subject, body }) {
  await page.goto('/#/compose');
  await page.getByTestId('compose-recipient').fill(Array.isArray(to) ? to.join(', ') : to);
  await page.locator('[data-testid="recipient-status"][data-state="ok"]').waitFor();
  await page.getByTestId('compose-subject').fill(subject);
  await page.getByTestId('compose-body').fill(body);
  await page.getByTestId('compose-send').click();
  await page.getByTestId('thread-view').waitFor();
  await page.locator('[data-testid="message-row"]').first().waitFor();
  return page.getByTestId('thread-view').getAttribute('data-thread-id');
}

export async function openThread(page, threadId) {
  await page.goto(`/#/thread/${threadId}`);
  await page.getByTestId('thread-view').waitFor();
  await online(page);
}

/** Types a reply and presses Enter (Enter sends). */
export async function reply(page, text) {
  const input = page.getByTestId('reply-input');
  await input.fill(text);
  const before = await messageRows(page).count();
  await input.press('Enter');
  await eventually(async () => (await input.inputValue()) === '' && (await messageRows(page).count()) > before, { what: 'reply to be sent' });
}

export async function bodies(page) {
  return messageRows(page).getByTestId('message-body').allTextContents();
}

export async function waitForBody(page, text) {
  await eventually(async () => assert.ok((await bodies(page)).includes(text), `bodies: ${JSON.stringify(await bodies(page))}`), {
    what: `message "${text}"`,
  });
}

export async function unreadOf(page, threadId) {
  return rowFor(page, threadId).getAttribute('data-unread');
}

/** The message row showing `body` (bodies are unique in the stories). */
export const messageRow = (page, body) => messageRows(page).filter({ hasText: body });

/** Picks "Delete for me" in a message's menu; the inline "Delete message? Yes / No" follows. */
export async function chooseDelete(row) {
  await row.getByTestId('message-menu').click();
  await row.getByTestId('message-delete').click();
}

/** Picks "Edit" in one of one's own messages' menu; the message's text box opens in its place. */
export async function chooseEdit(row) {
  await row.getByTestId('message-menu').click();
  await row.getByTestId('message-edit').click();
  await row.getByTestId('edit-input').waitFor();
}

/** The thread view's history as a reader sees it: message bodies, and notices as "— text". */
export async function history(page) {
  return page.getByTestId('message-list').evaluate((list) =>
    [...list.children].flatMap((li) => {
      if (li.dataset.testid === 'message-row') return [li.querySelector('[data-testid="message-body"]').textContent];
      if (li.dataset.testid === 'change-notice') return [`— ${li.textContent}`];
      return [];
    }),
  );
}

export async function waitForNotice(page, text) {
  await eventually(async () => assert.ok((await history(page)).includes(`— ${text}`), `history: ${JSON.stringify(await history(page))}`), {
    what: `notice "${text}"`,
  });
}

/** Who the "Seen" mark under message `url` names (empty when there is none). */
export async function seenBy(page, url) {
  return page.locator(`[data-testid="seen-by"][data-url="${url}"]`).evaluateAll((els) => els.flatMap((e) => e.dataset.users.split(',')));
}

/** Opens a group's member panel (a disclosure) unless it is open already. */
export async function openMembers(page) {
  const panel = page.getByTestId('members-panel');
  await panel.waitFor();
  if (!(await panel.evaluate((d) => d.open))) await page.getByTestId('members-toggle').click();
  return panel;
}

export const memberRow = (page, username) => page.locator(`[data-testid="member-row"][data-username="${username}"]`);

/** Turns read receipts on or off on the settings page. */
export async function setReceipts(page, on) {
  await page.goto('/#/settings');
  const toggle = page.getByTestId('receipts-switch');
  await toggle.waitFor();
  if ((await toggle.getAttribute('aria-checked')) !== String(on)) await toggle.click();
  await eventually(async () => (await toggle.getAttribute('aria-checked')) === String(on) && !(await toggle.isDisabled()), {
    what: `read receipts ${on ? 'on' : 'off'}`,
  });
}
