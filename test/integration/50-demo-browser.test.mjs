// The demo in a real browser: Debian's headless Chromium (playwright-core) loads the
// actuator terminal from the plugin's own HTTP port (plugin_opt_http_dir, laid out by
// demo/prepare.sh exactly as `make run` does), with a fresh token in the page URL. The
// simulated device (demo/device.mjs) speaks real MQTT to the same broker.
//   - the page and its @rails/actioncable ESM build are served by the plugin;
//   - typing "on" in the page reaches MQTT as {"user":"alice","message":"on"} and the
//     device's state answer shows up on the page;
//   - another user's command (a stock @rails/actioncable consumer in Node) scrolls by;
//   - the page opens on the actuator's current (retained) state, and shows it offline
//     when the device dies (its MQTT will), with plugin_opt_state_listener as in `make run`;
//   - the token may also come in the fragment (#jid=...), and actuators are separate;
//   - a watch-only user's command is refused, and the page says so and why;
//   - "status" is a request: the device's answer reaches the asking page alone;
//   - stopping the broker makes the page say "Connection lost".
// A screenshot of the page goes to /tmp/mosquitto-cable-demo.png.
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';

import {
  startBroker, printBrokerLog, runCleanups, createCable, actuatorParams, mqttConnect,
} from './lib/index.mjs';
import { prepareSite, startDevice, launchChromium, watchPage } from '../../demo/test-support/demo.mjs';

const SCREENSHOT = process.env.DEMO_SCREENSHOT || '/tmp/mosquitto-cable-demo.png';
const UI_TIMEOUT = 5000;

let site;
let broker;
let device;
let browser;
let page;
let problems;
let base;

before(async () => {
  site = prepareSite();
  // Everyone commands every actuator except dave, who only watches (as bob does in
  // config/acl.example, which `make run` uses).
  broker = await startBroker({
    state: true,
    pluginOpts: { http_dir: site.dir, acl_file: '$DIR/acl' },
    files: {
      acl: ['alice', 'bob', 'carol'].map((u) => `user ${u}\ntopic readwrite actuators/#\n`).join('')
        + 'user dave\ntopic read actuators/#\n',
    },
  });
  base = `http://127.0.0.1:${broker.wsPort}`;
  device = await startDevice(broker.mqttUrl, [42, 43]);
  browser = await launchChromium();
}, { timeout: 60_000 });

afterEach(async (t) => {
  if (t.passed === false) {
    if (broker) printBrokerLog(broker, `after failed test "${t.name}"`);
    if (device) process.stderr.write(`----- device output -----\n${device.output()}\n`);
    if (problems) process.stderr.write(`----- page problems -----\n${problems.join('\n')}\n`);
    if (page) {
      const text = await page.locator('#log').innerText().catch(() => '(page gone)');
      process.stderr.write(`----- page log -----\n${text}\n`);
    }
  }
  await runCleanups();
});

after(async () => {
  await runCleanups();
  if (browser) await browser.close();
  if (device) await device.stop();
  if (broker) await broker.stop();
  if (site) site.remove();
});

const entries = (p, kind) => p.locator(`#log li.entry[data-kind="${kind}"]`);

async function openPage(url) {
  const context = await browser.newContext({ viewport: { width: 1000, height: 760 } });
  const p = await context.newPage();
  const seen = watchPage(p);
  await p.goto(url, { waitUntil: 'load' });
  try {
    await p.locator('#status[data-state="connected"]').waitFor({ timeout: UI_TIMEOUT });
  } catch (e) {
    const status = await p.locator('#status').innerText().catch(() => '(none)');
    const log = await p.locator('#log').innerText().catch(() => '(none)');
    e.message += `\npage ${url}\nstatus: ${status}\npage log:\n${log}\npage problems:\n${seen.join('\n')}`;
    await context.close();
    throw e;
  }
  return { page: p, problems: seen, context };
}

test('the plugin serves the page and the client it imports', async () => {
  const index = await fetch(`${base}/?jid=whatever`);
  assert.equal(index.status, 200);
  assert.match(index.headers.get('content-type'), /^text\/html/);
  assert.match(await index.text(), /<title>Actuator terminal/);
  // A module script must come with a JavaScript MIME type or the browser refuses it.
  for (const file of ['/app.js', '/vendor/actioncable.esm.js']) {
    const r = await fetch(base + file);
    assert.equal(r.status, 200, file);
    assert.match(r.headers.get('content-type'), /^(text|application)\/javascript/, file);
    await r.arrayBuffer();
  }
});

