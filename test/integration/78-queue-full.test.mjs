// The two bounded queues between the broker thread and the gateway thread, at their
// smallest bounds (plugin_opt_queue_messages 16, plugin_opt_queue_bytes 65536), as
// docs/configuration.md and docs/architecture.md describe them:
//  - towards browsers: when full, messages for browsers are dropped, counted in
//    /metrics (cable_queue_to_gateway_dropped_total) and reported in one warning line;
//    the broker never waits, so MQTT subscribers get every message, and browsers keep
//    receiving afterwards, in order;
//  - towards the broker: a browser that publishes faster than the broker drains is
//    paused (counted in cable_queue_to_broker_full_total); nothing it sent is dropped:
//    an MQTT witness receives every publish, in order.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  useBroker, rawConnect, mqttConnect, actuatorId, isMessageFor,
} from './lib/index.mjs';
import { observeAll, waitForLog } from './fixtures/util.mjs';

async function metrics(b) {
  const res = await fetch(new URL('/metrics', b.wsUrl.replace('ws:', 'http:')));
  const out = {};
  for (const line of (await res.text()).split('\n')) {
    const m = /^(cable_[a-z_]+) (\d+(?:\.\d+)?)$/.exec(line);
    if (m) out[m[1]] = Number(m[2]);
  }
  return out;
}

describe('queues at their smallest bounds', () => {
  const ctx = useBroker({ pluginOpts: { queue_messages: 16, queue_bytes: 65536 } });
  const id = actuatorId(42);

  test('a burst larger than the browser-bound queue: dropped for browsers and counted, MQTT unaffected', async (t) => {
    const b = ctx.broker;
    const c = await rawConnect(b.urlFor(b.mint('alice')));
    await c.welcome();
    assert.equal((await c.subscribeAndWait(id)).json.type, 'confirm_subscription');
    const witness = await observeAll(b, 'actuators/42/state');
    const before = await metrics(b);
    assert.equal(before.cable_queue_to_gateway_dropped_total, 0);
    const from = b.log().length;

    // 400 messages of 6 KiB: the queue holds about ten of them.
    const N = 400;
    const pad = 'x'.repeat(6 * 1024);
    const dev = await mqttConnect(b.mqttUrl);
    for (let i = 0; i < N; i++) dev.client.publish('actuators/42/state', JSON.stringify({ i, pad }), { qos: 0 });
    for (let i = 0; i < N; i++) assert.equal(JSON.parse((await witness.next(10000)).text).i, i, 'MQTT gets every message');

    const m = await waitForLog(b, /mosquitto-cable: (\d+) messages for browsers dropped: the gateway queue is full/, 5000, from);
    const after = await metrics(b);
    const dropped = after.cable_queue_to_gateway_dropped_total;
    assert.ok(dropped > 0, `dropped_total counts the drops (${dropped})`);
    assert.ok(Number(m[1]) > 0 && Number(m[1]) <= dropped, `the warning gives the count (${m[1]} of ${dropped})`);

    // The browser got the others, in order, and keeps receiving.
    await dev.publish('actuators/42/state', JSON.stringify({ i: 'last' }));
    const got = [];
    for (;;) {
      const f = await c.waitFor(isMessageFor(id), 10000, 'the last message');
      if (f.json.message.i === 'last') break;
      got.push(f.json.message.i);
    }
    t.diagnostic(`${got.length} of ${N} delivered, ${dropped} dropped`);
    assert.ok(got.length < N, `some were dropped (${got.length} of ${N} delivered)`);
    assert.equal(got.length + dropped, N, 'delivered + dropped = sent');
    for (let k = 1; k < got.length; k++) assert.ok(got[k] > got[k - 1], 'in order, no duplicate');
    assert.equal(c.closeInfo, null, 'the browser stays connected');
  });

  test('a browser publishing faster than the broker drains is paused; nothing it sent is lost', async (t) => {
    const b = ctx.broker;
    const c = await rawConnect(b.urlFor(b.mint('alice')));
    await c.welcome();
    assert.equal((await c.subscribeAndWait(id)).json.type, 'confirm_subscription');
    const witness = await observeAll(b, 'actuators/42/cmd');
    const before = (await metrics(b)).cable_queue_to_broker_full_total;

    // 600 performs sent back to back, in as few TCP segments as the socket allows.
    const N = 600;
    for (let i = 0; i < N; i++) c.perform(id, 'speak', { message: String(i) });
    for (let i = 0; i < N; i++) {
      const m = await witness.next(10000);
      assert.equal(JSON.parse(m.text).message, String(i), 'every publish, in order');
    }
    await witness.expectNone(300);
    const full = (await metrics(b)).cable_queue_to_broker_full_total;
    t.diagnostic(`paused ${full - before} times for ${N} publishes`);
    assert.ok(full > before, `the browser was paused on the full queue (full_total ${before} -> ${full})`);
    // Unpaused: it still publishes and receives.
    c.perform(id, 'speak', { message: 'after' });
    assert.equal(JSON.parse((await witness.next()).text).message, 'after');
    assert.equal(c.closeInfo, null);
  });
});
