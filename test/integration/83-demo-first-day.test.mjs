// The demo page as a new user first meets it, in Debian's headless Chromium: the
// no-token hint stays on the page, a rejected actuator is shown where the actuator's
// state goes (the connection badge still says Connected), and a garbage token never
// reads "signed in".
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';

import { startBroker, printBrokerLog, runCleanups, onCleanup } from './lib/index.mjs';
import { prepareSite, launchChromium, watchPage } from '../../demo/test-support/demo.mjs';

const UI_TIMEOUT = 5000;
let site;
let broker;
let browser;
let base;

before(async () => {
  site = prepareSite();
  broker = await startBroker({ pluginOpts: { http_dir: site.dir } });
  base = `http://127.0.0.1:${broker.wsPort}`;
  browser = await launchChromium();
}, { timeout: 60_000 });

afterEach(async (t) => {
  if (t.passed === false && broker) printBrokerLog(broker, `after failed test "${t.name}"`);
  await runCleanups();
});

after(async () => {
  await runCleanups();
  if (browser) await browser.close();
  if (broker) await broker.stop();
  if (site) site.remove();
});

async function load(url) {
  const context = await browser.newContext({ viewport: { width: 1000, height: 760 } });
  onCleanup(() => context.close());
  const page = await context.newPage();
  const problems = watchPage(page);
  await page.goto(url, { waitUntil: 'load' });
  return { page, problems };
}

test('without a token, the hint survives the connection being refused', async () => {
  const { page } = await load(`${base}/`);
  await page.locator('#status[data-state="lost"]').waitFor({ timeout: UI_TIMEOUT });
  const log = await page.locator('#log').innerText();
  assert.match(log, /No token in the page URL: open the URL that `make run` prints/);
  assert.match(log, /Connection lost: the server refused this page/);
  assert.equal(await page.locator('#user').innerText(), 'no token');
});

test('a garbage token never reads "signed in"', async () => {
  const { page } = await load(`${base}/?jid=garbage`);
  // 'unreadable token' until the server refuses it, 'not signed in' after: never signed in.
  assert.match(await page.locator('#user').innerText(), /^(unreadable token|not signed in)$/);
  await page.locator('#status[data-state="lost"]').waitFor({ timeout: UI_TIMEOUT });
  assert.equal(await page.locator('#user').innerText(), 'not signed in');
  // A well-formed token with a wrong signature reads as its sub until the server refuses it.
  const forged = broker.mint('mallory', { secret: 'x'.repeat(64) });
  const other = await load(`${base}/?jid=${forged}`);
  await other.page.locator('#status[data-state="lost"]').waitFor({ timeout: UI_TIMEOUT });
  assert.equal(await other.page.locator('#user').innerText(), 'not signed in');
});

test('a rejected actuator is shown as the actuator\'s state; the connection stays Connected', async () => {
  const { page } = await load(`${base}/?id=2000000&jid=${broker.mint('alice')}`);
  await page.locator('#state[data-on="rejected"]').waitFor({ timeout: UI_TIMEOUT });
  assert.match(await page.locator('#state-text').innerText(), /actuator 2000000: rejected/);
  assert.equal(await page.locator('#status').innerText(), 'Connected');
  assert.equal(await page.locator('#status').getAttribute('data-state'), 'connected');
  assert.equal(await page.locator('#send').isDisabled(), true, 'no commands to a rejected actuator');
  // Opening a valid one works on the same connection.
  await page.locator('#actuator-id').fill('42');
  await page.locator('#pick-form button').click();
  await page.locator('#state[data-on="unknown"]').waitFor({ timeout: UI_TIMEOUT });
  await page.locator('#send:not([disabled])').waitFor({ timeout: UI_TIMEOUT });
});
