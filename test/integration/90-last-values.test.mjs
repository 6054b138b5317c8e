// Last values (plugin_opt_state_listener): a confirmed subscription is followed at once
// by the broker's retained message of every topic its streams cover, as an MQTT
// subscriber gets them; wills and plugin publishes reach browsers like any message.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  useBroker, rawConnect, connectAndSubscribe, mqttConnect, actuatorParams, actuatorId, sleep,
  isConfirm, isMessageFor, notPing,
} from './lib/index.mjs';
import { fixture } from './fixtures/util.mjs';

// The frames after the confirm of `id`, pings left out, once `count` have arrived.
async function framesAfterConfirm(c, id, count, ms = 3000) {
  await c.waitFor(isConfirm(id), ms, `confirm of ${id}`);
  const deadline = Date.now() + ms;
  for (;;) {
    const all = c.received();
    const at = all.findIndex((f) => isConfirm(id)(f));
    const after = all.slice(at + 1).filter(notPing);
    if (after.length >= count || Date.now() > deadline) return after;
    await sleep(20);
  }
}

async function retain(dev, topic, payload) {
  await dev.publish(topic, payload, { retain: true, qos: 1 });
}

// A device retains these [topic, payload]s, then alice's raw client subscribes to id.
async function retainThenSubscribe(b, values, id) {
  const dev = await mqttConnect(b.mqttUrl);
  for (const [topic, payload] of values) await retain(dev, topic, payload);
  await sleep(100);
  const c = await rawConnect(b.urlFor(b.mint('alice')));
  await c.welcome();
  c.subscribe(id);
  return { dev, c };
}

describe('retained values on subscribe (ActuatorChannel)', () => {
  const ctx = useBroker({ state: true });

  test('a retained value published before the browser connected arrives right after confirm', async () => {
    const b = ctx.broker;
    const { c } = await retainThenSubscribe(b, [['actuators/7/state', '{"on":true}']], actuatorId(7));
    const after = await framesAfterConfirm(c, actuatorId(7), 1);
    assert.equal(after.length, 1, `frames after confirm: ${after.map((f) => f.raw)}`);
    assert.deepEqual(after[0].json, { identifier: actuatorId(7), message: { on: true } });
    // The stock client gets it as its first received(data).
    const { subs: [s] } = await connectAndSubscribe(b, 'bob', [actuatorParams(7)]);
    assert.deepEqual(await s.next(), { on: true });
    await s.expectNone(300);
  });

  test('the current value only: a replaced value is not replayed, a cleared one not at all', async () => {
    const b = ctx.broker;
    const dev = await mqttConnect(b.mqttUrl);
    await retain(dev, 'actuators/8/state', '{"v":1}');
    await retain(dev, 'actuators/8/state', '{"v":2}');
    await retain(dev, 'actuators/8/cmd', '"old command"');
    await retain(dev, 'actuators/8/cmd', ''); // an empty retained payload clears it
    await sleep(100);
    const { subs: [s] } = await connectAndSubscribe(b, 'alice', [actuatorParams(8)]);
    assert.deepEqual(await s.next(), { v: 2 });
    await s.expectNone(500);
  });

  test('a duplicate subscribe replays nothing; a live retained publish arrives once', async () => {
    const b = ctx.broker;
    const { dev, c } = await retainThenSubscribe(b, [['actuators/9/state', '"first"']], actuatorId(9));
    await c.waitFor(isMessageFor(actuatorId(9)), 3000, 'the replayed value');
    c.subscribe(actuatorId(9));
    await sleep(300);
    await retain(dev, 'actuators/9/state', '"second"');
    const live = await c.waitFor(isMessageFor(actuatorId(9)), 3000, 'the live value');
    assert.equal(live.json.message, 'second');
    await sleep(300);
    const msgs = c.received().filter(isMessageFor(actuatorId(9))).map((f) => f.json.message);
    assert.deepEqual(msgs, ['first', 'second']);
    assert.equal(c.received().filter(isConfirm(actuatorId(9))).length, 1);
  });

  test('a device will reaches subscribed browsers when its connection is cut; a retained will is replayed later', async () => {
    const b = ctx.broker;
    const { subs: [s] } = await connectAndSubscribe(b, 'alice', [actuatorParams(10)]);
    const dev = await mqttConnect(b.mqttUrl, {
      will: { topic: 'actuators/10/state', payload: Buffer.from('{"online":false}'), qos: 1, retain: true },
    });
    await dev.publish('actuators/10/state', '{"online":true}');
    assert.deepEqual(await s.next(), { online: true });
    dev.client.stream.destroy(); // no DISCONNECT: the broker sends the will
    assert.deepEqual(await s.next(5000), { online: false });
    // The will was retained: a browser that subscribes now sees "offline" at once.
    const { subs: [late] } = await connectAndSubscribe(b, 'bob', [actuatorParams(10)]);
    assert.deepEqual(await late.next(), { online: false });
  });

  test('a browser perform (a plugin publish) reaches the other browsers exactly once', async () => {
    const b = ctx.broker;
    const { subs: [a] } = await connectAndSubscribe(b, 'alice', [actuatorParams(11)]);
    const { subs: [o] } = await connectAndSubscribe(b, 'bob', [actuatorParams(11)]);
    a.perform('speak', { message: 'hello' });
    assert.deepEqual(await o.next(), { user: 'alice', message: 'hello' });
    assert.deepEqual(await a.next(), { user: 'alice', message: 'hello' });
    await o.expectNone(400);
    await a.expectNone(0);
  });

  test('/metrics counts the cache and the replays', async () => {
    const b = ctx.broker;
    const res = await fetch(new URL('/metrics', b.wsUrl.replace('ws:', 'http:')));
    const text = await res.text();
    assert.match(text, /^cable_state_connected 1$/m);
    assert.match(text, /^cable_retained_entries [1-9]\d*$/m);
    assert.match(text, /^cable_retained_replayed_total [1-9]\d*$/m);
    assert.match(text, /^cable_retained_refused_total 0$/m);
  });
});

