// Last values across gateway shards (plugin_opt_threads 2). The internal client and the
// cache live on shard 0; a browser on another shard replays the cache as shard 0 has it
// while that shard's fan-out may still be behind. Every browser, whichever shard took its
// connection, must see one gap-free, duplicate-free run of a counter a device publishes
// as fast as it can: the value current at its subscribe (the replay), then every later
// one. And subscribes made on any shard before the internal client synchronised are
// answered when it does.
import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import {
  startBroker, runCleanups, onCleanup, connectAndSubscribe, rawConnect, mqttConnect,
  actuatorParams, actuatorId, sleep, isConfirm, isMessageFor,
} from './lib/index.mjs';
import { waitForLog } from './fixtures/util.mjs';
import { publishCounter, expectCounterRun, openStateDoor } from './fixtures/last-values.mjs';

afterEach(runCleanups);

// Enough connections that the kernel gives both shards some (all on one: 2^-31).
const BROWSERS = 32;
const MESSAGES = 6000;

test('two shards: replay and live traffic meet exactly, for every browser on either shard', async () => {
  const b = await startBroker({ state: true, pluginOpts: { threads: '2' } });
  onCleanup(() => b.stop());
  const dev = await mqttConnect(b.mqttUrl);
  await dev.publish('actuators/1/state', '{"n":0}', { retain: true, qos: 1 });
  await sleep(100);

  const publisher = publishCounter(dev, 'actuators/1/state', MESSAGES, 60);

  const browsers = [];
  for (let i = 0; i < BROWSERS; i++) {
    await sleep(Math.floor(Math.random() * 30));
    browsers.push(connectAndSubscribe(b, `user${i}`, [actuatorParams(1)]));
  }
  await publisher;
  const subs = (await Promise.all(browsers)).map((x) => x.subs[0]);

  let replayedMidStream = 0;
  for (const [i, s] of subs.entries()) {
    const first = await expectCounterRun(s, MESSAGES, `browser ${i}`, 15000);
    if (first > 0 && first < MESSAGES) replayedMidStream++;
  }
  assert.ok(replayedMidStream > 0, 'no browser subscribed while the counter was running');
});

test('two shards: subscribes made before the synchronisation are answered on every shard', async () => {
  // The internal client reaches the broker only through late.sock, which the test opens
  // (relaying to the broker's state.sock) once every browser has subscribed.
  const b = await startBroker({
    extraConf: ['listener 0 $DIR/state.sock'],
    pluginOpts: { state_listener: '$DIR/late.sock', threads: '2' },
  });
  onCleanup(() => b.stop());
  const dev = await mqttConnect(b.mqttUrl);
  await dev.publish('actuators/21/state', '"before"', { retain: true, qos: 1 });

  const id = actuatorId(21);
  const clients = [];
  for (let i = 0; i < 12; i++) {
    const c = await rawConnect(b.urlFor(b.mint(`user${i}`)));
    await c.welcome();
    c.subscribe(id);
    await c.waitFor(isConfirm(id));
    clients.push(c);
  }
  await sleep(300);
  for (const c of clients) assert.equal(c.received().filter(isMessageFor(id)).length, 0);

  await openStateDoor(b);

  await waitForLog(b, /last values: connected/);
  for (const [i, c] of clients.entries()) {
    const first = await c.waitFor(isMessageFor(id), 5000, `browser ${i}: the replay at synchronisation`);
    assert.equal(first.json.message, 'before', `browser ${i}`);
  }
  await dev.publish('actuators/21/state', '"after"');
  for (const [i, c] of clients.entries()) {
    await c.waitFor(isMessageFor(id), 3000, `browser ${i}: the live message`);
    assert.deepEqual(c.received().filter(isMessageFor(id)).map((f) => f.json.message), ['before', 'after'],
      `browser ${i}`);
  }
});

test('two shards, overloaded: messages are dropped before the fan-out, the same for every browser', async () => {
  // A 16-message queue overflows: what is dropped is dropped for everybody (counted in
  // cable_state_dropped_total), never for one shard's browsers alone.
  const b = await startBroker({ state: true, pluginOpts: { queue_messages: '16', threads: '2' } });
  onCleanup(() => b.stop());
  const dev = await mqttConnect(b.mqttUrl);
  const subs = [];
  for (let i = 0; i < 16; i++) subs.push((await connectAndSubscribe(b, `user${i}`, [actuatorParams(3)])).subs[0]);
  const N = 3000;
  for (let n = 1; n <= N; n++) dev.client.publish('actuators/3/state', `{"n":${n}}`, { retain: true, qos: 0 });
  await dev.publish('actuators/3/state', `{"n":${N + 1}}`, { retain: true, qos: 1 }); // all are in
  let runs = [];
  for (let last = -1; ; await sleep(500)) { // until every browser has had all it will get
    runs = subs.map((s) => s.received.all.map((m) => m.n));
    const total = runs.reduce((sum, r) => sum + r.length, 0);
    if (total === last) break;
    last = total;
  }
  assert.ok(runs[0].length < N + 1, 'the burst overflowed a 16-message queue');
  for (const [i, run] of runs.entries()) {
    for (let k = 1; k < run.length; k++) assert.ok(run[k] > run[k - 1], `browser ${i}: in order, once`);
    assert.deepEqual(run, runs[0], `browser ${i} got what browser 0 got`);
  }
});
