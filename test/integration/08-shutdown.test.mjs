// Broker shutdown (SIGTERM): every browser gets {"type":"disconnect",
// "reason":"server_restart","reconnect":true} and then close code 1001; the broker
// exits cleanly.
import { test, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import {
  startBroker, printBrokerLog, runCleanups, rawConnect, connectAndSubscribe, actuatorParams,
  actuatorId, isDisconnect, notPing,
} from './lib/index.mjs';

let broker = null;
afterEach(async (t) => {
  if (t.passed === false && broker) printBrokerLog(broker, `after failed test "${t.name}"`);
  await runCleanups();
  if (broker) await broker.stop(); // no-op when the test stopped it already
});
after(async () => {
  await runCleanups();
  if (broker) await broker.stop();
});

test('SIGTERM: server_restart + 1001 to every client (raw and stock), broker exits 0', async () => {
  broker = await startBroker();
  const b = broker;
  const raws = [];
  for (const user of ['r1', 'r2', 'r3']) {
    const c = await rawConnect(b.urlFor(b.mint(user)));
    await c.welcome();
    raws.push(c);
  }
  // One raw client subscribed, one not; two stock clients subscribed.
  await raws[0].subscribeAndWait(actuatorId(42));
  const { cable: cableA, subs: [subA] } = await connectAndSubscribe(b, 'alice', [actuatorParams(42)]);
  const { subs: [subB] } = await connectAndSubscribe(b, 'bob', [actuatorParams(43), actuatorParams(44)]);

  const t0 = Date.now();
  const stopped = b.stop();
  for (const c of raws) {
    const f = await c.waitFor(isDisconnect, 5000, 'disconnect');
    assert.deepEqual(f.json, { type: 'disconnect', reason: 'server_restart', reconnect: true }, f.raw);
    const { code } = await c.waitClosed(5000);
    assert.equal(code, 1001, 'close code');
    const after = c.received().filter(notPing);
    assert.equal(after[after.length - 1], f, 'disconnect is the last frame');
  }
  // The stock clients are told they may reconnect.
  assert.deepEqual(await subA.disconnected(5000), { willAttemptReconnect: true });
  assert.deepEqual(await subB.disconnected(5000), { willAttemptReconnect: true });
  assert.equal(cableA.connection.monitor.isRunning(), true, 'the stock client keeps its monitor for a reconnect');

  const { code, signal, log } = await stopped;
  assert.equal(signal, null, 'exited, not killed');
  assert.equal(code, 0, 'exit code');
  assert.ok(Date.now() - t0 < 5000, `shutdown took ${Date.now() - t0} ms`);
  assert.ok(!/\[harness\] broker did not exit/.test(log));
});

test('SIGTERM with a connection that never got past the handshake, and one mid-subscribe', async () => {
  broker = await startBroker();
  const b = broker;
  const idle = await rawConnect(b.urlFor(b.mint('idle')));
  const busy = await rawConnect(b.urlFor(b.mint('busy')));
  await idle.welcome();
  await busy.welcome();
  for (let i = 0; i < 20; i++) busy.subscribe(actuatorId(1000 + i));
  const stopped = b.stop();
  for (const c of [idle, busy]) {
    const f = await c.waitFor(isDisconnect, 5000, 'disconnect');
    assert.deepEqual(f.json, { type: 'disconnect', reason: 'server_restart', reconnect: true });
    assert.equal((await c.waitClosed(5000)).code, 1001);
  }
  const { code, signal } = await stopped;
  assert.equal(signal, null);
  assert.equal(code, 0);
});