describe('a wildcard stream: every retained topic it matches, each checked against the ACL', () => {
  const ctx = useBroker({
    state: true,
    pluginOpts: {
      acl_file: fixture('acl-partial.acl'),
      channels_file: fixture('channels-wildcard.json'),
    },
  });

  test('allowed topics arrive with "retain": true, the denied ones never', async () => {
    const b = ctx.broker;
    const id = JSON.stringify({ channel: 'SensorChannel', site: 'plant-7' });
    const { c } = await retainThenSubscribe(b, [
      ['sites/plant-7/sensors/temp', '21.5'],
      ['sites/plant-7/sensors/secret', '"k1"'],
      ['sites/plant-7/sensors/secret/key', '"k2"'],
      ['sites/plant-7/sensors/humidity', '40'],
      ['sites/plant-8/sensors/temp', '5'],
    ], id);
    const after = await framesAfterConfirm(c, id, 2);
    await sleep(300);
    const got = c.received().filter(isMessageFor(id)).map((f) => f.json.message);
    assert.equal(after.length, 2);
    assert.deepEqual(got.sort((x, y) => x.topic.localeCompare(y.topic)), [
      { topic: 'sites/plant-7/sensors/humidity', payload: 40, retain: true },
      { topic: 'sites/plant-7/sensors/temp', payload: 21.5, retain: true },
    ]);
  });
});

describe('"last_value": false turns the replay off for a channel', () => {
  const ctx = useBroker({
    state: true,
    files: {
      'channels.json': JSON.stringify({
        channels: {
          ActuatorChannel: {
            params: { id: { type: 'integer' } },
            streams: ['actuators/{id}/state'],
            last_value: false,
          },
        },
      }),
    },
    pluginOpts: { channels_file: '$DIR/channels.json' },
  });

  test('no replay, live messages as before', async () => {
    const b = ctx.broker;
    const dev = await mqttConnect(b.mqttUrl);
    await retain(dev, 'actuators/5/state', '"retained"');
    await sleep(100);
    const { subs: [s] } = await connectAndSubscribe(b, 'alice', [actuatorParams(5)]);
    await s.expectNone(400);
    await dev.publish('actuators/5/state', '"live"');
    assert.equal(await s.next(), 'live');
  });
});

describe('the cache limit (plugin_opt_retained_max_entries 2)', () => {
  const ctx = useBroker({ state: true, pluginOpts: { retained_max_entries: '2' } });

  test('a topic over the limit is not replayed (never a stale value), and it is counted', async () => {
    const b = ctx.broker;
    const dev = await mqttConnect(b.mqttUrl);
    await retain(dev, 'actuators/1/state', '1');
    await retain(dev, 'actuators/2/state', '2');
    await retain(dev, 'actuators/3/state', '3'); // refused: the cache is full
    await sleep(100);
    const { subs: [s1, s3] } = await connectAndSubscribe(b, 'alice', [actuatorParams(1), actuatorParams(3)]);
    assert.equal(await s1.next(), 1);
    await s3.expectNone(400);
    const text = await (await fetch(new URL('/metrics', b.wsUrl.replace('ws:', 'http:')))).text();
    assert.match(text, /^cable_retained_entries 2$/m);
    assert.match(text, /^cable_retained_refused_total 1$/m);
    assert.match(b.log(), /last-value cache full \(plugin_opt_retained_max_entries 2/);
    // Room again once a topic is cleared; the next retained value of 3 is kept.
    await retain(dev, 'actuators/2/state', '');
    await retain(dev, 'actuators/3/state', '33');
    await sleep(100);
    const { subs: [t3] } = await connectAndSubscribe(b, 'bob', [actuatorParams(3)]);
    assert.equal(await t3.next(), 33);
  });
});
