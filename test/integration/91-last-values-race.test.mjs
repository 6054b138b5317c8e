// Last values racing live traffic: a device publishes a retained counter as fast as it
// can while browsers subscribe at random moments. Every browser must see one gap-free,
// duplicate-free run of the counter: the value current at its subscribe (the replay),
// then every later one, up to the last.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useBroker, connectAndSubscribe, mqttConnect, actuatorParams, sleep } from './lib/index.mjs';
import { waitForLog } from './fixtures/util.mjs';
import { publishCounter, expectCounterRun } from './fixtures/last-values.mjs';

const ctx = useBroker({ state: true });

const BROWSERS = 24;
const MESSAGES = 4000;

test('replay and live traffic: no gap, no duplicate, for every browser', async () => {
  const b = ctx.broker;
  const dev = await mqttConnect(b.mqttUrl);
  await dev.publish('actuators/1/state', '{"n":0}', { retain: true, qos: 1 });
  await sleep(100);

  const publisher = publishCounter(dev, 'actuators/1/state', MESSAGES, 40);

  const browsers = [];
  for (let i = 0; i < BROWSERS; i++) {
    await sleep(Math.floor(Math.random() * 40));
    browsers.push(connectAndSubscribe(b, `user${i}`, [actuatorParams(1)]));
  }
  await publisher;
  // Browsers that subscribe after the last publish: the replay alone gives them the value.
  await sleep(200);
  for (let i = 0; i < 3; i++) browsers.push(connectAndSubscribe(b, `late${i}`, [actuatorParams(1)]));
  const subs = (await Promise.all(browsers)).map((x) => x.subs[0]);

  let replayedMidStream = 0;
  for (const [i, s] of subs.entries()) {
    const first = await expectCounterRun(s, MESSAGES, `browser ${i}`);
    if (first > 0 && first < MESSAGES) replayedMidStream++;
  }
  // The test means something only if subscribes landed inside the stream.
  assert.ok(replayedMidStream > 0, 'no browser subscribed while the counter was running');
  // (The late browsers' runs above were exactly [MESSAGES]: the replay, then nothing.)
});

test('overload: the fan-out queue drops (counted) but never duplicates, and the cache stays exact', async () => {
  const { startBroker, onCleanup } = await import('./lib/index.mjs');
  const b = await startBroker({ state: true, pluginOpts: { queue_messages: '16' } });
  onCleanup(() => b.stop());
  const dev = await mqttConnect(b.mqttUrl);
  const { subs: [s] } = await connectAndSubscribe(b, 'alice', [actuatorParams(2)]);
  const N = 3000;
  for (let n = 1; n <= N; n++) dev.client.publish('actuators/2/state', `{"n":${n}}`, { retain: true, qos: 0 });
  await dev.publish('actuators/2/state', `{"n":${N + 1}}`, { retain: true, qos: 1 }); // all are in
  const metric = async () => {
    const text = await (await fetch(new URL('/metrics', b.wsUrl.replace('ws:', 'http:')))).text();
    return Number(text.match(/^cable_state_dropped_total (\d+)$/m)[1]);
  };
  // Every message is either delivered or counted as dropped.
  let seen = [];
  let dropped = 0;
  for (const deadline = Date.now() + 10000; Date.now() < deadline; await sleep(100)) {
    seen = s.received.all.map((m) => m.n);
    dropped = await metric();
    if (seen.length + dropped === N + 1) break;
  }
  for (let i = 1; i < seen.length; i++) assert.ok(seen[i] > seen[i - 1], `in order, once: ${seen[i - 1]} then ${seen[i]}`);
  assert.equal(seen.length + dropped, N + 1, `${seen.length} delivered + ${dropped} dropped`);
  assert.ok(dropped > 0, 'the burst overflowed a 16-message queue');
  await waitForLog(b, /last values: \d+ messages for browsers dropped/);
  // Whatever was dropped for the fan-out, the cache has the last value.
  const { subs: [late] } = await connectAndSubscribe(b, 'bob', [actuatorParams(2)]);
  assert.deepEqual(await late.next(), { n: N + 1 });
});