test("the page opens on the actuator's current state, without a command", async () => {
  const token = broker.mint('dave');
  const p = await openPage(`${base}/?id=43&jid=${encodeURIComponent(token)}`);
  try {
    // The device published its state (retained) when it started; nobody has spoken.
    await p.page.locator('#state[data-on="off"]').waitFor({ timeout: UI_TIMEOUT });
    assert.match(await p.page.locator('#state-text').innerText(), /actuator 43 is OFF · device started/);
    assert.equal(await entries(p.page, 'cmd').count(), 0);
    assert.deepEqual(p.problems, [], 'the page logged errors or failed requests');
  } finally {
    await p.context.close();
  }
});

test('typing "on" in the page reaches the device, and its answer appears on the page', async () => {
  const token = broker.mint('alice', { expiresIn: '10m' });
  ({ page, problems } = await openPage(`${base}/?jid=${encodeURIComponent(token)}`));
  assert.equal(await page.locator('#user').innerText(), 'signed in as alice');
  assert.equal(await page.locator('#status').innerText(), 'Connected');

  const mqtt = await mqttConnect(broker.mqttUrl);
  await mqtt.subscribe('actuators/42/cmd');

  await page.locator('#command').fill('on');
  await page.locator('#command').press('Enter');

  // What the page spoke is what the device gets.
  const cmd = await mqtt.nextOn('actuators/42/cmd');
  assert.deepEqual(JSON.parse(cmd.text), { user: 'alice', message: 'on' });

  // Our own command scrolls by (the page streams actuators/42/cmd too) ...
  await entries(page, 'cmd').and(page.locator('[data-user="alice"][data-message="on"]'))
    .waitFor({ timeout: UI_TIMEOUT });
  // ... and the device's state answer arrives.
  const answer = entries(page, 'state').and(page.locator('[data-user="alice"][data-on="true"]'));
  await answer.waitFor({ timeout: UI_TIMEOUT });
  const text = await answer.innerText();
  assert.match(text, /actuator 42/);
  assert.match(text, /\bON\b/);
  assert.match(text, /on by alice \(you\)/);
  await page.locator('#state[data-on="on"]').waitFor({ timeout: UI_TIMEOUT });
  assert.match(await page.locator('#state-text').innerText(), /actuator 42 is ON/);

  // The quick buttons send too; an unknown command gets the device's error answer.
  await page.locator('.quick button[data-command="status"]').click();
  await entries(page, 'state').and(page.locator('[data-user="alice"]')).nth(1).waitFor({ timeout: UI_TIMEOUT });
  await page.locator('#command').fill('dance');
  await page.locator('#command').press('Enter');
  const error = entries(page, 'error').and(page.locator('[data-user="alice"][data-command="dance"]'));
  await error.waitFor({ timeout: UI_TIMEOUT });
  assert.match(await error.innerText(), /unknown command: dance/);

  assert.deepEqual(problems, [], 'the page logged errors or failed requests');
});

test("another user's command scrolls by on the page, with the device's answer", async () => {
  assert.ok(page, 'needs the page of the previous test');
  const bob = createCable(broker.urlFor(broker.mint('bob')));
  const sub = bob.subscribe(actuatorParams(42));
  await sub.confirmed();
  sub.perform('speak', { message: 'off' });

  const cmd = entries(page, 'cmd').and(page.locator('[data-user="bob"][data-message="off"]'));
  await cmd.waitFor({ timeout: UI_TIMEOUT });
  const cmdText = await cmd.innerText();
  assert.match(cmdText, /\bbob\b/);
  assert.doesNotMatch(cmdText, /\(you\)/);
  assert.match(cmdText, /\boff\b/);

  const answer = entries(page, 'state').and(page.locator('[data-user="bob"][data-on="false"]'));
  await answer.waitFor({ timeout: UI_TIMEOUT });
  assert.match(await answer.innerText(), /\bOFF\b.*off by bob/s);
  await page.locator('#state[data-on="off"]').waitFor({ timeout: UI_TIMEOUT });

  // Bob's Node consumer saw the device's answer too (same stream, same order).
  const got = [];
  for (;;) {
    const m = await sub.next();
    got.push(m);
    if (m && m.on === false && m.by === 'bob') break;
  }
  // First the actuator's current state (the retained value, right after the confirm),
  // then bob's command, then the device's answer.
  assert.equal(got[0].on, true);
  assert.equal(got[0].online, true);
  assert.deepEqual(got[1], { user: 'bob', message: 'off' });

  assert.deepEqual(problems, [], 'the page logged errors or failed requests');
  await page.screenshot({ path: SCREENSHOT });
  process.stderr.write(`# screenshot: ${SCREENSHOT}\n`);
});

