// The extended protocol with last values (plugin_opt_state_listener): a subscribe that
// asks for history gets the retained value and the history, and no message twice. The
// last value is left out for a topic resumed from a known position (the client has it)
// and for one whose replayed history holds a retained message (that entry is the value).
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { useBroker, rawConnect, mqttConnect, actuatorId, isMessageFor, sleep } from './lib/index.mjs';

const ctx = useBroker({ state: true });
const EXT = 'actioncable-v1-ext-json';
const ID = actuatorId(50);
const TOPIC = 'actuators/50/state';
const ext = async () => {
  const c = await rawConnect(ctx.broker.urlFor(ctx.broker.mint('alice')), { protocols: [EXT] });
  await c.welcome();
  return c;
};
const isHistory = (f) => f.json?.type === 'confirm_history' || f.json?.type === 'reject_history';
// The data frames between the confirm and confirm_history: [value, offset or null].
async function replayed(c) {
  await c.waitFor(isHistory, 3000, 'the history reply');
  await sleep(200);
  return c.received().filter(isMessageFor(ID)).map((f) => [f.json.message.v, f.json.offset ?? null]);
}

test('last value, then history, nothing twice', async () => {
  const dev = await mqttConnect(ctx.broker.mqttUrl);
  await dev.publish(TOPIC, '{"v":"r1"}', { retain: true, qos: 1 });
  const since = Math.floor(Date.now() / 1000);
  await sleep(100);

  // A first visit: the retained value (no offset: a snapshot), an empty history.
  const a = await ext();
  a.send({ command: 'subscribe', identifier: ID, history: { since } });
  assert.deepEqual(await replayed(a), [['r1', null]]);
  await dev.publish(TOPIC, '{"v":"r2"}', { retain: true, qos: 1 });
  await dev.publish(TOPIC, '{"v":"m3"}', { qos: 1 });
  await sleep(200);
  const live = a.received().filter(isMessageFor(ID)).slice(1).map((f) => f.json);
  assert.deepEqual(live.map((f) => f.message.v), ['r2', 'm3']);
  a.ws.terminate();
  await dev.publish(TOPIC, '{"v":"r4"}', { retain: true, qos: 1 });
  await sleep(100);

  // Resumed from m3's position: r4 from the history only, not also as the last value.
  const b = await ext();
  const pos = { epoch: live[1].epoch, offset: live[1].offset };
  b.send({ command: 'subscribe', identifier: ID, history: { since, streams: { [TOPIC]: pos } } });
  assert.deepEqual(await replayed(b), [['r4', live[1].offset + 1]]);

  // By time: the history holds r2, m3 and r4; r4 is the retained value, sent once.
  const c = await ext();
  c.send({ command: 'subscribe', identifier: ID, history: { since } });
  assert.deepEqual((await replayed(c)).map(([v]) => v), ['r2', 'm3', 'r4']);

  // Without a history request: the last value alone, as for a plain client.
  const d = await ext();
  d.subscribe(ID);
  await d.waitFor(isMessageFor(ID));
  await sleep(200);
  assert.deepEqual(d.received().filter(isMessageFor(ID)).map((f) => f.json.message.v), ['r4']);
});
