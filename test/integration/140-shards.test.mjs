// Gateway shards (plugin_opt_threads 2): what spans the shards behaves as with one.
// Connections land on either shard (the kernel spreads them by address and port), so
// each test opens enough of them that both shards hold some, checks that they do
// (cable_shard_connections), and then asserts what a user relies on: the limits count
// every shard, every browser's publishes reach MQTT in its order and nothing is lost,
// answers reach the performing browser, a reload and a shutdown reach every browser.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, readFileSync } from 'node:fs';
import path from 'node:path';
import {
  REPO, useBroker, rawConnect, mqttConnect, actuatorId, isWelcome, isReject, isDisconnect,
  isMessageFor, sleep,
} from './lib/index.mjs';
import { waitForLog } from './fixtures/util.mjs';

const SHARDS = { threads: '2' };

async function metricsText(b) {
  const res = await fetch(new URL('/metrics', b.wsUrl.replace('ws:', 'http:')));
  return res.text();
}

// Open WebSockets per shard, from /metrics.
async function perShard(b) {
  const text = await metricsText(b);
  const out = [];
  for (const m of text.matchAll(/^cable_shard_connections\{shard="(\d+)"\} (\d+)$/gm)) {
    out[Number(m[1])] = Number(m[2]);
  }
  return out;
}

async function assertBothShards(b, what) {
  const n = await perShard(b);
  assert.equal(n.length, 2, `two shards report connections (${JSON.stringify(n)})`);
  assert.ok(n[0] > 0 && n[1] > 0, `${what}: both shards hold some (${JSON.stringify(n)})`);
}

// Resolves with 'welcome' or the disconnect's reason, for one connection attempt.
async function verdict(url) {
  const c = await rawConnect(url);
  const f = await c.waitFor((x) => isWelcome(x) || isDisconnect(x), 5000, 'welcome or disconnect');
  return { c, verdict: isWelcome(f) ? 'welcome' : f.json.reason };
}

async function openMany(b, n, user = (i) => `user${i}`) {
  const out = [];
  for (let i = 0; i < n; i++) {
    const c = await rawConnect(b.urlFor(b.mint(user(i))));
    await c.welcome();
    out.push(c);
  }
  return out;
}

describe('limits span the shards', () => {
  const ctx = useBroker({
    pluginOpts: { ...SHARDS, max_connections_per_user: '3', max_connections: '10' },
  });

  test('max_connections_per_user counts the user on every shard', async () => {
    const b = ctx.broker;
    const results = [];
    for (let i = 0; i < 12; i++) results.push(await verdict(b.urlFor(b.mint('carol'))));
    const welcomed = results.filter((r) => r.verdict === 'welcome');
    assert.equal(welcomed.length, 3, 'three welcomed in all');
    for (const r of results.filter((x) => x.verdict !== 'welcome')) {
      assert.equal(r.verdict, 'too_many_connections');
    }
    for (const r of results) await r.c.close();
  });

  test('max_connections counts every shard; a closed one makes room on either', async () => {
    const b = ctx.broker;
    const conns = await openMany(b, 10);
    await assertBothShards(b, 'ten connections');
    const { c, verdict: v } = await verdict(b.urlFor(b.mint('eleventh')));
    assert.equal(v, 'too_many_connections', 'the eleventh is refused');
    await c.close();
    await conns[0].close();
    await sleep(200);
    const again = await verdict(b.urlFor(b.mint('twelfth')));
    assert.equal(again.verdict, 'welcome', 'room again after a close');
  });
});

