// Group conversations in the browser: alice, bob and carol on three devices, dave on a fourth.
// A group is started, grows, loses a member and its creator; notices of each change show in
// place; "Seen" marks follow what each member read, and go when receipts are turned off.

import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  bodies,
  compose,
  history,
  login,
  memberRow,
  messageRow,
  openInbox,
  openMembers,
  openThread,
  register,
  reply,
  rowFor,
  seenBy,
  setReceipts,
  unreadOf,
  waitForBody,
  waitForNotice,
} from './app.js';
import { MissiveServer, ensureScreenshotDir, eventually, launchBrowser, newDevice, uniqueName } from './harness.js';
import { apiUser } from './seed.js';

describe('Group conversations in the browser', () => {
  const server = new MissiveServer();
  const names = { alice: uniqueName('alice'), bob: uniqueName('bob'), carol: uniqueName('carol'), dave: uniqueName('dave') };
  const devices = {};
  let browser;
  let alice;
  let bob;
  let carol;
  let dave;
  let groupId;
  let shots;

  const urlOf = (page, body) => messageRow(page, body).getAttribute('data-url');
  const readOnly = (page) => page.locator('[data-testid="thread-view"][data-readonly="true"]');

  before(async () => {
    shots = ensureScreenshotDir();
    await server.start();
    browser = await launchBrowser();
    for (const who of Object.keys(names)) devices[who] = await newDevice(browser, server.url);
  });

  after(async () => {
    await browser?.close().catch(() => {});
    await server.stop().catch(() => {});
    server.cleanup();
    for (const [who, d] of Object.entries(devices)) if (d.errors.length) console.error(`page errors (${who}):`, d.errors);
  });

  test('alice starts a group with bob and carol, who both see it arrive', async () => {
    alice = await devices.alice.newPage();
    bob = await devices.bob.newPage();
    carol = await devices.carol.newPage();
    await register(alice, names.alice);
    await register(bob, names.bob);
    await register(carol, names.carol);
    await apiUser(server.url, names.dave); // dave signs in later

    groupId = await compose(alice, { to: [names.bob, names.carol], subject: 'Weekend trip', body: 'Where shall we go?' });
    assert.ok(groupId, 'thread id');
    await alice.locator('[data-testid="thread-view"][data-kind="group"]').waitFor();
    assert.equal(await alice.getByTestId('thread-title').textContent(), 'Weekend trip');

    for (const [tab, other] of [
      [bob, names.carol],
      [carol, names.bob],
    ]) {
      const row = rowFor(tab, groupId);
      await row.waitFor();
      assert.equal(await row.getAttribute('data-kind'), 'group');
      assert.equal(await row.getByTestId('thread-subject').textContent(), 'Weekend trip');
      const who = await row.getByTestId('thread-participants').textContent();
      assert.ok(who.includes(names.alice) && who.includes(other), `participants: ${who}`);
      await eventually(async () => (await unreadOf(tab, groupId)) === '1', { what: 'one unread message' });
    }
  });

  test('bob and carol reply; names head each run of messages, and "Seen" marks follow what each read', async () => {
    await openThread(bob, groupId);
    await waitForBody(bob, 'Where shall we go?');
    // bob read alice's message: alice's view says so, under it
    const first = await urlOf(alice, 'Where shall we go?');
    await eventually(async () => assert.deepEqual(await seenBy(alice, first), [names.bob]), { what: 'seen by bob' });

    await openThread(carol, groupId);
    await waitForBody(carol, 'Where shall we go?');
    await eventually(async () => (await alice.locator(`[data-testid="seen-by"][data-url="${first}"]`).textContent()) === 'Seen by everyone', {
      what: 'seen by everyone',
    });

    await reply(bob, 'The mountains!');
    await reply(bob, 'Or the lakes?');
    await reply(carol, 'The sea, surely.');
    for (const page of [alice, bob, carol]) await waitForBody(page, 'The sea, surely.');
    assert.deepEqual(await bodies(alice), ['Where shall we go?', 'The mountains!', 'Or the lakes?', 'The sea, surely.']);

    // one name over bob's two messages: the second continues the first
    const mountains = messageRow(alice, 'The mountains!');
    const lakes = messageRow(alice, 'Or the lakes?');
    assert.equal(await mountains.getAttribute('data-sender'), names.bob);
    assert.equal(await mountains.getByTestId('message-sender').textContent(), names.bob);
    assert.equal(await mountains.evaluate((el) => el.classList.contains('cont')), false);
    assert.equal(await lakes.evaluate((el) => el.classList.contains('cont')), true);
    assert.equal(await messageRow(alice, 'The sea, surely.').evaluate((el) => el.classList.contains('cont')), false);

    // bob has read carol's message (his own after it say nothing): his mark sits under hers;
    // carol's sits under bob's last message, the newest she read that is not her own
    const sea = await urlOf(alice, 'The sea, surely.');
    const lakesUrl = await lakes.getAttribute('data-url');
    await eventually(async () => assert.deepEqual(await seenBy(alice, sea), [names.bob]), { what: 'bob’s mark under carol’s message' });
    await eventually(async () => assert.deepEqual(await seenBy(alice, lakesUrl), [names.carol]), { what: 'carol’s mark under bob’s message' });
    await eventually(async () => assert.deepEqual(await seenBy(alice, first), []), { what: 'the marks to have moved on' });
    await alice.screenshot({ path: path.join(shots, 'group.png') });
  });

  test('alice adds dave: the notice shows in place for everyone, and dave sees the group from his joining on', async () => {
    dave = await devices.dave.newPage();
    await login(dave, names.dave);
    await dave.getByTestId('inbox-empty').waitFor();

    await openMembers(alice);
    await memberRow(alice, names.alice).waitFor();
    assert.equal(await memberRow(alice, names.alice).getAttribute('data-can-remove'), 'true');
    assert.equal(await memberRow(alice, names.bob).getAttribute('data-can-remove'), 'false');
    await memberRow(alice, names.bob).getByTestId('member-remove').waitFor();
    await openMembers(bob);
    await memberRow(bob, names.carol).waitFor();
    assert.equal(await bob.getByTestId('member-remove').count(), 0, 'only the creator may remove others');

    // a name that does not exist is refused next to the form
    await alice.getByTestId('member-add-input').fill('nobody_by_this_name');
    await alice.getByTestId('member-add-submit').click();
    await eventually(async () => (await alice.getByTestId('member-add-error').textContent()).length > 0, { what: 'unknown name refused' });

    await alice.getByTestId('member-add-input').fill(names.dave);
    await alice.getByTestId('member-add-submit').click();
    await memberRow(alice, names.dave).waitFor();
    await memberRow(bob, names.dave).waitFor();
    await waitForNotice(alice, `You added ${names.dave}`);
    await waitForNotice(bob, `${names.alice} added ${names.dave}`);
    await waitForNotice(carol, `${names.alice} added ${names.dave}`);
    // dave hears of it at once: the group is in his inbox
    await rowFor(dave, groupId).waitFor();

    await reply(alice, 'Welcome, dave!');
    for (const page of [bob, carol]) await waitForBody(page, 'Welcome, dave!');
    // in place: after what was said before he came, before what was said since
    for (const page of [alice, bob]) {
      const seen = await history(page);
      const notice = seen.findIndex((t) => t.startsWith('— ') && t.endsWith(`added ${names.dave}`));
      assert.ok(notice > seen.indexOf('The sea, surely.') && notice < seen.indexOf('Welcome, dave!'), `history: ${JSON.stringify(seen)}`);
    }

    await openThread(dave, groupId);
    await waitForBody(dave, 'Welcome, dave!');
    assert.deepEqual(await bodies(dave), ['Welcome, dave!'], 'nothing from before he joined');
    await reply(dave, 'Thanks! Count me in.');
    for (const page of [alice, bob, carol]) await waitForBody(page, 'Thanks! Count me in.');
  });

  test('alice removes carol: carol keeps what she had, read-only, and hears nothing new', async () => {
    const row = memberRow(alice, names.carol);
    await row.getByTestId('member-remove').click();
    await row.getByTestId('confirm-yes').click();
    await row.waitFor({ state: 'detached' });

    // carol is looking at the thread: it turns read-only in front of her
    await readOnly(carol).waitFor();
    await carol.getByTestId('thread-readonly').waitFor({ state: 'visible' });
    assert.ok(await carol.getByTestId('reply-input').isDisabled(), 'no more writing');
    await waitForNotice(carol, `${names.alice} removed you`);
    await waitForNotice(bob, `${names.alice} removed ${names.carol}`);
    await memberRow(bob, names.carol).waitFor({ state: 'detached' });

    await reply(bob, 'Just us now.');
    await waitForBody(alice, 'Just us now.');
    await waitForBody(dave, 'Just us now.');
    assert.ok(!(await bodies(carol)).includes('Just us now.'), 'carol hears nothing new');
    // nor does the server give it to her when she looks again
    await carol.reload();
    await readOnly(carol).waitFor();
    await waitForBody(carol, 'Thanks! Count me in.');
    assert.ok(!(await bodies(carol)).includes('Just us now.'), 'not in her history either');
    await openInbox(carol);
    await rowFor(carol, groupId).getByTestId('thread-gone').waitFor();
  });

  test('bob renames the group; the new name shows everywhere, as text', async () => {
    const name = '<b>Trip</b> & <img src=x onerror=alert(1)>';
    await openMembers(bob);
    await bob.getByTestId('rename-input').fill(name);
    await bob.getByTestId('rename-submit').click();
    for (const page of [alice, bob, dave]) {
      await eventually(async () => (await page.getByTestId('thread-title').textContent()) === name, { what: 'the new name' });
      assert.equal(await page.locator('[data-testid="thread-view"] img, [data-testid="thread-view"] b').count(), 0);
    }
    await waitForNotice(bob, `You renamed the conversation to “${name}”`);
    await waitForNotice(alice, `${names.bob} renamed the conversation to “${name}”`);
    await openInbox(dave);
    await eventually(async () => (await rowFor(dave, groupId).getByTestId('thread-subject').textContent()) === name, { what: 'the inbox row renamed' });
    assert.equal(await dave.locator('[data-testid="thread-list"] img').count(), 0);
    await openThread(dave, groupId);
  });

  test('in a direct thread the mark just says "Seen"', async () => {
    const direct = await compose(dave, { to: names.bob, subject: 'Just us two', body: 'Psst, bob' });
    await dave.locator('[data-testid="thread-view"][data-kind="direct"]').waitFor();
    await openThread(bob, direct);
    await waitForBody(bob, 'Psst, bob');
    const url = await urlOf(dave, 'Psst, bob');
    await eventually(async () => (await dave.locator(`[data-testid="seen-by"][data-url="${url}"]`).textContent()) === 'Seen', { what: 'Seen' });
    await openThread(bob, groupId);
    await openThread(dave, groupId);
  });

  test('read receipts turned off: alice sees no marks, and nobody sees hers; on again, they are back', async () => {
    await openThread(alice, groupId);
    await waitForBody(alice, 'Just us now.');
    await eventually(async () => (await alice.getByTestId('seen-by').count()) > 0, { what: 'marks while receipts are on' });

    await setReceipts(alice, false);
    await alice.reload();
    await alice.getByTestId('settings-view').waitFor();
    assert.equal(await alice.getByTestId('receipts-switch').getAttribute('aria-checked'), 'false', 'the setting is kept');

    await openThread(alice, groupId);
    await waitForBody(alice, 'Just us now.');
    assert.equal(await alice.getByTestId('seen-by').count(), 0, 'no marks for alice');
    // bob looks again: alice is in none of his marks
    await bob.reload();
    await waitForBody(bob, 'Just us now.');
    assert.ok(!(await bob.getByTestId('seen-by').evaluateAll((els, who) => els.some((e) => e.dataset.users.split(',').includes(who)), names.alice)));

    // receipts still flow between bob and dave, but not to alice
    await reply(bob, 'Anyone there?');
    await waitForBody(alice, 'Anyone there?');
    await waitForBody(dave, 'Anyone there?');
    const anyone = await urlOf(bob, 'Anyone there?');
    await eventually(async () => assert.deepEqual(await seenBy(bob, anyone), [names.dave]), { what: 'dave’s mark for bob' });
    assert.equal(await alice.getByTestId('seen-by').count(), 0, 'still no marks for alice');
    assert.deepEqual(await seenBy(bob, anyone), [names.dave], 'alice reading it told bob nothing');

    await setReceipts(alice, true);
    await openThread(alice, groupId);
    await eventually(async () => assert.deepEqual(await seenBy(alice, anyone), [names.dave]), { what: 'marks back for alice' });
  });

  test('alice leaves: her view turns read-only, and the right to remove passes to bob, the longest-standing member', async () => {
    await openMembers(alice);
    await alice.getByTestId('thread-leave').click();
    await alice.getByTestId('thread-leave-box').getByTestId('confirm-yes').click();
    await readOnly(alice).waitFor();
    await waitForNotice(alice, 'You left');
    await waitForNotice(bob, `${names.alice} left`);
    await waitForNotice(dave, `${names.alice} left`);

    await openMembers(bob);
    await memberRow(bob, names.alice).waitFor({ state: 'detached' });
    await bob.locator(`[data-testid="member-row"][data-username="${names.bob}"][data-can-remove="true"]`).waitFor();
    await memberRow(bob, names.dave).getByTestId('member-remove').waitFor();

    await reply(dave, 'Bye, alice!');
    await waitForBody(bob, 'Bye, alice!');
    assert.ok(!(await bodies(alice)).includes('Bye, alice!'), 'alice hears nothing new');
    await alice.screenshot({ path: path.join(shots, 'group-left.png') });
  });

  test('no page script failed and nothing ran an alert', () => {
    for (const [who, d] of Object.entries(devices)) {
      assert.deepEqual(d.errors, [], `${who}: page errors`);
      assert.deepEqual(d.dialogs, [], `${who}: dialogs`);
    }
  });
});
