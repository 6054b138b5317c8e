// Pings: {"type":"ping","message":<unix seconds, integer>} about every 3 s, to every
// connection; the stock client's monitor (stale after 6 s) stays happy.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  useBroker, rawConnect, isPing, createCable, actuatorParams, sleep,
} from './lib/index.mjs';

const ctx = useBroker();

test('pings come about every 3 s with increasing integer Unix seconds, to every connection', async () => {
  const b = ctx.broker;
  const a = await rawConnect(b.urlFor(b.mint('alice')));
  const c = await rawConnect(b.urlFor(b.mint('carol')));
  await a.welcome();
  await c.welcome();

  // Three pings on `a` give two intervals.
  const pings = [];
  for (let i = 0; i < 3; i++) pings.push(await a.waitFor(isPing, 5000, `ping #${i + 1}`));
  for (const p of pings) {
    assert.deepEqual(Object.keys(p.json).sort(), ['message', 'type'], `ping shape: ${p.raw}`);
    assert.ok(Number.isInteger(p.json.message), `message is an integer: ${p.raw}`);
    assert.ok(Math.abs(p.json.message - p.at / 1000) < 5, `message is Unix seconds now: ${p.raw} at ${p.at}`);
    assert.match(p.raw, /"message":\d+[,}]/, `integer, not float or string: ${p.raw}`);
  }
  for (let i = 1; i < pings.length; i++) {
    const dt = (pings[i].at - pings[i - 1].at) / 1000;
    assert.ok(dt >= 2 && dt <= 4.5, `interval ${i}: ${dt.toFixed(3)} s, expected about 3 s`);
    assert.ok(pings[i].json.message > pings[i - 1].json.message,
      `timestamps increase: ${pings[i - 1].json.message} then ${pings[i].json.message}`);
  }
  // The other connection got pings during the same time.
  assert.ok(c.frames.count(isPing) >= 2, `second connection got ${c.frames.count(isPing)} pings`);
});

test('the first ping comes within 4.5 s of the welcome', async () => {
  const b = ctx.broker;
  const a = await rawConnect(b.urlFor(b.mint('alice')));
  const w = await a.welcome();
  const p = await a.waitFor(isPing, 5000, 'first ping');
  assert.ok(p.at - w.at <= 4500, `first ping ${p.at - w.at} ms after welcome`);
});

test('the stock client stays connected past its 6 s stale threshold (no reconnect)', async () => {
  const b = ctx.broker;
  const cable = createCable(b.urlFor(b.mint('alice')));
  const sub = cable.subscribe(actuatorParams(42));
  await sub.confirmed();
  const ws = cable.webSocket;
  await sleep(8000);
  assert.equal(cable.webSocket, ws, 'the client did not open a new socket');
  assert.equal(cable.connection.isOpen(), true);
  assert.equal(cable.connection.monitor.reconnectAttempts, 0);
  assert.ok(!sub.events.all.some((e) => e.type === 'disconnected'), 'no disconnected() callback');
  const staleFor = (Date.now() - cable.connection.monitor.pingedAt) / 1000;
  assert.ok(staleFor < 4.5, `last message ${staleFor.toFixed(1)} s ago`);
});
