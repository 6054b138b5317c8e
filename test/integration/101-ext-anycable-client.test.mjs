// Nothing lost when the network blinks: the real @anycable/core client (unmodified,
// from npm) in actioncable-v1-ext-json, through a TCP proxy that cuts the connection.
// What a device publishes while the client is cut off arrives after the reconnect, in
// order, exactly once: by session restore, and by history on resubscribe. A broker
// restart gives reject_history and a working fresh session. A stock @rails/actioncable
// consumer on the same channel sees what it always saw.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { createCable } from '@anycable/core';

import {
  useBroker, startBroker, mqttConnect, onCleanup, startProxy, createCable as railsCable,
  withTimeout, sleep,
} from './lib/index.mjs';

const EXT = 'actioncable-v1-ext-json';
const ctx = useBroker();

// An ext cable through `proxy`, recording its channel's messages and info events.
function extCable(proxy, token, protocolOptions = {}) {
  const cable = createCable(proxy.url('/cable'), {
    protocol: EXT,
    websocketImplementation: WebSocket,
    auth: { token },
    protocolOptions: { pongs: true, ...protocolOptions },
    reconnectStrategy: () => 100,
    logLevel: 'error',
  });
  const events = [];
  cable.on('connect', (ev) => events.push({ type: 'connect', ...ev }));
  cable.on('disconnect', (ev) => events.push({ type: 'disconnect', reason: ev?.reason }));
  onCleanup(() => cable.disconnect());
  return { cable, events };
}

function record(channel) {
  const got = [];
  const infos = [];
  channel.on('message', (m, meta) => got.push({ m, meta }));
  channel.on('info', (ev) => infos.push(ev.type));
  return { got, infos };
}

async function until(cond, ms, what) {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

// Publish n numbered messages on topic, from `from`.
async function publishRun(dev, topic, from, n) {
  for (let i = from; i < from + n; i++) await dev.publish(topic, JSON.stringify({ i }));
}

// Every message exactly once, in order, offsets up by one on one epoch.
function assertExactlyOnce(got, n) {
  assert.deepEqual(got.map((g) => g.m.i), Array.from({ length: n }, (_, k) => k + 1));
  for (let k = 1; k < got.length; k++) {
    assert.equal(got[k].meta.offset, got[k - 1].meta.offset + 1, `offset after ${k}`);
    assert.equal(got[k].meta.epoch, got[0].meta.epoch);
  }
}

async function blink(proxy, cable, events, during) {
  const before = events.filter((e) => e.type === 'connect').length;
  proxy.down();
  await until(() => cable.state !== 'connected', 5000, 'the client to notice the cut');
  await during();
  await sleep(300); // the client retries against the closed door meanwhile
  proxy.up();
  await until(() => events.filter((e) => e.type === 'connect').length > before && cable.state === 'connected',
    10000, 'the reconnect');
  return events.filter((e) => e.type === 'connect').at(-1);
}

for (const [name, opts, restored] of [
  ['session restore', {}, true],
  ['history on resubscribe (session recovery off)', { disableSessionRecovery: true }, false],
]) {
  test(`cut off and back: everything missed arrives once, in order, by ${name}`, async () => {
    const proxy = await startProxy(ctx.broker.wsPort);
    const { cable, events } = extCable(proxy, ctx.broker.mint('alice'), opts);
    const id = restored ? 21 : 22;
    const topic = `actuators/${id}/state`;
    const channel = cable.subscribeTo('ActuatorChannel', { id });
    const { got, infos } = record(channel);
    await withTimeout(channel.ensureSubscribed(), 5000, 'ensureSubscribed()');
    if (restored) assert.ok(cable.sessionId, 'the welcome carried a sid');

    // A stock Rails consumer on the same channel, directly (no proxy).
    const rails = railsCable(ctx.broker.urlFor(ctx.broker.mint('bob')));
    const rsub = rails.subscribe({ channel: 'ActuatorChannel', id });
    await rsub.confirmed();

    const dev = await mqttConnect(ctx.broker.mqttUrl);
    await publishRun(dev, topic, 1, 3);
    await until(() => got.length === 3, 5000, 'the first three');

    const ev = await blink(proxy, cable, events, () => publishRun(dev, topic, 4, 5));
    assert.equal(!!ev.restored, restored, `restored: ${ev.restored}`);
    await until(() => got.length >= 8, 5000, 'the five missed');
    await until(() => infos.includes('history_received'), 5000, 'history_received');
    await publishRun(dev, topic, 9, 2);
    await until(() => got.length >= 10, 5000, 'the live ones after');
    await sleep(300);
    assertExactlyOnce(got, 10);
    assert.ok(!infos.includes('history_not_found'));

    // A second blink, to show the new sid works too.
    const ev2 = await blink(proxy, cable, events, () => publishRun(dev, topic, 11, 4));
    assert.equal(!!ev2.restored, restored);
    await until(() => got.length >= 14, 5000, 'the four missed the second time');
    await sleep(300);
    assertExactlyOnce(got, 14);

    // The Rails consumer saw the 14 plain messages, no more, no less.
    const plain = [];
    for (let i = 0; i < 14; i++) plain.push(await rsub.next());
    assert.deepEqual(plain, Array.from({ length: 14 }, (_, k) => ({ i: k + 1 })));
    await rsub.expectNone(300);
  });
}

test('a broker restart: reject_history, then a working fresh session', async () => {
  const b1 = await startBroker();
  let b2 = null;
  onCleanup(async () => { await b1.stop(); if (b2) await b2.stop(); });
  const proxy = await startProxy(b1.wsPort);
  const { cable, events } = extCable(proxy, b1.mint('alice'));
  const channel = cable.subscribeTo('ActuatorChannel', { id: 23 });
  const { got, infos } = record(channel);
  await withTimeout(channel.ensureSubscribed(), 5000, 'ensureSubscribed()');
  let dev = await mqttConnect(b1.mqttUrl);
  await publishRun(dev, 'actuators/23/state', 1, 2);
  await until(() => got.length === 2, 5000, 'two messages');
  const epoch1 = got[0].meta.epoch;

  const connects = events.filter((e) => e.type === 'connect').length;
  await b1.stop(); // server_restart to the client, which reconnects
  b2 = await startBroker({ secret: b1.secret });
  proxy.retarget(b2.wsPort);
  await until(() => events.filter((e) => e.type === 'connect').length > connects &&
    cable.state === 'connected', 15000, 'the reconnect to the new broker');
  assert.equal(events.filter((e) => e.type === 'connect').at(-1).restored, false);
  await until(() => infos.includes('history_not_found'), 5000, 'history_not_found');
  dev = await mqttConnect(b2.mqttUrl);
  await until(() => channel.state === 'connected', 5000, 'resubscribed');
  await publishRun(dev, 'actuators/23/state', 3, 1);
  await until(() => got.length === 3, 5000, 'a live message from the new broker');
  assert.equal(got[2].m.i, 3);
  assert.notEqual(got[2].meta.epoch, epoch1, 'a new epoch');
});
