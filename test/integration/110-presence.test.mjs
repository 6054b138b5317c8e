// Presence (AnyCable's join / leave / presence info) with the real @anycable/core client:
// between two users, several connections of one user, the TTL after a dropped
// connection (and no flicker on a quick reconnect), the info size cap, a foreign id,
// the watcher count mirrored to MQTT, and a stock Rails client on the same channel that
// sees none of it. docs/protocol.md ("Presence") and docs/channels.md ("presence").
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';

import { mqttConnect, createCable as railsCable, withTimeout, sleep } from './lib/index.mjs';
import { brokerWithChannels, wireVariants, anycable, subscribed, metric } from './lib/anycable.mjs';

const TTL_S = 2;
const CHANNELS = {
  channels: {
    DeskChannel: {
      params: { id: { type: 'integer', min: 0, max: 1000 } },
      streams: ['desks/{id}/state'],
      presence: { ttl: TTL_S, info_max_bytes: 64, watchers_topic: 'desks/{id}/watchers' },
      whisper: true,
    },
    // No presence: join and info are answered with an error, never left hanging.
    PlainChannel: { params: { id: { type: 'integer' } }, streams: ['plain/{id}'] },
  },
};

const broker = await brokerWithChannels(CHANNELS);

let nextDesk = 1; // a desk (a presence room) per test, so tests never see each other
const url = broker.wsUrl;
const mint = (user) => broker.mint(user);

