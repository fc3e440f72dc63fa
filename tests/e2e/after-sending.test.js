// After sending, in the browser: alice and bob share a long conversation (seeded through the
// API), alice on one device, bob with two tabs on another. Reactions show live with their count
// and who gave them; a message removed for everyone becomes a placeholder everywhere (and in
// what quotes it, and in the inbox); a reply quotes what it answers, and the quote leads back to
// it; a search marks the matched words and opens the conversation at the message. On a server
// with a short edit window, a late removal is refused and the refusal shows beside the message.

import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { login, messageRows, openInbox, openThread, reply, rowFor, waitForBody } from './app.js';
import { MissiveServer, delay, ensureScreenshotDir, eventually, launchBrowser, newDevice, uniqueName } from './harness.js';
import { apiSend, apiUser } from './seed.js';

// An emoji (two UTF-16 units, one code point) before the words a search finds: the marks must
// still fall on them.
const ORIGINAL = '🎉 Lunch at the harbour on Friday?';
const FILLERS = 35; // more than a page (30): the original is not loaded when the thread opens
const filler = (i) => (i === 7 ? `Filler number ${i} <img src=x onerror=alert(1)>` : `Filler number ${i}`);
const LAST = filler(FILLERS);
const OOPS = 'Oops, wrong conversation';
const SCRATCH = 'Scratch that';
const ANSWER = 'Count me in, I will book a table.';
const PLACEHOLDER = 'This message was removed';

