// Scale-out over Mosquitto bridges: two brokers, each running the plugin, joined by an
// ordinary bridge. A browser on broker B sees a device on broker A, and its speak
// reaches the device on A; a browser on A sees what is spoken on B.
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import {
  startBroker, connectAndSubscribe, mqttConnect, actuatorParams, runCleanups,
} from './lib/index.mjs';

let a, b;

before(async () => {
  a = await startBroker();
  const mqttA = new URL(a.mqttUrl).port;
  b = await startBroker({
    extraConf: [
      'connection to-a',
      `address 127.0.0.1:${mqttA}`,
      'topic actuators/# both 0',
      'cleansession true',
      'restart_timeout 1',
    ],
  });
  // Wait until the bridge is up: a message published on A arrives at an MQTT client on B.
  const onB = await mqttConnect(b.mqttUrl);
  await onB.subscribe('actuators/#');
  const dev = await mqttConnect(a.mqttUrl);
  for (let i = 0; i < 50; i++) {
    await dev.publish('actuators/0/state', 'probe');
    try { await onB.nextOn('actuators/0/state', 200); return; } catch { /* not yet */ }
  }
  throw new Error(`bridge B -> A did not come up\n${b.log()}`);
});

// Close the clients each test opened (useBroker does this for single-broker files).
afterEach(() => runCleanups());

after(async () => {
  await runCleanups();
  await b?.stop();
  await a?.stop();
});

test('a device on broker A reaches a browser on broker B', async () => {
  const { subs: [s] } = await connectAndSubscribe(b, 'alice', [actuatorParams(42)]);
  const dev = await mqttConnect(a.mqttUrl);
  await dev.publish('actuators/42/state', '{"on":true,"from":"A"}');
  assert.deepEqual(await s.next(5000), { on: true, from: 'A' });
});

test('speak on broker B reaches the device on A and a browser on A', async () => {
  const { subs: [onA] } = await connectAndSubscribe(a, 'carol', [actuatorParams(42)]);
  const { subs: [onB] } = await connectAndSubscribe(b, 'bob', [actuatorParams(42)]);
  const dev = await mqttConnect(a.mqttUrl);
  await dev.subscribe('actuators/42/cmd');
  onB.perform('speak', { message: 'over the bridge' });
  const m = await dev.nextOn('actuators/42/cmd', 5000);
  assert.deepEqual(JSON.parse(m.text), { user: 'bob', message: 'over the bridge' });
  assert.deepEqual(await onA.next(5000), { user: 'bob', message: 'over the bridge' });
  assert.deepEqual(await onB.next(5000), { user: 'bob', message: 'over the bridge' });
});
