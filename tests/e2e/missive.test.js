// Browser end-to-end stories: the real server binary and the built web client in Chromium.
// Two people (alice, bob) on separate devices; bob also has two tabs open.

import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  PASSWORD,
  bodies,
  chooseDelete,
  compose,
  login,
  messageRows,
  online,
  openInbox,
  openThread,
  register,
  reply,
  rowFor,
  unreadOf,
  waitForBody,
} from './app.js';
import { MissiveServer, ensureScreenshotDir, eventually, launchBrowser, newDevice, uniqueName } from './harness.js';

const XSS = '<img src=x onerror=alert(1)>';

describe('Missive in the browser', () => {
  const server = new MissiveServer();
  let browser;
  let aliceDevice;
  let bobDevice;
  let alice; // alice's only tab
  let bob1; // bob's first tab
  let bob2; // bob's second tab, same device (same cookie)
  const names = { alice: uniqueName('alice'), bob: uniqueName('bob') };
  let threadId;
  let shots;

  before(async () => {
    shots = ensureScreenshotDir();
    await server.start();
    browser = await launchBrowser();
    aliceDevice = await newDevice(browser, server.url);
    bobDevice = await newDevice(browser, server.url);
  });

  after(async () => {
    await browser?.close().catch(() => {});
    await server.stop().catch(() => {});
    server.cleanup();
    for (const d of [aliceDevice, bobDevice]) if (d?.errors.length) console.error('page errors:', d.errors);
  });

  test('people register, log out and log in again; bad input shows the server’s messages next to the fields', async () => {
    alice = await aliceDevice.newPage();
    await register(alice, names.alice);
    await alice.getByTestId('inbox-empty').waitFor();
    assert.equal(await alice.getByTestId('current-user').textContent(), names.alice);

    await alice.getByTestId('logout-button').click();
    await alice.getByTestId('login-form').waitFor();
    // Logged out for real: a reload stays on the login screen.
    await alice.reload();
    await alice.getByTestId('login-form').waitFor();

    await alice.getByTestId('login-username').fill(names.alice);
    await alice.getByTestId('login-password').fill('wrong password!');
    await alice.getByTestId('login-submit').click();
    await eventually(async () => (await alice.getByTestId('login-error').textContent()).length > 0, { what: 'login error' });

    await login(alice, names.alice);

    bob1 = await bobDevice.newPage();
    await bob1.goto('/#/register');
    await bob1.getByTestId('register-username').fill(names.alice); // taken
    await bob1.getByTestId('register-password').fill(PASSWORD);
    await bob1.getByTestId('register-submit').click();
    await eventually(async () => (await bob1.getByTestId('field-error-username').textContent()).length > 0, { what: 'username taken error' });
    await bob1.getByTestId('register-username').fill('no spaces allowed');
    await bob1.getByTestId('register-password').fill('short');
    await bob1.getByTestId('register-submit').click();
    await eventually(async () => (await bob1.getByTestId('field-error-password').textContent()).length > 0, { what: 'password field error' });

    await register(bob1, names.bob);
    bob2 = await bobDevice.newPage();
    await openInbox(bob2);
  });

  test('alice writes to bob: both of bob’s tabs show the new thread, highlighted, and the mailbox lights up', async () => {
    await alice.goto('/#/compose');
    await alice.getByTestId('compose-recipient').fill('nobody_here_at_all');
    await alice.locator('[data-testid="recipient-status"][data-state="missing"]').waitFor();

    threadId = await compose(alice, { to: names.bob, subject: 'Lunch on Friday?', body: 'Shall we try the new place?' });
    assert.ok(threadId, 'thread id');
    assert.match(alice.url(), new RegExp(`#/thread/${threadId}$`));

    for (const tab of [bob1, bob2]) {
      await rowFor(tab, threadId).waitFor();
      await eventually(async () => (await unreadOf(tab, threadId)) === '1', { what: 'unread count 1' });
      await tab.getByTestId('mailbox-indicator').waitFor({ state: 'visible' });
      assert.equal(await tab.getByTestId('mailbox-count').textContent(), '1');
      assert.equal(await rowFor(tab, threadId).getByTestId('thread-subject').textContent(), 'Lunch on Friday?');
    }
    await bob1.screenshot({ path: path.join(shots, 'inbox.png'), fullPage: true });
  });

  test('bob reads in one tab and the highlight clears in the other', async () => {
    await bob1.locator(`[data-thread-id="${threadId}"] [data-testid="thread-link"]`).click();
    await bob1.getByTestId('thread-view').waitFor();
    await waitForBody(bob1, 'Shall we try the new place?');

    await eventually(async () => (await unreadOf(bob2, threadId)) === '0', { what: 'highlight to clear in the other tab' });
    await bob2.getByTestId('mailbox-indicator').waitFor({ state: 'hidden' });
    await bob1.getByTestId('mailbox-indicator').waitFor({ state: 'hidden' });
  });

  test('replies travel live both ways: Enter sends, Shift+Enter is a new line, typing shows, presence is green', async () => {
    await openThread(alice, threadId);
    await bob1.getByTestId('reply-input').waitFor();

    // bob is connected, so alice sees him online
    await alice.locator(`[data-testid="thread-people"] [data-testid="presence-dot"][data-username="${names.bob}"][data-online="true"]`).waitFor();

    await bob1.getByTestId('reply-input').pressSequentially('Sure', { delay: 30 });
    await eventually(async () => (await alice.getByTestId('typing-indicator').textContent()) === `${names.bob} is typing…`, { what: 'typing indicator' });

    await bob1.getByTestId('reply-input').press('Shift+Enter');
    await bob1.getByTestId('reply-input').pressSequentially('12:30 works', { delay: 10 });
    await bob1.getByTestId('reply-input').press('Enter');
    await waitForBody(alice, 'Sure\n12:30 works');
    await waitForBody(bob1, 'Sure\n12:30 works');
    assert.equal(await bob1.getByTestId('reply-input').inputValue(), '');
    await eventually(async () => (await alice.getByTestId('typing-indicator').textContent()) === '', { what: 'typing indicator to clear' });

    // alice has the thread open and visible, so the reply is read at once: no highlight for her
    await alice.goto('/#/inbox');
    await rowFor(alice, threadId).waitFor();
    await eventually(async () => (await unreadOf(alice, threadId)) === '0', { what: 'alice unread 0' });

    // bob's inbox tab shows the thread with the newest snippet
    await eventually(async () => (await rowFor(bob2, threadId).getByTestId('thread-snippet').textContent()).includes('12:30 works'), { what: 'snippet update' });

    await openThread(alice, threadId);
    await reply(alice, 'See you there.');
    await waitForBody(bob1, 'See you there.');
    // times are compact: the local time of day, under a separator that names the day
    const time = messageRows(bob1).last().getByTestId('message-time');
    const clock = await time.evaluate((el) => new Date(el.getAttribute('datetime')).toLocaleTimeString(undefined, { timeStyle: 'short' }));
    assert.equal(await time.textContent(), clock);
    assert.equal(await bob1.getByTestId('day-label').last().textContent(), 'Today');
    await bob1.screenshot({ path: path.join(shots, 'thread.png') });
  });

  test('a message body that looks like HTML is shown as text and runs nothing', async () => {
    await reply(alice, XSS);
    await waitForBody(bob1, XSS);
    await waitForBody(alice, XSS);
    for (const page of [alice, bob1]) {
      assert.equal(await page.locator('[data-testid="message-list"] img').count(), 0);
    }
    await eventually(async () => (await rowFor(bob2, threadId).getByTestId('thread-snippet').textContent()).includes(XSS), { what: 'snippet as text' });
    assert.equal(await bob2.locator('[data-testid="thread-list"] img').count(), 0);
    assert.deepEqual(aliceDevice.dialogs, []);
    assert.deepEqual(bobDevice.dialogs, []);
  });

  test('deleting a message in one tab removes it from the other; deleting the thread empties the inbox', async () => {
    await openThread(bob2, threadId);
    await waitForBody(bob2, XSS);
    await bob1.bringToFront(); // a background tab animates slowly, which makes clicks wait
    const target = bob1.locator('[data-testid="message-row"]').filter({ hasText: 'See you there.' });
    const url = await target.getAttribute('data-url');
    await chooseDelete(target);
    await target.getByTestId('confirm-no').click(); // change of mind first
    await chooseDelete(target);
    await target.getByTestId('confirm-yes').click();

    for (const tab of [bob1, bob2]) {
      await tab.locator(`[data-testid="message-row"][data-url="${url}"]`).waitFor({ state: 'detached' });
    }
    // hidden for bob only: alice still has it
    assert.ok((await bodies(alice)).includes('See you there.'));

    await openInbox(bob2);
    await rowFor(bob2, threadId).waitFor();
    await bob1.getByTestId('thread-delete').click();
    await bob1.getByTestId('confirm-yes').click();
    await bob1.getByTestId('inbox').waitFor();
    await rowFor(bob2, threadId).waitFor({ state: 'detached' });
    await rowFor(bob1, threadId).waitFor({ state: 'detached' });
    await bob2.getByTestId('inbox-empty').waitFor();
    // hidden for bob only: alice still has the thread
    await openInbox(alice);
    await rowFor(alice, threadId).waitFor();
  });

  test('a phone-sized screen renders the inbox and the thread without sideways scrolling', async () => {
    const phone = await newDevice(browser, server.url, { viewport: { width: 360, height: 740 }, isMobile: true, hasTouch: true });
    try {
      const page = await phone.newPage();
      await login(page, names.alice);
      await rowFor(page, threadId).waitFor();
      const box = await rowFor(page, threadId).boundingBox();
      assert.ok(box && box.width <= 360 && box.width > 300, `row width ${box?.width}`);
      assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), 'no horizontal overflow');
      assert.ok(await page.getByTestId('nav-compose').isVisible());
      await page.screenshot({ path: path.join(shots, 'inbox-phone.png') });

      await openThread(page, threadId);
      await page.getByTestId('reply-input').waitFor({ state: 'visible' });
      await waitForBody(page, XSS);
      assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), 'no horizontal overflow in thread');
      await page.screenshot({ path: path.join(shots, 'thread-phone.png') });
    } finally {
      await phone.context.close();
    }
  });

  test('after a server restart the clients reconnect and catch up on what they missed', async () => {
    // alice's tab gets a gate on its socket: while it is shut, every (re)connection attempt fails,
    // so whatever happens meanwhile alice can only learn about by catching up afterwards. Her
    // reconnect should recover (the server replays every event she missed, in order), so the web
    // client refetches nothing: it counts recovered reconnects and resyncs on the page.
    await alice.close();
    alice = await aliceDevice.newPage();
    let shut = false;
    await alice.routeWebSocket(/\/socket\.io\//, (ws) => (shut ? ws.close() : ws.connectToServer()));
    await alice.route(/\/socket\.io\//, (route) => (shut ? route.abort() : route.continue()));
    // what a resync would reload: none of it may be fetched again by this tab once the gap starts
    const refetches = [];
    let gapStarted = false;
    alice.on('request', (req) => {
      if (gapStarted && /\/api\/v1\/(threads|unread|users)\b/.test(new URL(req.url()).pathname)) refetches.push(`${req.method()} ${req.url()}`);
    });
    const counters = () =>
      alice.evaluate(() => ({ recoveries: document.documentElement.dataset.recoveries, resyncs: document.documentElement.dataset.resyncs }));
    const mailbox = alice.getByTestId('mailbox-indicator');

    threadId = await compose(bob1, { to: names.alice, subject: 'Restart drill', body: 'before the restart' });
    await openThread(alice, threadId);
    await waitForBody(alice, 'before the restart');
    const doomed = alice.locator('[data-testid="message-row"]').filter({ hasText: 'before the restart' });
    const doomedUrl = await doomed.getAttribute('data-url');
    assert.ok(doomedUrl, 'message url');
    // read on open: nothing unread for alice before the gap
    await eventually(async () => (await mailbox.getAttribute('data-messages')) === '0', { what: 'alice has nothing unread' });
    const before = await counters();
    assert.match(before.recoveries ?? '', /^\d+$/, `recoveries ${before.recoveries}`);
    assert.match(before.resyncs ?? '', /^\d+$/, `resyncs ${before.resyncs}`);

    shut = true;
    gapStarted = true;
    await server.stop();
    for (const tab of [alice, bob1]) await tab.locator('[data-testid="connection-status"]:not([data-state="online"])').waitFor({ state: 'attached' });
    await server.start();
    await online(bob1, 60_000);

    await reply(bob1, 'sent while alice was away');
    assert.ok(!(await bodies(alice)).includes('sent while alice was away'), 'alice is still cut off');

    // Meanwhile alice, in another tab that is not cut off, sees the reply as unread, reads the
    // thread and deletes the message her cut-off tab is showing.
    const other = await aliceDevice.newPage();
    try {
      await other.bringToFront(); // a background tab animates slowly, which makes clicks wait
      await openInbox(other);
      await eventually(async () => (await unreadOf(other, threadId)) === '1', { what: 'the reply unread for alice' });
      const otherMailbox = other.getByTestId('mailbox-indicator');
      await eventually(async () => (await otherMailbox.getAttribute('data-messages')) === '1', { what: 'alice’s mailbox to show 1' });
      await openThread(other, threadId);
      await waitForBody(other, 'sent while alice was away');
      await eventually(async () => (await otherMailbox.getAttribute('data-messages')) === '0', { what: 'the read to clear alice’s mailbox' });
      const target = other.locator(`[data-testid="message-row"][data-url="${doomedUrl}"]`);
      await chooseDelete(target);
      await target.getByTestId('confirm-yes').click();
      await target.waitFor({ state: 'detached' });

      assert.ok(!(await bodies(alice)).includes('sent while alice was away'), 'alice’s first tab is still cut off');
      assert.equal(await alice.locator(`[data-testid="message-row"][data-url="${doomedUrl}"]`).count(), 1, 'the cut-off tab still shows the deleted message');

      // what the cut-off tab's mailbox is told once it is back (a replayed `unread` carries the
      // totals as they are when it is replayed, so by then the read has happened)
      await alice.evaluate(() => {
        const el = document.querySelector('[data-testid="mailbox-indicator"]');
        const seen = (window.__mailboxSeen = []);
        new MutationObserver(() => seen.push(el.dataset.messages)).observe(el, { attributes: true, attributeFilter: ['data-messages'] });
      });
      shut = false;
      await online(alice, 60_000);
      await waitForBody(alice, 'sent while alice was away');
      // the deletion and the read were replayed to the tab too
      await alice.locator(`[data-testid="message-row"][data-url="${doomedUrl}"]`).waitFor({ state: 'detached' });
      await eventually(async () => (await mailbox.getAttribute('data-messages')) === '0' && (await mailbox.getAttribute('data-threads')) === '0', {
        what: 'alice’s mailbox to show the read',
      });
      assert.ok(await mailbox.isHidden(), 'no unread indicator');
      const seen = await alice.evaluate(() => window.__mailboxSeen);
      assert.ok(seen.length > 0 && seen.at(-1) === '0', `the mailbox was updated after the reconnect and ends at 0: ${JSON.stringify(seen)}`);
      // one reconnect, and it recovered: nothing was refetched
      assert.deepEqual(await counters(), { recoveries: String(Number(before.recoveries) + 1), resyncs: before.resyncs });
      assert.deepEqual(refetches, [], 'no refetch after a recovered reconnect');
      assert.equal((await bodies(alice)).filter((b) => b === 'sent while alice was away').length, 1, 'the missed message shown once');
      assert.ok(!(await bodies(alice)).includes('before the restart'), 'the deleted message is gone');

      // and the live path works again after the reconnect
      await alice.bringToFront();
      await reply(alice, 'back again');
      await waitForBody(bob1, 'back again');
      await waitForBody(other, 'back again');
      assert.equal((await bodies(alice)).filter((b) => b === 'sent while alice was away').length, 1, 'no duplicates after the merge');
      assert.deepEqual(await counters(), { recoveries: String(Number(before.recoveries) + 1), resyncs: before.resyncs });
    } finally {
      await other.close();
    }
  });

  test('logging out in one tab logs out the other, and bob goes grey for alice', async () => {
    const dot = alice.locator(`[data-testid="thread-people"] [data-testid="presence-dot"][data-username="${names.bob}"]`);
    await eventually(async () => (await dot.getAttribute('data-online')) === 'true', { what: 'bob online' });
    await openInbox(bob2);
    await bob1.getByTestId('logout-button').click();
    await bob1.getByTestId('login-form').waitFor();
    // the session is revoked server-side: the other tab's socket is closed and it lands on the login screen
    await bob2.getByTestId('login-form').waitFor();
    await eventually(async () => (await dot.getAttribute('data-online')) === 'false', { what: 'bob offline' });
  });

  test('no page script failed along the way', () => {
    assert.deepEqual(aliceDevice.errors, []);
    assert.deepEqual(bobDevice.errors, []);
  });
});