describe('traffic across the shards', () => {
  const ctx = useBroker({ pluginOpts: SHARDS });

  test("every browser's speaks reach MQTT in its order, none lost; every one gets every device message", async () => {
    const b = ctx.broker;
    const N = 12;
    const PER = 100;
    const conns = await openMany(b, N);
    await assertBothShards(b, `${N} connections`);
    const ids = conns.map((_, i) => actuatorId(100 + i));
    const shared = actuatorId(42);
    for (let i = 0; i < N; i++) {
      assert.equal((await conns[i].subscribeAndWait(ids[i])).json.type, 'confirm_subscription');
      assert.equal((await conns[i].subscribeAndWait(shared)).json.type, 'confirm_subscription');
    }
    const mq = await mqttConnect(b.mqttUrl);
    await mq.subscribe('actuators/+/cmd');
    for (let k = 0; k < PER; k++) {
      for (let i = 0; i < N; i++) conns[i].perform(ids[i], 'speak', { message: `${i}:${k}` });
    }
    const next = new Array(N).fill(0);
    for (let got = 0; got < N * PER; got++) {
      const m = await mq.next(10000);
      const [i, k] = JSON.parse(m.text).message.split(':').map(Number);
      assert.equal(m.topic, `actuators/${100 + i}/cmd`);
      assert.equal(k, next[i], `browser ${i}'s speaks arrive in its order`);
      next[i]++;
    }
    await mq.expectNone(300);

    const dev = await mqttConnect(b.mqttUrl);
    for (let k = 0; k < 50; k++) await dev.publish('actuators/42/state', JSON.stringify({ k }));
    for (const c of conns) {
      for (let k = 0; k < 50; k++) {
        assert.equal((await c.waitFor(isMessageFor(shared), 5000)).json.message.k, k);
      }
    }
  });

  test('an answer reaches the browser that performed, whichever shard it is on', async () => {
    const b = ctx.broker;
    const N = 10;
    const conns = await openMany(b, N);
    await assertBothShards(b, `${N} connections`);
    const id = actuatorId(7);
    for (const c of conns) assert.equal((await c.subscribeAndWait(id)).json.type, 'confirm_subscription');
    // "status" answers "all": an ack for each perform, to its own browser only.
    for (let i = 0; i < N; i++) conns[i].perform(id, 'status', { message: 'status', $request: `r${i}` });
    for (let i = 0; i < N; i++) {
      const f = await conns[i].waitFor(
        (x) => isMessageFor(id)(x) && x.json.message.$cable === 'ack', 5000, 'its ack');
      assert.equal(f.json.message.request, `r${i}`, 'its own ack');
    }
    await sleep(200);
    for (let i = 0; i < N; i++) {
      const acks = conns[i].received().filter((x) => isMessageFor(id)(x) && x.json.message.$cable === 'ack');
      assert.equal(acks.length, 1, 'one ack each');
    }
  });
});

describe('a reload and a shutdown reach every shard', () => {
  const example = JSON.parse(readFileSync(path.join(REPO, 'config', 'channels.example.json'), 'utf8'));
  const ROOM = { params: { room: { type: 'string', pattern: '^[a-z]+$' } }, streams: ['rooms/{room}/messages'] };
  const withRoom = JSON.stringify({ channels: { ...example.channels, RoomChannel: ROOM } });
  const withoutRoom = JSON.stringify({ channels: { ...example.channels } });
  const ctx = useBroker({
    files: { 'channels.json': withRoom },
    pluginOpts: { ...SHARDS, channels_file: '$DIR/channels.json' },
  });
  const room = JSON.stringify({ channel: 'RoomChannel', room: 'lobby' });

  test('SIGHUP: every browser on either shard loses the removed channel; server_restart for all at stop', async () => {
    const b = ctx.broker;
    const conns = await openMany(b, 10);
    await assertBothShards(b, 'ten connections');
    for (const c of conns) assert.equal((await c.subscribeAndWait(room)).json.type, 'confirm_subscription');
    writeFileSync(path.join(b.dir, 'channels.json'), withoutRoom);
    const from = b.log().length;
    process.kill(b.pid, 'SIGHUP');
    await waitForLog(b, /mosquitto-cable: reloaded/, 5000, from);
    for (const c of conns) await c.waitFor(isReject(room), 5000, 'reject_subscription after the reload');
    for (const c of conns) assert.equal(c.closeInfo, null, 'still connected');

    await b.stop();
    for (const c of conns) {
      const d = await c.waitFor(isDisconnect, 5000, 'disconnect at stop');
      assert.deepEqual(d.json, { type: 'disconnect', reason: 'server_restart', reconnect: true });
      assert.equal((await c.waitClosed(5000)).code, 1001);
    }
  });
});