test('a token in the fragment works, and each page sees only its own actuator', async () => {
  const token = broker.mint('carol');
  const other = await openPage(`${base}/?id=43#jid=${encodeURIComponent(token)}`);
  try {
    assert.equal(await other.page.locator('#user').innerText(), 'signed in as carol');
    assert.equal(await other.page.locator('#actuator-id').inputValue(), '43');
    await other.page.locator('#command').fill('toggle');
    await other.page.locator('#command').press('Enter');
    const answer = entries(other.page, 'state').and(other.page.locator('[data-user="carol"][data-on="true"]'));
    await answer.waitFor({ timeout: UI_TIMEOUT });
    assert.match(await answer.innerText(), /actuator 43/);

    // Alice's page (actuator 42) saw none of it.
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(await page.locator('#log li.entry[data-user="carol"]').count(), 0);
    assert.deepEqual(other.problems, [], 'the second page logged errors or failed requests');
  } finally {
    await other.context.close();
  }
});

test("a watch-only user's command is refused, and the page shows why", async () => {
  const token = broker.mint('dave');
  const viewer = await openPage(`${base}/?jid=${encodeURIComponent(token)}`);
  try {
    const mqtt = await mqttConnect(broker.mqttUrl);
    await mqtt.subscribe('actuators/+/cmd');
    await viewer.page.locator('#command').fill('on');
    await viewer.page.locator('#command').press('Enter');
    const refusal = entries(viewer.page, 'refused').and(viewer.page.locator('[data-reason="acl_denied"]'));
    await refusal.waitFor({ timeout: UI_TIMEOUT });
    const text = await refusal.innerText();
    assert.match(text, /not sent/);
    assert.match(text, /speak: you may watch this actuator but not command it/);
    // Nothing went out, so no command of dave's scrolls by anywhere.
    await mqtt.expectNone(300);
    assert.equal(await viewer.page.locator('#log li.entry[data-kind="cmd"][data-user="dave"]').count(), 0);
    assert.equal(await page.locator('#log li.entry[data-user="dave"]').count(), 0);
    assert.deepEqual(viewer.problems, [], 'the page logged errors or failed requests');
    await viewer.page.screenshot({ path: SCREENSHOT.replace(/\.png$/, '-refused.png') });
  } finally {
    await viewer.context.close();
  }
});

test('"status" is answered to the asking page alone', async () => {
  assert.ok(page, 'needs the page of the earlier tests');
  const token = broker.mint('carol');
  const other = await openPage(`${base}/?jid=${encodeURIComponent(token)}`);
  try {
    await other.page.locator('.quick button[data-command="status"]').click();
    const answer = entries(other.page, 'state')
      .and(other.page.locator('[data-user="carol"][data-reply="true"]'));
    await answer.waitFor({ timeout: UI_TIMEOUT });
    assert.match(await answer.innerText(), /status by carol \(you\).*answered to you alone/s);
    // Alice's page saw carol's command go by, but not the answer.
    await entries(page, 'cmd').and(page.locator('[data-user="carol"][data-message="status"]'))
      .waitFor({ timeout: UI_TIMEOUT });
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(await entries(page, 'state').and(page.locator('[data-user="carol"]')).count(), 0);
    assert.deepEqual(other.problems, [], 'the second page logged errors or failed requests');
  } finally {
    await other.context.close();
  }
});

test('the page shows the actuator offline when its device dies (the MQTT will)', async () => {
  const dying = await startDevice(broker.mqttUrl, [44]);
  const p = await openPage(`${base}/?id=44&jid=${encodeURIComponent(broker.mint('alice'))}`);
  try {
    await p.page.locator('#state[data-on="off"]').waitFor({ timeout: UI_TIMEOUT });
    await dying.kill();
    await p.page.locator('#state[data-on="offline"]').waitFor({ timeout: UI_TIMEOUT });
    assert.match(await p.page.locator('#state-text').innerText(), /actuator 44 is offline/);
    // A page opened now starts on "offline": the will was retained.
    const late = await openPage(`${base}/?id=44&jid=${encodeURIComponent(broker.mint('carol'))}`);
    await late.page.locator('#state[data-on="offline"]').waitFor({ timeout: UI_TIMEOUT });
    await late.context.close();
  } finally {
    await p.context.close();
    await dying.stop();
  }
});

test('stopping the broker makes the page say "Connection lost"', async () => {
  assert.ok(page, 'needs the page of the earlier tests');
  await broker.stop();
  await page.locator('#status[data-state="lost"]').waitFor({ timeout: UI_TIMEOUT });
  assert.equal(await page.locator('#status').innerText(), 'Connection lost');
  const line = entries(page, 'system').filter({ hasText: 'Connection lost' });
  await line.waitFor({ timeout: UI_TIMEOUT });
  // The broker said server_restart with reconnect: true, so the client keeps trying.
  assert.match(await line.last().innerText(), /reconnecting/);
  assert.ok(await page.locator('#command').isDisabled(), 'the command box is disabled while offline');
  await page.screenshot({ path: SCREENSHOT.replace(/\.png$/, '-lost.png') });
});
