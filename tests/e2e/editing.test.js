// Editing a message in the browser: alice edits what she sent bob. Her tab and both of bob's
// (two tabs on one device) show the new text with an "edited" label as it happens, and bob's
// inbox row its new preview; HTML stays text, and the server's refusals show beside the text box.

import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { chooseEdit, compose, messageRow, openInbox, openThread, register, rowFor, waitForBody } from './app.js';
import { MissiveServer, ensureScreenshotDir, eventually, launchBrowser, newDevice, uniqueName } from './harness.js';

const FIRST = 'Meet at five?';
const EDITED = 'Meet at six?\nSame place.';
const XSS = '<b>six</b> <img src=x onerror=alert(1)>';

describe('Editing a message in the browser', () => {
  const server = new MissiveServer();
  const names = { alice: uniqueName('alice'), bob: uniqueName('bob') };
  let browser;
  let aliceDevice;
  let bobDevice;
  let alice;
  let bob1; // bob's first tab
  let bob2; // bob's second tab, same device
  let threadId;
  let url; // the message alice edits
  let shots;

  const rowOf = (page) => page.locator(`[data-testid="message-row"][data-url="${url}"]`);
  const bodyOf = (page) => rowOf(page).getByTestId('message-body').textContent();
  const editInput = () => rowOf(alice).getByTestId('edit-input');

  /** Waits until `page` shows the message as `text`, labelled "edited". */
  async function seesEdited(page, text) {
    await eventually(async () => assert.equal(await bodyOf(page), text), { what: `the edited text in ${page === alice ? 'alice’s tab' : 'a tab of bob’s'}` });
    await rowOf(page).getByTestId('edited-label').waitFor({ state: 'visible' });
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

  test('alice writes to bob, who has the thread open in two tabs: no "edited" label yet', async () => {
    alice = await aliceDevice.newPage();
    await register(alice, names.alice);
    bob1 = await bobDevice.newPage();
    await register(bob1, names.bob);
    bob2 = await bobDevice.newPage();
    await openInbox(bob2);

    threadId = await compose(alice, { to: names.bob, subject: 'This evening', body: FIRST });
    url = await messageRow(alice, FIRST).getAttribute('data-url');
    assert.ok(url, 'message url');
    for (const tab of [bob1, bob2]) {
      await openThread(tab, threadId);
      await waitForBody(tab, FIRST);
    }
    for (const page of [alice, bob1, bob2]) assert.ok(await rowOf(page).getByTestId('edited-label').isHidden(), 'not edited yet');
  });

  test('bob’s menu on alice’s message offers no Edit', async () => {
    await bob1.bringToFront(); // a background tab animates slowly, which makes clicks wait
    await rowOf(bob1).getByTestId('message-menu').click();
    await rowOf(bob1).getByTestId('message-delete').waitFor({ state: 'visible' });
    assert.equal(await rowOf(bob1).getByTestId('message-edit').count(), 0);
    await bob1.keyboard.press('Escape');
    await rowOf(bob1).getByTestId('message-menu-items').waitFor({ state: 'hidden' });
  });

  test('alice edits from the menu: Escape cancels, Enter saves, and every tab shows the new text, labelled "edited"', async () => {
    // a change of mind first: Escape puts the message back as it was
    await chooseEdit(rowOf(alice));
    assert.equal(await editInput().inputValue(), FIRST, 'the text box starts with the message');
    await editInput().fill('Never mind');
    await editInput().press('Escape');
    await rowOf(alice).getByTestId('edit-box').waitFor({ state: 'detached' });
    assert.equal(await bodyOf(alice), FIRST);
    assert.ok(await rowOf(alice).getByTestId('edited-label').isHidden());

    await chooseEdit(rowOf(alice));
    await editInput().fill('Meet at six?');
    await editInput().press('Shift+Enter'); // a new line, not a save
    await editInput().pressSequentially('Same place.');
    await alice.screenshot({ path: path.join(shots, 'editing.png') });
    await editInput().press('Enter');
    await rowOf(alice).getByTestId('edit-box').waitFor({ state: 'detached' });

    for (const page of [alice, bob1, bob2]) await seesEdited(page, EDITED);
    // the full time of the edit on hover, like a message's time
    const label = rowOf(bob2).getByTestId('edited-label');
    assert.match(await label.getAttribute('title'), /^Edited \S/);
    const sent = Date.parse(await rowOf(bob2).getByTestId('message-time').getAttribute('datetime'));
    const edited = Date.parse(await label.getAttribute('datetime'));
    assert.ok(edited >= sent, `edited ${edited} after sent ${sent}`);
    assert.equal(await bob1.getByTestId('message-row').count(), 1, 'still one message: edited in place');
    await alice.screenshot({ path: path.join(shots, 'edited.png') });
  });

  test('the inbox preview follows an edit of the last message, and a body that looks like HTML stays text', async () => {
    await openInbox(bob2);
    const snippet = rowFor(bob2, threadId).getByTestId('thread-snippet');
    await eventually(async () => (await snippet.textContent()).includes('Meet at six? Same place.'), { what: 'the edited preview' });

    await chooseEdit(rowOf(alice));
    await editInput().fill(XSS);
    await rowOf(alice).getByTestId('edit-save').click();
    await rowOf(alice).getByTestId('edit-box').waitFor({ state: 'detached' });

    await eventually(async () => (await snippet.textContent()).includes(XSS), { what: 'the preview, as text' });
    for (const page of [alice, bob1]) await seesEdited(page, XSS);
    for (const page of [alice, bob1]) assert.equal(await page.locator('[data-testid="message-list"] img, [data-testid="message-list"] b').count(), 0);
    assert.equal(await bob2.locator('[data-testid="thread-list"] img, [data-testid="thread-list"] b').count(), 0);

    // the history has it too: after a reload, the edited text and its label
    await bob1.reload();
    await bob1.getByTestId('thread-view').waitFor();
    await seesEdited(bob1, XSS);
    assert.deepEqual(aliceDevice.dialogs, []);
    assert.deepEqual(bobDevice.dialogs, []);
  });

  test('the server’s refusals show beside the text box, which keeps what was typed', async () => {
    await chooseEdit(rowOf(alice));
    const error = rowOf(alice).getByTestId('edit-error');

    await editInput().fill('   ');
    await rowOf(alice).getByTestId('edit-save').click();
    await eventually(async () => (await error.textContent()).trim().length > 0, { what: 'an empty edit refused' });
    assert.equal(await editInput().inputValue(), '   ');

    const long = 'x'.repeat(20_000); // well past MISSIVE_MAX_BODY (default 5000)
    await editInput().fill(long);
    const before = await error.textContent();
    await editInput().press('Enter');
    await eventually(async () => (await error.textContent()).trim().length > 0 && (await error.textContent()) !== before, {
      what: 'a too long edit refused',
    });
    assert.equal(await editInput().inputValue(), long, 'the text is kept');
    assert.ok(await rowOf(alice).getByTestId('edit-box').isVisible(), 'the text box stays open');

    await editInput().press('Escape');
    await rowOf(alice).getByTestId('edit-box').waitFor({ state: 'detached' });
    for (const page of [alice, bob1]) assert.equal(await bodyOf(page), XSS, 'nothing changed');
  });

  test('no page script failed and nothing ran an alert', () => {
    for (const d of [aliceDevice, bobDevice]) {
      assert.deepEqual(d.errors, []);
      assert.deepEqual(d.dialogs, []);
    }
  });
});