describe('After sending: reactions, removal for everyone, replies and search in the browser', () => {
  const server = new MissiveServer();
  const names = { alice: uniqueName('alice'), bob: uniqueName('bob') };
  let browser;
  let aliceDevice;
  let bobDevice;
  let alice;
  let bob1; // bob's thread tab
  let bob2; // bob's second tab (the inbox), same device
  let threadId;
  let originalUrl;
  let shots;

  const rowOf = (page, url) => page.locator(`[data-testid="message-row"][data-url="${url}"]`);
  const urlOf = (page, body) => messageRows(page).filter({ has: page.getByTestId('message-body').getByText(body, { exact: true }) }).getAttribute('data-url');
  const chip = (page, url, emoji) => rowOf(page, url).locator(`[data-testid="reaction-chip"][data-emoji="${emoji}"]`);
  // One look at the page: a chip that goes between a count() and a getAttribute() left the
  // latter waiting 30 s for it to come back.
  const countOf = (page, url, emoji) => chip(page, url, emoji).evaluateAll((els) => (els.length ? Number(els[0].getAttribute('data-count')) : 0));

  /** Picks `emoji` in the reaction picker of message `url`. */
  async function react(page, url, emoji) {
    await page.bringToFront(); // a background tab animates slowly, which makes clicks wait
    await rowOf(page, url).getByTestId('reaction-picker').click();
    await rowOf(page, url).locator(`[data-testid="reaction-option"][data-emoji="${emoji}"]`).click();
  }

  /** Picks an item (by test id) in the "⋯" menu of message `url`. */
  async function choose(page, url, item) {
    await page.bringToFront();
    await rowOf(page, url).getByTestId('message-menu').click();
    await rowOf(page, url).getByTestId(item).click();
  }

  /** Whether message `url` is highlighted and wholly inside the conversation's scrolling area. */
  async function highlightedInView(page, url) {
    await page.locator(`[data-testid="message-row"][data-url="${url}"][data-highlighted="true"]`).waitFor({ state: 'attached' });
    const inView = await page.evaluate((u) => {
      const row = document.querySelector(`[data-testid="message-row"][data-url="${u}"]`);
      const box = document.querySelector('[data-testid="message-scroll"]').getBoundingClientRect();
      const r = row.getBoundingClientRect();
      return r.top >= box.top - 1 && r.bottom <= box.bottom + 1;
    }, url);
    assert.ok(inView, 'the message is scrolled into view');
  }

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

  test('alice and bob share a conversation longer than a page; both have it open', async () => {
    const tokens = { alice: await apiUser(server.url, names.alice), bob: await apiUser(server.url, names.bob) };
    const first = await apiSend(server.url, tokens.alice, { recipient: names.bob, subject: 'Friday plans', body: ORIGINAL });
    threadId = first.thread_id;
    originalUrl = first.url;
    for (let i = 1; i <= FILLERS; i++) await apiSend(server.url, i % 2 ? tokens.bob : tokens.alice, { thread_id: threadId, body: filler(i) });

    alice = await aliceDevice.newPage();
    await login(alice, names.alice);
    bob1 = await bobDevice.newPage();
    await login(bob1, names.bob);
    bob2 = await bobDevice.newPage();
    await openInbox(bob2);
    for (const page of [alice, bob1]) {
      await openThread(page, threadId);
      await waitForBody(page, LAST);
    }
  });

  test('a reaction given in one tab shows in the other with its count and who gave it; a click on a chip adds or takes back one’s own', async () => {
    const url = await urlOf(alice, LAST);
    assert.equal(await rowOf(bob1, url).getByTestId('reaction-chip').count(), 0, 'no reactions yet');

    await react(alice, url, '👍');
    await eventually(async () => (await countOf(bob1, url, '👍')) === 1, { what: 'alice’s 👍 in bob’s tab' });
    const seen = chip(bob1, url, '👍');
    assert.equal(await seen.getByTestId('reaction-count').textContent(), '1');
    assert.equal(await seen.getAttribute('data-users'), names.alice);
    assert.equal(await seen.getAttribute('data-mine'), 'false');
    assert.ok((await seen.getAttribute('title')).includes(names.alice), 'who reacted, on hover');
    await eventually(async () => (await chip(alice, url, '👍').getAttribute('data-mine')) === 'true', { what: 'alice’s own chip pressed' });

    // bob clicks alice's chip: his 👍 joins hers
    await bob1.bringToFront();
    await seen.click();
    await eventually(async () => (await countOf(alice, url, '👍')) === 2, { what: 'two 👍 in alice’s tab' });
    assert.equal(await chip(alice, url, '👍').getAttribute('data-users'), `${names.alice},${names.bob}`);
    const title = await chip(alice, url, '👍').getAttribute('title');
    assert.ok(title.includes(names.bob) && title.includes('You'), `title: ${title}`);
    await eventually(async () => (await chip(bob1, url, '👍').getAttribute('data-mine')) === 'true', { what: 'bob’s chip pressed' });
    await bob1.screenshot({ path: path.join(shots, 'reactions.png') });

    // a second emoji from the picker, then bob takes his 👍 back with a click on his chip
    await react(bob1, url, '🎉');
    await eventually(async () => (await countOf(alice, url, '🎉')) === 1, { what: 'bob’s 🎉 in alice’s tab' });
    await chip(bob1, url, '👍').click();
    await eventually(async () => (await countOf(alice, url, '👍')) === 1, { what: 'back to one 👍' });
    assert.equal(await chip(alice, url, '👍').getAttribute('data-users'), names.alice);

    // the last one gone, the chip goes
    await alice.bringToFront();
    await chip(alice, url, '👍').click();
    await eventually(async () => (await countOf(bob1, url, '👍')) === 0, { what: 'the 👍 chip gone' });
    assert.equal(await countOf(bob1, url, '🎉'), 1, 'the other stays');
  });

  test('alice removes a message for everyone: it becomes a placeholder in every tab, without reactions or actions, and what quotes it says so', async () => {
    await reply(alice, OOPS);
    await waitForBody(bob1, OOPS);
    const oops = await urlOf(alice, OOPS);

    // bob reacts to it and answers it, quoting it
    await react(bob1, oops, '😮');
    await eventually(async () => (await countOf(alice, oops, '😮')) === 1, { what: 'bob’s 😮' });
    await choose(bob1, oops, 'message-reply');
    await bob1.getByTestId('reply-quote').waitFor({ state: 'visible' });
    await reply(bob1, 'Which one?');
    const which = await urlOf(bob1, 'Which one?');
    await waitForBody(alice, 'Which one?');
    await eventually(async () => (await rowOf(alice, which).getByTestId('quote-excerpt').textContent()) === OOPS, { what: 'the quote in alice’s tab' });

    // only the sender is offered removal for everyone
    await bob1.bringToFront();
    await rowOf(bob1, oops).getByTestId('message-menu').click();
    await rowOf(bob1, oops).getByTestId('message-delete').waitFor({ state: 'visible' });
    assert.equal(await rowOf(bob1, oops).getByTestId('message-remove-everyone').count(), 0);
    await bob1.keyboard.press('Escape');

    await choose(alice, oops, 'message-remove-everyone');
    await rowOf(alice, oops).getByTestId('confirm-yes').click();

    for (const page of [alice, bob1]) {
      const row = rowOf(page, oops);
      await row.getByTestId('message-removed').waitFor({ state: 'visible' });
      assert.equal(await row.getAttribute('data-removed'), 'true');
      assert.equal(await row.getByTestId('message-removed').textContent(), PLACEHOLDER);
      assert.equal(await row.getByTestId('message-body').textContent(), '', 'no body');
      assert.equal(await row.getByTestId('reaction-chip').count(), 0, 'no reactions');
      assert.equal(await row.getByTestId('message-menu').count(), 0, 'no actions');
      assert.equal(await row.getByTestId('reaction-picker').count(), 0, 'no reaction picker');
      // the reply quoting it now quotes a removed message
      const quote = rowOf(page, which).getByTestId('quote-excerpt');
      await eventually(async () => (await quote.getAttribute('data-removed')) === 'true', { what: 'the quote of a removed message' });
      assert.equal(await quote.textContent(), 'removed message');
    }
    await bob1.screenshot({ path: path.join(shots, 'removed.png') });

    // the inbox's preview of the last message follows too
    await reply(alice, SCRATCH);
    const snippet = rowFor(bob2, threadId).getByTestId('thread-snippet');
    await eventually(async () => (await snippet.textContent()).includes(SCRATCH), { what: 'the preview in bob’s inbox' });
    const scratch = await urlOf(alice, SCRATCH);
    await choose(alice, scratch, 'message-remove-everyone');
    await rowOf(alice, scratch).getByTestId('confirm-yes').click();
    await eventually(async () => (await snippet.textContent()).includes(PLACEHOLDER), { what: 'the placeholder in bob’s inbox' });
    assert.ok(!(await snippet.textContent()).includes(SCRATCH));

    // the history says so too, after a reload
    await bob1.reload();
    await bob1.getByTestId('thread-view').waitFor();
    await rowOf(bob1, scratch).getByTestId('message-removed').waitFor({ state: 'visible' });
    await rowOf(bob1, oops).getByTestId('message-removed').waitFor({ state: 'visible' });
    assert.equal(await rowOf(bob1, which).getByTestId('quote-excerpt').textContent(), 'removed message');
  });

  test('bob replies to an old message: the quote shows in alice’s tab, and clicking it scrolls back to the message and highlights it', async () => {
    // bob scrolls back to the first message (older pages load as he goes)
    await bob1.bringToFront();
    await eventually(
      async () => {
        if (await rowOf(bob1, originalUrl).count()) return true;
        const older = bob1.getByTestId('load-older');
        if (await older.isVisible()) await older.click();
        return false;
      },
      { what: 'the first message loaded' },
    );
    await choose(bob1, originalUrl, 'message-reply');
    const quote = bob1.getByTestId('reply-quote');
    await quote.waitFor({ state: 'visible' });
    assert.equal(await quote.getByTestId('reply-quote-sender').textContent(), names.alice);
    assert.equal(await quote.getByTestId('reply-quote-excerpt').textContent(), ORIGINAL);
    // a change of mind, then again
    await quote.getByTestId('reply-quote-cancel').click();
    await quote.waitFor({ state: 'hidden' });
    await choose(bob1, originalUrl, 'message-reply');
    await quote.waitFor({ state: 'visible' });
    await reply(bob1, ANSWER);
    await quote.waitFor({ state: 'hidden' });
    const answer = await urlOf(bob1, ANSWER);
    assert.equal(await rowOf(bob1, answer).getByTestId('message-quote').getAttribute('data-url'), originalUrl);

    // alice, from a fresh page: the first message is not among the newest
    await alice.bringToFront();
    await alice.reload();
    await alice.getByTestId('thread-view').waitFor();
    await waitForBody(alice, ANSWER);
    const shown = rowOf(alice, answer).getByTestId('message-quote');
    assert.equal(await shown.getByTestId('quote-sender').textContent(), 'You', 'alice wrote what is quoted');
    assert.equal(await shown.getByTestId('quote-excerpt').textContent(), ORIGINAL);
    assert.equal(await shown.getByTestId('quote-excerpt').getAttribute('data-removed'), 'false');

    await shown.click();
    await highlightedInView(alice, originalUrl);
    await alice.screenshot({ path: path.join(shots, 'reply-quote.png') });
  });

  test('a search marks the words it matched, and its result opens the conversation at the message', async () => {
    await openInbox(alice);
    const input = alice.getByTestId('search-input');
    await input.fill('lunch harb');
    await input.press('Enter');
    const result = alice.locator(`[data-testid="search-result"][data-url="${originalUrl}"]`);
    await result.waitFor();
    assert.equal(await alice.getByTestId('conversations').isHidden(), true, 'results in place of the conversations');
    assert.equal(await result.getByTestId('search-result-subject').textContent(), 'Friday plans');
    assert.equal(await result.getByTestId('search-result-sender').getAttribute('data-sender'), names.alice);
    assert.ok(await result.getByTestId('search-result-time').getAttribute('datetime'), 'the time');
    assert.equal(await result.getByTestId('search-result-body').textContent(), ORIGINAL, 'the whole text');
    const marks = await result.locator('mark').allTextContents();
    assert.equal(marks.length, 2, `marks: ${JSON.stringify(marks)}`);
    assert.equal(marks[0], 'Lunch');
    assert.ok(marks[1].startsWith('harb'), `marks: ${JSON.stringify(marks)}`);
    await alice.screenshot({ path: path.join(shots, 'search.png') });

    await result.getByTestId('search-result-link').click();
    await alice.locator(`[data-testid="thread-view"][data-thread-id="${threadId}"]`).waitFor();
    await highlightedInView(alice, originalUrl);

    // back: the results again
    await alice.goBack();
    await result.waitFor();
    assert.equal(await alice.getByTestId('search-input').inputValue(), 'lunch harb');

    // nothing found
    await input.fill('zebra');
    await input.press('Enter');
    await alice.getByTestId('search-empty').waitFor({ state: 'visible' });
    assert.match(await alice.getByTestId('search-empty').textContent(), /No results/);
    assert.equal(await alice.getByTestId('search-result').count(), 0);

    // the server's refusal, in its words
    await input.fill('x'.repeat(201));
    await alice.getByTestId('search-submit').click();
    await eventually(async () => (await alice.getByTestId('search-error').textContent()).trim().length > 0, { what: 'a too long query refused' });

    // a page at a time: "More results" while there are more
    await input.fill('filler');
    await input.press('Enter');
    const results = alice.getByTestId('search-result');
    await eventually(async () => (await results.count()) === 20, { what: 'the first page of results' });
    assert.equal(await alice.getByTestId('search-error').textContent(), '', 'the refusal is gone');
    await alice.getByTestId('search-more').click();
    await eventually(async () => (await results.count()) === FILLERS, { what: 'every result' });
    await alice.getByTestId('search-more').waitFor({ state: 'hidden' });
    // newest first, and a body that looks like HTML stays text
    assert.equal(await results.first().getByTestId('search-result-body').textContent(), LAST);
    assert.equal(await alice.locator('[data-testid="search-result-list"] img').count(), 0);
    const html = alice.locator('[data-testid="search-result-body"]', { hasText: '<img' });
    assert.equal(await html.count(), 1);

    // back to the conversations
    await alice.getByTestId('search-clear').click();
    await rowFor(alice, threadId).waitFor({ state: 'visible' });
  });

  test('no page script failed and nothing ran an alert', () => {
    for (const d of [aliceDevice, bobDevice]) {
      assert.deepEqual(d.errors, []);
      assert.deepEqual(d.dialogs, []);
    }
  });
});

