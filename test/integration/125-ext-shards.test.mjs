// The extended protocol across gateway shards: a reconnecting browser lands on whichever
// shard the kernel picks, and its session restore and history work there as with one
// shard. Several real @anycable/core clients (unmodified, from npm), each through its own
// TCP proxy, are cut again and again while a device publishes; each reconnect is a new
// TCP connection, so some restores happen on the other shard (the broker logs
// "session restored on shard X from shard Y"). Every message published meanwhile arrives
// exactly once, in order, with offsets up by one on one epoch.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { createCable } from '@anycable/core';

import { useBroker, mqttConnect, onCleanup, startProxy, withTimeout, sleep } from './lib/index.mjs';

const EXT = 'actioncable-v1-ext-json';
const THREADS = Number(process.env.CABLE_TEST_THREADS || '2');
const CLIENTS = 6;
const CUTS = 6; // per client
const SHARED = 90; // an actuator every client follows
const ctx = useBroker();

async function until(cond, ms, what) {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

// A client: its proxy, its cable, and per actuator id the messages with their positions.
async function client(k) {
  const proxy = await startProxy(ctx.broker.wsPort);
  const cable = createCable(proxy.url('/cable'), {
    protocol: EXT,
    websocketImplementation: WebSocket,
    auth: { token: ctx.broker.mint('alice') },
    protocolOptions: { pongs: true },
    reconnectStrategy: () => 50,
    logLevel: 'error',
  });
  onCleanup(() => cable.disconnect());
  const c = { k, proxy, cable, connects: [], got: {}, infos: [] };
  cable.on('connect', (ev) => c.connects.push(ev));
  for (const id of [91 + k, SHARED]) {
    const channel = cable.subscribeTo('ActuatorChannel', { id });
    c.got[id] = [];
    channel.on('message', (m, meta) => c.got[id].push({ m, meta }));
    channel.on('info', (ev) => c.infos.push(`${id}:${ev.type}`));
    await withTimeout(channel.ensureSubscribed(), 5000, `client ${k} subscribed to ${id}`);
  }
  return c;
}

function assertExactlyOnce(c, id, n) {
  const got = c.got[id];
  assert.deepEqual(got.map((g) => g.m.i), Array.from({ length: n }, (_, j) => j + 1),
    `client ${c.k}, actuator ${id}: every message once, in order`);
  for (let j = 1; j < got.length; j++) {
    assert.equal(got[j].meta.offset, got[j - 1].meta.offset + 1, `client ${c.k}, ${id}: offset`);
    assert.equal(got[j].meta.epoch, got[0].meta.epoch);
  }
}

test('cut again and again, restored on either shard: everything once, in order', async (t) => {
  const clients = [];
  for (let k = 0; k < CLIENTS; k++) clients.push(await client(k));
  const dev = await mqttConnect(ctx.broker.mqttUrl);
  const ids = [SHARED, ...clients.map((c) => 91 + c.k)];
  const sent = Object.fromEntries(ids.map((id) => [id, 0]));

  // The device publishes on every topic in turn until the cuts are over.
  let publishing = true;
  const publisher = (async () => {
    while (publishing) {
      for (const id of ids) {
        sent[id]++;
        await dev.publish(`actuators/${id}/state`, JSON.stringify({ i: sent[id] }));
      }
      await sleep(10);
    }
  })();

  // Each client is cut CUTS times, reconnecting (and restoring) in between.
  await Promise.all(clients.map(async (c) => {
    for (let n = 0; n < CUTS; n++) {
      await sleep(150 + Math.floor(Math.random() * 250));
      const before = c.connects.length;
      c.proxy.cut();
      await until(() => c.connects.length > before && c.cable.state === 'connected', 10000,
        `client ${c.k} back after cut ${n + 1}`);
    }
  }));
  await sleep(300);
  publishing = false;
  await publisher;

  for (const c of clients) {
    for (const id of [91 + c.k, SHARED]) {
      await until(() => c.got[id].length >= sent[id], 10000,
        `client ${c.k}: ${sent[id]} messages on ${id} (has ${c.got[id].length})`);
    }
  }
  await sleep(300);
  for (const c of clients) {
    assert.ok(!c.infos.some((i) => i.endsWith('history_not_found')), `client ${c.k}: ${c.infos}`);
    // The session was restored on every reconnect (none fell back to a fresh one).
    assert.deepEqual(c.connects.slice(1).map((ev) => !!ev.restored), Array(CUTS).fill(true),
      `client ${c.k}: every reconnect restored`);
    assertExactlyOnce(c, 91 + c.k, sent[91 + c.k]);
    assertExactlyOnce(c, SHARED, sent[SHARED]);
  }

  const restores = [...ctx.broker.log().matchAll(/session restored on shard (\d+) from shard (\d+)/g)];
  assert.equal(restores.length, CLIENTS * CUTS, 'a log line per restore');
  const crossed = restores.filter(([, to, from]) => to !== from).length;
  t.diagnostic(`${crossed} of ${restores.length} restores crossed shards; ` +
    `${Object.values(sent).reduce((a, b) => a + b)} messages published`);
  if (THREADS > 1) assert.ok(crossed > 0, 'at least one restore crossed shards');
});
