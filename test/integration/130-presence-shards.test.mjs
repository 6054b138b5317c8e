// Presence and whisper over gateway shards (plugin_opt_threads 2, the suite's default):
// enough browsers in one room that both shards get some (the kernel spreads
// connections; with USERS of them, all on one shard has a chance of 2^(1-USERS)). Each
// sees every other's join and whisper, never its own whisper; info lists everybody;
// a second tab of one user is no news; a dropped browser's leave reaches every other
// after the TTL; the watcher count mirrored to MQTT counts the users over every shard.
// docs/protocol.md ("Presence", "Whisper").
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { mqttConnect, sleep, withTimeout } from './lib/index.mjs';
import { brokerWithChannels, wireVariants, anycable, subscribed } from './lib/anycable.mjs';

const USERS = 10;
const TTL_S = 2;
const CHANNELS = {
  channels: {
    HallChannel: {
      params: { id: { type: 'integer', min: 0, max: 1000 } },
      streams: ['halls/{id}/state'],
      presence: { ttl: TTL_S, info_max_bytes: 64, watchers_topic: 'halls/{id}/watchers' },
      whisper: { rate: 50, burst: 50 },
    },
  },
};

const broker = await brokerWithChannels(CHANNELS);
const url = broker.wsUrl;
// The ext protocol where the server speaks it (presence frames reach every subscription).
const wireOpts = (await wireVariants(url)).at(-1)[1];

async function client(user, id, opts = {}) {
  const { cable, events } = anycable(url, broker.mint(user), { ...wireOpts, ...opts });
  const sub = await subscribed(cable, 'HallChannel', { id });
  await withTimeout(sub.ch.presence.info(), 5000, `info() of ${user}`); // speaks presence
  return { user, cable, events, ...sub };
}

// Wait until q has a pending item for every id in ids (pred(item, id)); returns them.
async function eachOf(q, ids, pred, what, ms = 8000) {
  const got = [];
  for (const id of ids) got.push(await q.nextMatching((e) => pred(e, id), ms, `${what} ${id}`));
  return got;
}

test('presence, whisper and the watcher count span the shards', async () => {
  const id = 7;
  const topic = `halls/${id}/watchers`;
  const device = await mqttConnect(broker.mqttUrl);
  await device.subscribe(topic);

  const users = Array.from({ length: USERS }, (_, i) => `user${i}`);
  const clients = [];
  for (const u of users) clients.push(await client(u, id, u === 'user0' ? { monitor: false } : {}));

  // Every join reaches every browser, its own included, once.
  for (const [i, c] of clients.entries()) await c.ch.presence.join(c.user, { n: i });
  for (const c of clients) {
    await eachOf(c.presence, users, (e, u) => e.type === 'join' && e.id === u, `join on ${c.user} of`);
  }
  // A second tab of user1 (somewhere) is no news, and counts once.
  const tab = await client('user1', id);
  await tab.ch.presence.join('user1', { n: 1 });

  // The server's info lists everybody (asked afresh, not from the client's events).
  for (const c of [...clients, tab]) {
    c.ch.presence.reset();
    const info = await withTimeout(c.ch.presence.info(), 5000, `info() of ${c.user}`);
    assert.deepEqual(Object.keys(info).sort(), [...users].sort(), `info on ${c.user}`);
    assert.deepEqual(info.user3, { n: 3 });
  }
  await sleep(300);
  for (const c of clients) await c.presence.expectNone(0, (e) => e.type === 'join', 'second join');

  // Every whisper reaches every other browser, never the sender's connection.
  for (const [i, c] of clients.entries()) await c.ch.whisper({ from: i });
  for (const [i, c] of clients.entries()) {
    const others = users.map((_, j) => j).filter((j) => j !== i);
    await eachOf(c.messages, others, (m, j) => m.msg?.from === j, `whisper on ${c.user} from`);
  }
  await eachOf(tab.messages, users.map((_, j) => j).filter((j) => j !== 1), (m, j) => m.msg?.from === j, 'whisper on the tab from');
  assert.equal(tab.messages.count((m) => m.msg?.from === 1), 1, 'user1\'s other tab hears it');
  for (const [i, c] of clients.entries()) {
    await c.messages.expectNone(200, (m) => m.msg?.from === i, 'own whisper');
  }

  // The mirror counts users over every shard (the tab counts once).
  await device.messages.nextMatching((m) => m.topic === topic && m.text === String(USERS), 8000, `count ${USERS}`);
  const late = await mqttConnect(broker.mqttUrl);
  await late.subscribe(topic);
  const retained = await late.nextOn(topic);
  assert.equal(retained.text, String(USERS));
  assert.equal(retained.retain, true);

  // A dropped browser leaves every other's presence after the TTL, and the count drops.
  clients[0].cable.transport.ws.terminate();
  for (const c of [...clients.slice(1), tab]) {
    const left = await c.presence.nextMatching((e) => e.type === 'leave', TTL_S * 1000 + 8000, `leave on ${c.user}`);
    assert.equal(left.id, 'user0');
  }
  await device.messages.nextMatching((m) => m.topic === topic && m.text === String(USERS - 1), 8000, `count ${USERS - 1}`);
  clients[1].ch.presence.reset();
  const info = await clients[1].ch.presence.info();
  assert.deepEqual(Object.keys(info).sort(), users.slice(1).sort());
});
