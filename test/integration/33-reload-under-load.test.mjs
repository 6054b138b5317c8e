// SIGHUP under load: while a device streams to 40 browsers, the broker reloads the
// plugin's files five times. No connection is lost and every browser gets every
// message, in order.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useBroker, rawConnect, mqttConnect, actuatorId, isMessageFor, isDisconnect, sleep } from './lib/index.mjs';
import { waitForLog } from './fixtures/util.mjs';

const ctx = useBroker();
const CLIENTS = 40;
const MESSAGES = 400;

test('five reloads during a 400-message stream to 40 browsers lose nothing', async () => {
  const b = ctx.broker;
  const id = actuatorId(42);
  const clients = [];
  for (let i = 0; i < CLIENTS; i++) {
    const c = await rawConnect(b.urlFor(b.mint(`user${i}`)));
    await c.welcome();
    await c.subscribeAndWait(id);
    clients.push(c);
  }
  const dev = await mqttConnect(b.mqttUrl);
  for (let i = 0; i < MESSAGES; i++) {
    await dev.publish('actuators/42/state', JSON.stringify({ seq: i }), { qos: 1 });
    if (i % 80 === 40) process.kill(b.pid, 'SIGHUP');
    if (i % 20 === 0) await sleep(5);
  }
  // The reload line is logged by the broker thread right after the SIGHUP is handled.
  await waitForLog(b, /reloaded/);
  for (const c of clients) {
    const got = [];
    while (got.length < MESSAGES) {
      const f = await c.waitFor(isMessageFor(id), 10_000, `message ${got.length}`);
      got.push(f.json.message.seq);
    }
    assert.deepEqual(got, [...Array(MESSAGES).keys()]);
    assert.equal(c.closeInfo, null, 'still connected');
    assert.equal(c.frames.count(isDisconnect), 0);
  }
  assert.equal((b.log().match(/reloaded/g) || []).length >= 5, true, 'five reloads');
});
