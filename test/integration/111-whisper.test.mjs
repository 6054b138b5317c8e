// Whisper (AnyCable's channel.whisper) with the real @anycable/core client: it reaches
// the other subscribers of the same channel and streams, never the sender, never MQTT
// (a witness subscribed to '#'), within a per-connection rate and a size cap (over
// either: dropped and counted), and only on channels that turn it on.
// docs/protocol.md ("Whisper") and docs/channels.md ("whisper").
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { mqttConnect, createCable as railsCable, sleep } from './lib/index.mjs';
import { brokerWithChannels, wireVariants, anycable, subscribed, metric } from './lib/anycable.mjs';

const BURST = 5;
const CHANNELS = {
  channels: {
    DeskChannel: {
      params: { id: { type: 'integer', min: 0, max: 1000 } },
      streams: ['desks/{id}/state'],
      whisper: { rate: 1, burst: BURST, max_bytes: 100 },
    },
    // Whisper off: ignored, as AnyCable does.
    QuietChannel: { params: { id: { type: 'integer' } }, streams: ['quiet/{id}'] },
  },
};

const broker = await brokerWithChannels(CHANNELS);

let nextDesk = 1;
const url = broker.wsUrl;

for (const [wire, wireOpts] of await wireVariants(url)) {
  async function client(user, channel, id) {
    const { cable } = anycable(url, broker.mint(user), wireOpts);
    return { cable, ...(await subscribed(cable, channel, { id })) };
  }

  describe(wire, () => {
    test('a whisper reaches the others on the channel, not the sender, not MQTT', async () => {
      const id = nextDesk++;
      const witness = await mqttConnect(broker.mqttUrl);
      await witness.subscribe('#');
      const a = await client('alice', 'DeskChannel', id);
      const b = await client('bob', 'DeskChannel', id);
      const a2 = await client('alice', 'DeskChannel', id); // alice's other tab hears her
      const other = await client('carol', 'DeskChannel', id + 500); // another desk does not

      await a.ch.whisper({ event: 'typing', user: 'alice' });
      const got = await b.messages.next(3000, 'whisper on B');
      assert.deepEqual(got.msg, { event: 'typing', user: 'alice' });
      assert.equal(got.meta, undefined, 'a whisper carries no stream position');
      assert.deepEqual((await a2.messages.next(3000, 'whisper on A2')).msg, { event: 'typing', user: 'alice' });
      // Raw JSON of any type travels as it is.
      await b.ch.whisper([1, 'two', null]);
      assert.deepEqual((await a.messages.next(3000, 'whisper on A')).msg, [1, 'two', null]);

      await a.messages.expectNone(300);
      await b.messages.expectNone(300);
      await other.messages.expectNone(300);
      await witness.expectNone(300, (m) => !m.topic.startsWith('$SYS'));
      // Device data still flows as before.
      await witness.publish(`desks/${id}/state`, '{"lamp":"off"}');
      assert.deepEqual((await b.messages.next(3000, 'device data')).msg, { lamp: 'off' });
    });

    test('over the rate or the size cap a whisper is dropped and counted', async () => {
      const id = nextDesk++;
      const a = await client('alice', 'DeskChannel', id);
      const b = await client('bob', 'DeskChannel', id);
      const rate0 = await metric(broker, 'cable_whispers_dropped_total{reason="rate"}');
      const size0 = await metric(broker, 'cable_whispers_dropped_total{reason="size"}');

      await a.ch.whisper({ big: 'x'.repeat(200) });
      for (let i = 0; i < 3 * BURST; i++) await a.ch.whisper({ i });
      await sleep(800);
      const seen = b.messages.all.map((m) => m.msg);
      // The bucket holds BURST whispers; at 1/s hardly one more comes in meanwhile.
      assert.ok(seen.length >= BURST && seen.length <= BURST + 1, `got ${JSON.stringify(seen)}`);
      assert.deepEqual(seen.slice(0, BURST), [0, 1, 2, 3, 4].map((i) => ({ i })));
      assert.ok(!seen.some((m) => 'big' in m), 'the oversized whisper was dropped');
      assert.equal(await metric(broker, 'cable_whispers_dropped_total{reason="size"}'), size0 + 1);
      assert.equal(await metric(broker, 'cable_whispers_dropped_total{reason="rate"}') - rate0,
        3 * BURST - seen.length);
      assert.match(broker.log(), /whispers dropped: \d+ in the last 10 s/);
    });

    test('on a channel without whisper it is ignored', async () => {
      const id = nextDesk++;
      const a = await client('alice', 'QuietChannel', id);
      const b = await client('bob', 'QuietChannel', id);
      await a.ch.whisper({ event: 'typing' });
      await b.messages.expectNone(500);
    });

    test('a stock Rails client on the channel keeps its data; whispers reach it as data', async () => {
      const id = nextDesk++;
      const rails = railsCable(broker.urlFor(broker.mint('rita')));
      const rs = rails.subscribe({ channel: 'DeskChannel', id });
      await rs.confirmed();
      const device = await mqttConnect(broker.mqttUrl);
      await device.publish(`desks/${id}/state`, JSON.stringify({ lamp: 'on' }));
      assert.deepEqual(await rs.next(), { lamp: 'on' });
      // Its own whisper-shaped command is just an unknown perform action: nothing relayed.
      const a = await client('alice', 'DeskChannel', id);
      rs.perform('whisper', { event: 'typing' });
      await a.messages.expectNone(500);
      // A whisper on the channel reaches it as received(data), as on AnyCable: a channel
      // turns whisper on for every subscriber (docs/channels.md).
      await a.ch.whisper({ event: 'typing' });
      assert.deepEqual(await rs.next(), { event: 'typing' });
      assert.deepEqual(rs.events.all.map((e) => e.type), ['connected', 'received', 'received']);
    });
  });
}
