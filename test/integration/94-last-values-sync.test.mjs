// A browser that subscribes before the internal client has synchronised with the broker
// (the broker just started and browsers are reconnecting, or the client is reconnecting)
// gets the retained values when it synchronises, before any live message.
import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import {
  startBroker, runCleanups, onCleanup, rawConnect, mqttConnect, actuatorId, sleep, isConfirm,
  isMessageFor,
} from './lib/index.mjs';
import { waitForLog } from './fixtures/util.mjs';
import { openStateDoor } from './fixtures/last-values.mjs';

afterEach(runCleanups);

test('a subscribe made before the synchronisation is answered by it, then live messages follow', async () => {
  // The plugin's door (late.sock) opens only when the test relays it to the broker's
  // listener (state.sock): until then the internal client cannot connect.
  const b = await startBroker({
    extraConf: ['listener 0 $DIR/state.sock'],
    pluginOpts: { state_listener: '$DIR/late.sock' },
  });
  onCleanup(() => b.stop());
  const dev = await mqttConnect(b.mqttUrl);
  await dev.publish('actuators/20/state', '"before"', { retain: true, qos: 1 });

  const id = actuatorId(20);
  const c = await rawConnect(b.urlFor(b.mint('alice')));
  await c.welcome();
  c.subscribe(id);
  await c.waitFor(isConfirm(id));
  await sleep(500);
  assert.equal(c.received().filter(isMessageFor(id)).length, 0, 'nothing before the synchronisation');

  await openStateDoor(b);

  const first = await c.waitFor(isMessageFor(id), 5000, 'the replay at synchronisation');
  assert.equal(first.json.message, 'before');
  await waitForLog(b, /last values: connected/);
  await dev.publish('actuators/20/state', '"after"');
  const second = await c.waitFor(isMessageFor(id), 3000, 'the live message');
  assert.equal(second.json.message, 'after');
  await sleep(200);
  assert.deepEqual(c.received().filter(isMessageFor(id)).map((f) => f.json.message), ['before', 'after']);
});