for (const [wire, wireOpts] of await wireVariants(url)) {
  // One user's client on desk `id`: its cable, channel and queues.
  async function client(user, id, opts = {}) {
    const { cable, events } = anycable(url, mint(user), { ...wireOpts, ...opts });
    const sub = await subscribed(cable, 'DeskChannel', { id });
    return { cable, events, ...sub };
  }

  describe(wire, () => {
    test('join, info and leave between two users; each user sees the other', async () => {
      const id = nextDesk++;
      const a = await client('alice', id);
      const b = await client('bob', id);
      // B asks first: nobody is present.
      assert.deepEqual(await withTimeout(b.ch.presence.info(), 3000, 'info()'), {});

      await a.ch.presence.join('alice', { name: 'Ann' });
      assert.deepEqual(await b.presence.next(3000, 'join on B'), { type: 'join', id: 'alice', info: { name: 'Ann' }});
      // The joiner hears its own join too (AnyCable broadcasts it to everyone).
      assert.equal((await a.presence.next(3000, 'join on A')).id, 'alice');
      // B's state follows the events; a fresh client gets it from info().
      assert.deepEqual(await b.ch.presence.info(), { alice: { name: 'Ann' } });
      const c = await client('carol', id);
      assert.deepEqual(await withTimeout(c.ch.presence.info(), 3000, 'info() of C'), { alice: { name: 'Ann' } });

      await b.ch.presence.join('bob', { name: 'Bob' });
      await c.presence.nextMatching((e) => e.type === 'join' && e.id === 'bob', 3000, 'join of bob on C');
      assert.deepEqual(await withTimeout(c.ch.presence.info(), 3000, 'info() of C'),
        { alice: { name: 'Ann' }, bob: { name: 'Bob' } });

      await a.ch.presence.leave();
      const left = await b.presence.nextMatching((e) => e.type === 'leave', 3000, 'leave on B');
      assert.equal(left.id, 'alice');
      assert.equal('info' in left, false, 'a leave carries no info');
      assert.deepEqual(await b.ch.presence.info(), { bob: { name: 'Bob' } }); // kept by the events
      // Unsubscribing leaves too (at once, no TTL).
      await b.ch.disconnect();
      await c.presence.nextMatching((e) => e.type === 'leave' && e.id === 'bob', 3000, 'leave of bob on C');
      assert.deepEqual(await c.ch.presence.info(), {});
    });

    test('presence events reach a subscription that never asked, on ext connections only', async () => {
      const id = nextDesk++;
      const w = await client('walter', id); // no info(), no join
      const a = await client('alice', id);
      await a.ch.presence.join('alice', {});
      await a.presence.next(3000, 'own join');
      if (wireOpts.subprotocol === undefined) {
        assert.equal((await w.presence.next(3000, 'join on an ext connection')).id, 'alice');
      } else {
        await w.presence.expectNone(500); // a v1 connection gets them once it uses presence
      }
    });

    test('two connections of one user count once', async () => {
      const id = nextDesk++;
      const w = await client('walter', id);
      await w.ch.presence.info();
      const tab1 = await client('alice', id);
      const tab2 = await client('alice', id);
      await tab1.ch.presence.join('alice', { tab: 1 });
      assert.equal((await w.presence.next(3000, 'join')).id, 'alice');
      await tab2.ch.presence.join('alice', { tab: 2 });
      await w.presence.expectNone(500); // the second tab is no news
      const info = await tab2.ch.presence.info();
      assert.deepEqual(Object.keys(info), ['alice']);

      await tab1.ch.presence.leave();
      await w.presence.expectNone(500); // alice is still there in tab 2
      await tab2.ch.presence.leave();
      assert.deepEqual(await w.presence.next(3000, 'leave'), { type: 'leave', id: 'alice' });
    });

    test('an abrupt drop leaves only after the TTL; a quick reconnect shows no flicker', async () => {
      const id = nextDesk++;
      const w = await client('walter', id);
      await w.ch.presence.info();

      // A client that will not come back (no monitor: no reconnect).
      const gone = await client('dora', id, { monitor: false });
      await gone.ch.presence.join('dora', {});
      assert.equal((await w.presence.next(3000, 'join of dora')).id, 'dora');
      const droppedAt = Date.now();
      gone.cable.transport.ws.terminate();
      // Still present within the TTL...
      await w.presence.expectNone(TTL_S * 1000 - 700);
      assert.deepEqual(Object.keys(await w.ch.presence.info()), ['dora']);
      // ...and gone after it.
      const left = await w.presence.next(TTL_S * 1000 + 5000, 'leave of dora after the TTL');
      assert.equal(left.type, 'leave');
      assert.equal(left.id, 'dora');
      assert.ok(Date.now() - droppedAt >= TTL_S * 1000, 'not before the TTL');

      // A client that reconnects at once re-joins (the client re-sends its presence):
      // no leave, no second join, even long past the TTL.
      const back = await client('erik', id);
      await back.ch.presence.join('erik', { n: 1 });
      assert.equal((await w.presence.next(3000, 'join of erik')).id, 'erik');
      const reconnected = back.events.nextMatching((e) => e.type === 'connect' && e.arg?.reconnect, 5000, 'reconnect');
      back.cable.transport.ws.terminate();
      await reconnected;
      await withTimeout(back.ch.ensureSubscribed(), 5000, 'resubscribed');
      await w.presence.expectNone(TTL_S * 1000 + 1500);
      assert.deepEqual(await w.ch.presence.info(), { erik: { n: 1 } });
    });

    test('info over the size cap is refused with a presence error', async () => {
      const id = nextDesk++;
      const w = await client('walter', id);
      await w.ch.presence.info();
      const a = await client('alice', id);
      await a.ch.presence.join('alice', { bio: 'x'.repeat(100) }); // over 64 bytes
      const err = await a.presence.next(3000, 'presence error');
      assert.equal(err.type, 'error');
      await w.presence.expectNone(500);
      assert.deepEqual(await w.ch.presence.info(), {});
      assert.ok(await metric(broker, 'cable_presence_errors_total') >= 1);
    });

    test('a client-supplied id that is not the user is refused: nobody appears', async () => {
      const id = nextDesk++;
      const w = await client('walter', id);
      await w.ch.presence.info();
      const a = await client('alice', id);
      await a.ch.presence.join('admin', { name: 'Not Alice' });
      assert.equal((await a.presence.next(3000, 'presence error')).type, 'error');
      await w.presence.expectNone(500);
      assert.deepEqual(await w.ch.presence.info(), {});
    });

    test('a channel without presence answers join and info with an error', async () => {
      const { cable } = anycable(url, mint('alice'), wireOpts);
      const { ch } = await subscribed(cable, 'PlainChannel', { id: 1 });
      await assert.rejects(withTimeout(ch.presence.info(), 3000, 'info()'), /failed to retrieve presence/);
    });

    test('the watcher count is mirrored to MQTT, retained and coalesced', async () => {
      const id = nextDesk++;
      const topic = `desks/${id}/watchers`;
      const device = await mqttConnect(broker.mqttUrl);
      await device.subscribe(topic);
      const a = await client('alice', id);
      const b = await client('bob', id);
      const counts = () => device.messages.all.filter((m) => m.topic === topic).map((m) => m.text);
      const until = async (text) => {
        await device.messages.nextMatching((m) => m.topic === topic && m.text === text, 5000, `count ${text}`);
      };
      await a.ch.presence.join('alice', {});
      await until('1');
      await b.ch.presence.join('bob', {});
      await until('2');
      // A device that connects now learns the count from the retained message.
      const late = await mqttConnect(broker.mqttUrl);
      await late.subscribe(topic);
      const retained = await late.nextOn(topic);
      assert.equal(retained.text, '2');
      assert.equal(retained.retain, true);
      // Quick changes are coalesced: leave and re-join within a second publish at most
      // the final count, never more than one message per second.
      await b.ch.presence.leave();
      await b.ch.presence.join('bob', {});
      await a.ch.presence.leave();
      await until('1');
      const seq = counts();
      assert.ok(seq.length <= 4, `at most one publish per change window: ${seq}`);
      await b.ch.presence.leave();
      await until('0');
      assert.ok(await metric(broker, 'cable_watchers_published_total') >= 3);
    });

    test('a stock Rails client on the same channel sees device data and no presence frames', async () => {
      const id = nextDesk++;
      const rails = railsCable(broker.urlFor(mint('rita')));
      const rs = rails.subscribe({ channel: 'DeskChannel', id });
      await rs.confirmed();
      const a = await client('alice', id);
      await a.ch.presence.join('alice', { name: 'Ann' });
      await a.presence.next(3000, 'own join');
      await a.ch.presence.leave();
      const device = await mqttConnect(broker.mqttUrl);
      await device.publish(`desks/${id}/state`, JSON.stringify({ lamp: 'on' }));
      assert.deepEqual(await rs.next(), { lamp: 'on' });
      await rs.expectNone(500);
      assert.deepEqual(rs.events.all.map((e) => e.type), ['connected', 'received']);
    });
  });
}

