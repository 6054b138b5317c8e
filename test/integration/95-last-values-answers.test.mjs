// Last values on (plugin_opt_state_listener): messages reach browsers through the internal
// client, so what the answers path needs from the broker must still arrive: the
// acknowledgement of a perform, and a device's reply on the asker's response topic ('$'
// topics, which the internal client's '#' does not match).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useBroker, connectAndSubscribe, mqttConnect, actuatorParams } from './lib/index.mjs';

const ctx = useBroker({ state: true });

test('with last values on: a perform is acknowledged, and a device reply reaches only the asker', async () => {
  const b = ctx.broker;
  const dev = await mqttConnect(b.mqttUrl, { protocolVersion: 5 });
  await dev.subscribe('actuators/+/cmd');
  const { subs: [alice] } = await connectAndSubscribe(b, 'alice', [actuatorParams(42)]);
  const { subs: [bob] } = await connectAndSubscribe(b, 'bob', [actuatorParams(42)]);

  alice.perform('status', { message: 'status', $request: 'ask-1' });
  const req = await dev.nextOn('actuators/42/cmd');
  const { responseTopic, correlationData } = req.properties;
  // The echo on the stream and the acknowledgement, in either order.
  const got = [await alice.next(), await alice.next()];
  assert.deepEqual(got.sort((x, y) => JSON.stringify(x).localeCompare(JSON.stringify(y))), [
    { $cable: 'ack', action: 'status', request: 'ask-1' },
    { user: 'alice', message: 'status' },
  ]);
  assert.deepEqual(await bob.next(), { user: 'alice', message: 'status' });

  await dev.publish(responseTopic, '{"on":false}', { properties: { correlationData } });
  assert.deepEqual(await alice.next(), { $cable: 'reply', request: 'ask-1', payload: { on: false } });
  await bob.expectNone(300);
  await alice.expectNone(0);
});
