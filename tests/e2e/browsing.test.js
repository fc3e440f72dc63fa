// Browsing stories that need more data: paging the inbox and a long thread, inline errors,
// the admin dashboard.

import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { bodies, login, messageRows, online, openThread, waitForBody } from './app.js';
import { MissiveServer, ensureScreenshotDir, eventually, launchBrowser, newDevice, uniqueName } from './harness.js';
import { apiSend, apiUser, promote } from './seed.js';

describe('Browsing a busy mailbox', () => {
  const server = new MissiveServer();
  let browser;
  let device;
  let page;
  const carol = uniqueName('carol');
  const dan = uniqueName('dan');
  let longThread;
  let carolToken;
  let shots;

  before(async () => {
    shots = ensureScreenshotDir();
    await server.start();
    browser = await launchBrowser();
    carolToken = await apiUser(server.url, carol);
    await apiUser(server.url, dan);
    // 25 threads (one page is 20), then one long thread of 45 messages (one page is 30).
    for (let i = 1; i <= 25; i += 1) await apiSend(server.url, carolToken, { recipient: dan, subject: `Topic ${i}`, body: `opening ${i}` });
    const first = await apiSend(server.url, carolToken, { recipient: dan, subject: 'The long one', body: 'msg 1' });
    longThread = first.thread_id;
    for (let i = 2; i <= 45; i += 1) await apiSend(server.url, carolToken, { thread_id: longThread, body: `msg ${i}` });
    device = await newDevice(browser, server.url);
    page = await device.newPage();
    await login(page, dan);
  });

  after(async () => {
    await browser?.close().catch(() => {});
    await server.stop().catch(() => {});
    server.cleanup();
    if (device?.errors.length) console.error('page errors:', device.errors);
  });

  test('the inbox shows newest activity first and loads more as you scroll down', async () => {
    const rows = page.getByTestId('thread-row');
    await eventually(async () => (await rows.count()) >= 20, { what: 'first page' });
    assert.equal(await rows.first().getByTestId('thread-subject').textContent(), 'The long one');
    assert.equal(await rows.nth(1).getByTestId('thread-subject').textContent(), 'Topic 25');
    assert.equal(await page.getByTestId('mailbox-count').textContent(), '70');

    await page.locator('main').evaluate((m) => m.scrollTo(0, m.scrollHeight));
    await eventually(async () => (await rows.count()) === 26, { what: 'all 26 threads' });
    assert.equal(await rows.last().getByTestId('thread-subject').textContent(), 'Topic 1');
    await page.getByTestId('load-more').waitFor({ state: 'hidden' });
    const ids = await rows.evaluateAll((els) => els.map((e) => e.dataset.threadId));
    assert.equal(new Set(ids).size, ids.length, 'no thread listed twice');
  });

  test('a long thread opens at the newest message and loads older ones above, keeping your place', async () => {
    await openThread(page, longThread);
    const rows = messageRows(page);
    await eventually(async () => (await rows.count()) === 30, { what: 'newest page' });
    assert.equal(await rows.last().getByTestId('message-body').textContent(), 'msg 45');
    const scroller = page.getByTestId('message-scroll');
    const atBottom = await scroller.evaluate((s) => s.scrollHeight - s.scrollTop - s.clientHeight < 5);
    assert.ok(atBottom, 'opens scrolled to the bottom');

    // Scroll up to the oldest loaded message; the older page arrives above it.
    const anchor = page.getByTestId('message-body').filter({ hasText: /^msg 16$/ });
    await scroller.evaluate((s) => s.scrollTo(0, 0));
    await eventually(async () => (await rows.count()) === 45, { what: 'older page' });
    const bodies = await rows.getByTestId('message-body').allTextContents();
    assert.deepEqual(bodies, Array.from({ length: 45 }, (_, i) => `msg ${i + 1}`));
    // Still looking at about the same place: msg 16 is on screen, not thrown to the far bottom.
    const [box, view] = await Promise.all([anchor.boundingBox(), scroller.boundingBox()]);
    assert.ok(box.y >= view.y - box.height && box.y <= view.y + view.height, `msg 16 stays in view (${box.y} in ${view.y}..${view.y + view.height})`);
    assert.ok(await scroller.evaluate((s) => s.scrollTop > 0), 'scroll position was kept, not reset to the top');
    await page.getByTestId('thread-beginning').waitFor();

    // Opening the thread read it: its 45 messages left the mailbox count.
    await eventually(async () => (await page.getByTestId('mailbox-count').textContent()) === '25', { what: 'mailbox count 25' });
  });

  test('a new message scrolls the thread down only for a reader who is already at the bottom', async () => {
    const scroller = page.getByTestId('message-scroll');
    const rows = messageRows(page);
    const top = await scroller.evaluate((s) => s.scrollTop);
    await apiSend(server.url, carolToken, { thread_id: longThread, body: 'msg 46' });
    await eventually(async () => (await rows.count()) === 46, { what: 'msg 46' });
    await page.getByTestId('new-below').waitFor();
    assert.ok(Math.abs((await scroller.evaluate((s) => s.scrollTop)) - top) < 2, 'reading position kept');

    await page.getByTestId('new-below').click();
    await page.getByTestId('new-below').waitFor({ state: 'hidden' });
    await apiSend(server.url, carolToken, { thread_id: longThread, body: 'msg 47' });
    await eventually(async () => (await rows.count()) === 47, { what: 'msg 47' });
    await eventually(() => scroller.evaluate((s) => s.scrollHeight - s.scrollTop - s.clientHeight < 5), { what: 'stuck to the bottom' });
    await page.screenshot({ path: path.join(shots, 'thread-long.png') });
  });

  test('a reader who missed more than a page catches up without holes in the conversation', async () => {
    const other = await newDevice(browser, server.url);
    try {
      const p = await other.newPage();
      // A gate on the page's sockets: open, they pass through to the server; shut, they are refused.
      let shut = false;
      const open = new Set();
      await p.routeWebSocket(/\/socket\.io\//, (ws) => {
        if (shut) return void ws.close();
        ws.connectToServer();
        open.add(ws);
      });
      await p.route(/\/socket\.io\//, (route) => (shut ? route.abort() : route.continue()));
      await login(p, dan);
      await openThread(p, longThread);
      await waitForBody(p, 'msg 47');

      shut = true;
      for (const ws of open) await ws.close();
      await p.locator('[data-testid="connection-status"]:not([data-state="online"])').waitFor({ state: 'attached' });
      for (let i = 1; i <= 35; i += 1) await apiSend(server.url, carolToken, { thread_id: longThread, body: `gap ${i}` });
      shut = false;
      await online(p, 60_000);
      await waitForBody(p, 'gap 35');

      const full = [...Array.from({ length: 47 }, (_, i) => `msg ${i + 1}`), ...Array.from({ length: 35 }, (_, i) => `gap ${i + 1}`)];
      const contiguous = (list) => JSON.stringify(list) === JSON.stringify(full.slice(full.length - list.length));
      let shown = await bodies(p);
      assert.ok(contiguous(shown), `a contiguous run of the newest messages: ${JSON.stringify(shown)}`);
      await p.getByTestId('message-scroll').evaluate((s) => s.scrollTo(0, 0));
      await eventually(async () => (await messageRows(p).count()) > shown.length, { what: 'older page after the catch-up' });
      shown = await bodies(p);
      assert.ok(contiguous(shown), `still contiguous after loading older: ${JSON.stringify(shown)}`);
    } finally {
      await other.context.close();
    }
  });

  test('compose reports problems inline: unknown recipient, body too long', async () => {
    await page.goto('/#/compose');
    await page.getByTestId('compose-recipient').fill('nobody_by_this_name');
    await page.locator('[data-testid="recipient-status"][data-state="missing"]').waitFor();
    await page.getByTestId('compose-subject').fill('Hello?');
    await page.getByTestId('compose-body').fill('Anyone there?');
    await page.getByTestId('compose-send').click();
    await eventually(async () => (await page.getByTestId('field-error-recipient').textContent()).length > 0, { what: 'recipient error' });

    await page.getByTestId('compose-recipient').fill(carol);
    await page.locator('[data-testid="recipient-status"][data-state="ok"]').waitFor();
    await page.getByTestId('compose-body').fill('x'.repeat(5001));
    await page.getByTestId('compose-send').click();
    await eventually(async () => (await page.getByTestId('field-error-body').textContent()).length > 0, { what: 'body too long error' });
    assert.match(page.url(), /#\/compose/);
    assert.equal((await page.getByTestId('compose-body').inputValue()).length, 5001, 'the text is kept');
  });

  test('times are compact and local, in full on hover, under day separators that keep up as days pass', async () => {
    const other = await newDevice(browser, server.url);
    try {
      const p = await other.newPage();
      await p.clock.install();
      await login(p, dan);
      await openThread(p, longThread);
      const time = messageRows(p).last().getByTestId('message-time');
      await time.waitFor();
      const iso = await time.getAttribute('datetime');
      const [clock, full] = await p.evaluate(
        (t) => [new Date(t).toLocaleTimeString(undefined, { timeStyle: 'short' }), new Date(t).toLocaleString(undefined, { dateStyle: 'full', timeStyle: 'long' })],
        iso,
      );
      assert.equal(await time.textContent(), clock);
      assert.equal(await time.getAttribute('title'), full);
      const day = p.getByTestId('day-label').last();
      assert.equal(await day.textContent(), 'Today');
      await p.clock.fastForward(24 * 3600 * 1000);
      await eventually(async () => (await day.textContent()) === 'Yesterday', { what: 'Yesterday' });
    } finally {
      await other.context.close();
    }
  });

  test('a thread that does not exist (or is not yours) says so', async () => {
    await page.goto('/#/thread/AAAAAAAAAAAAAAAAAAAAAA');
    await page.getByTestId('thread-missing').waitFor();
  });

  test('the admin page: others are told they are not authorised; admins see live charts', async () => {
    await page.goto('/#/admin');
    await page.getByTestId('admin-denied').waitFor();

    await promote(server, carol);
    const admin = await newDevice(browser, server.url);
    try {
      const p = await admin.newPage();
      await login(p, carol);
      await p.goto('/#/admin');
      await p.getByTestId('admin-view').waitFor();
      // two seconds of stats draw a line with at least two points
      await eventually(async () => {
        const points = await p.locator('[data-testid="admin-chart-connections"] polyline').getAttribute('points', { timeout: 1000 });
        return points.trim().split(/\s+/).length >= 2;
      }, { what: 'a connections line' });
      const connections = Number(await p.getByTestId('admin-stat-connections').textContent());
      assert.ok(connections >= 1, `connections ${connections}`);
      assert.equal(await p.getByTestId('admin-denied').isVisible(), false);
      await p.screenshot({ path: path.join(shots, 'admin.png') });
    } finally {
      await admin.context.close();
    }
  });

  test('no page script failed along the way', () => {
    assert.deepEqual(device.errors, []);
  });
});