describe('Removing a message for everyone once the edit window has closed', () => {
  const server = new MissiveServer();
  const names = { alice: uniqueName('alice'), bob: uniqueName('bob') };
  let browser;
  let aliceDevice;

  before(async () => {
    // This server alone has a one-second window: the variable is set only while it starts.
    const was = process.env.MISSIVE_EDIT_WINDOW;
    process.env.MISSIVE_EDIT_WINDOW = '1s';
    try {
      await server.start();
    } finally {
      if (was === undefined) delete process.env.MISSIVE_EDIT_WINDOW;
      else process.env.MISSIVE_EDIT_WINDOW = was;
    }
    browser = await launchBrowser();
    aliceDevice = await newDevice(browser, server.url);
  });

  after(async () => {
    await browser?.close().catch(() => {});
    await server.stop().catch(() => {});
    server.cleanup();
    if (aliceDevice?.errors.length) console.error('page errors:', aliceDevice.errors);
  });

  test('the server’s refusal shows beside the message, which stays as it was', async () => {
    const token = await apiUser(server.url, names.alice);
    await apiUser(server.url, names.bob);
    const body = 'Too late to take back';
    const sent = await apiSend(server.url, token, { recipient: names.bob, subject: 'Late', body });
    const alice = await aliceDevice.newPage();
    await login(alice, names.alice);
    await openThread(alice, sent.thread_id);
    await waitForBody(alice, body);
    await delay(1_500); // past the window

    const row = alice.locator(`[data-testid="message-row"][data-url="${sent.url}"]`);
    await row.getByTestId('message-menu').click();
    await row.getByTestId('message-remove-everyone').click();
    await row.getByTestId('confirm-yes').click();
    const error = row.getByTestId('confirm-error');
    await eventually(async () => (await error.textContent()).trim().length > 0, { what: 'the refusal beside the message' });
    assert.equal(await row.getByTestId('message-body').textContent(), body, 'the message stays');
    assert.ok(await row.getByTestId('message-removed').isHidden());
    assert.equal(await row.getAttribute('data-removed'), 'false');
    // its menu is back, to try something else
    await row.getByTestId('message-menu').waitFor({ state: 'visible' });
    assert.deepEqual(aliceDevice.errors, []);
    assert.deepEqual(aliceDevice.dialogs, []);
  });
});