// Last: it changes the broker's channel map. A reload that keeps a channel's presence
// keeps its room (nobody leaves); one that turns presence off ends it: the members
// leave, and presence commands get the error from then on.
test('a reload keeps presence as it is, or ends it with leaves', async () => {
  const id = nextDesk++;
  const wireOpts = (await wireVariants(url))[0][1];
  const a = await subscribed(anycable(url, mint('alice'), wireOpts).cable, 'DeskChannel', { id });
  await a.ch.presence.join('alice', {});
  await a.presence.next(3000, 'own join');
  // walter connects after alice: the gateway re-binds the newer connection first.
  const w = await subscribed(anycable(url, mint('walter'), wireOpts).cable, 'DeskChannel', { id });
  assert.deepEqual(Object.keys(await w.ch.presence.info()), ['alice']);

  const reload = async (channels) => {
    writeFileSync(path.join(broker.dir, 'channels.json'), JSON.stringify(channels));
    const from = broker.log().length;
    process.kill(broker.pid, 'SIGHUP');
    for (let i = 0; i < 100 && !broker.log().slice(from).includes('reloaded'); i++) await sleep(50);
    await sleep(200);
  };
  await reload(CHANNELS);
  await w.presence.expectNone(500);
  assert.deepEqual(Object.keys(await w.ch.presence.info()), ['alice']);

  const off = structuredClone(CHANNELS);
  delete off.channels.DeskChannel.presence;
  await reload(off);
  assert.deepEqual(await w.presence.next(3000, 'leave'), { type: 'leave', id: 'alice' });
  w.ch.presence.reset(); // forget the client's cached state: ask the server
  await assert.rejects(withTimeout(w.ch.presence.info(), 3000, 'info()'), /failed to retrieve presence/);
});
