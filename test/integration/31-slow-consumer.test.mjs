// Slow consumers: a browser that stops reading while a device floods its stream is
// disconnected once more than plugin_opt_max_outbound_bytes wait for it, and a healthy
// browser on the same stream keeps receiving every message, in order. The broker's
// memory stays bounded whatever a client does.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  useBroker, rawConnect, connectAndSubscribe, mqttConnect, actuatorParams, actuatorId,
  isDisconnect, notPing,
} from './lib/index.mjs';

// A connection is too slow when more than the bound waits for it while its socket takes
// no more data, or 16 times the bound in any case (docs/configuration.md). A burst of
// 200 x 1 KB is about three times this bound: a healthy browser must ride it out.
const MAX_OUTBOUND = 65536;
const BATCH = 200;
const MAX_MESSAGES = 60_000; // ~60 MB: far beyond any socket buffer on loopback
const PAD = 'x'.repeat(1000);

// One stalled reader and one healthy browser on ActuatorChannel 42; a device publishes
// ~1 KB messages in bursts of `burst`, and the test waits for the healthy browser after
// each burst (so only the stalled one can fall behind) until the plugin has closed the
// stalled one.
async function stalledAndHealthy(b, burst) {
  const id = actuatorId(42);
  const { cable, subs: [healthy] } = await connectAndSubscribe(b, 'healthy', [actuatorParams(42)]);

  const slow = await rawConnect(b.urlFor(b.mint('slow')));
  const welcome = await slow.welcome();
  const sid = welcome.json.sid;
  assert.equal((await slow.subscribeAndWait(id)).json.type, 'confirm_subscription');
  slow.ws._socket.pause(); // stop reading: the kernel buffers fill, then the plugin's queue
  const tooSlowLine = new RegExp(`connection ${sid} \\(127\\.0\\.0\\.1\\) closed: too slow, \\d+ bytes waiting`);

  const dev = await mqttConnect(b.mqttUrl);
  let sent = 0;
  let received = 0;
  const order = [];
  const publishBurst = () => {
    for (let i = 0; i < burst; i++) dev.client.publish('actuators/42/state', `{"seq":${sent++},"pad":"${PAD}"}`);
  };
  const drainHealthy = async () => {
    while (received < sent) {
      let m;
      try {
        m = await healthy.next(5000);
      } catch (e) {
        const lines = b.log().split('\n').filter((l) => l.includes('too slow')).join('\n');
        const ev = healthy.events.all.filter((x) => x.type !== 'received').map((x) => x.type).join(', ');
        throw new Error(`the healthy browser got ${received} of ${sent} messages (callbacks: ${ev}); ` +
          `broker log:\n${lines}`);
      }
      order.push(m.seq);
      received++;
    }
  };
  while (!tooSlowLine.test(b.log()) && sent < MAX_MESSAGES) {
    publishBurst();
    await drainHealthy();
  }
  assert.match(b.log(), tooSlowLine, `the stalled connection was not closed after ${sent} messages of ~1 KB`);

  // More after the close: the healthy one still gets them.
  publishBurst();
  await drainHealthy();
  assert.deepEqual(order, [...Array(sent).keys()], 'the healthy browser got every message, in order');
  await healthy.expectNone(200);
  assert.ok(cable.connection.isOpen(), 'the healthy browser is still connected');
  assert.equal(healthy.events.count((e) => e.type === 'disconnected'), 0);

  // The stalled client reads again: what the kernel held, then too_slow, then the close.
  slow.ws._socket.resume();
  const close = await slow.waitClosed(15_000);
  const frames = slow.received().filter(notPing);
  const last = frames[frames.length - 1];
  assert.deepEqual(last.json, { type: 'disconnect', reason: 'too_slow', reconnect: true },
    `last frame ${last.raw?.slice(0, 200)}`);
  assert.equal(slow.frames.count(isDisconnect), 1);
  assert.equal(close.code, 1000, 'close code');
  // What it got before the disconnect is the start of the stream, in order.
  const seqs = frames.filter((f) => f.json?.identifier === id && f.json.message).map((f) => f.json.message.seq);
  assert.ok(seqs.length < sent, 'it did not get everything');
  assert.deepEqual(seqs, [...Array(seqs.length).keys()], 'what it got is the start of the stream, in order');
}

describe(`plugin_opt_max_outbound_bytes ${MAX_OUTBOUND}`, () => {
  const ctx = useBroker({ pluginOpts: { max_outbound_bytes: MAX_OUTBOUND } });

  test('a device flood (bursts of 200 x 1 KB): the stalled reader is closed (too_slow), the healthy browser gets every message in order', async () => {
    await stalledAndHealthy(ctx.broker, 200);
  });

  test('paced device traffic (bursts of 3 x 1 KB): the stalled reader is closed, the healthy browser gets every message in order', async () => {
    await stalledAndHealthy(ctx.broker, 3);
  });
});
