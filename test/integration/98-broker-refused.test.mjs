// A publish the broker does not accept (mosquitto_broker_publish_copy fails) is
// answered to the browser that performed: {"$cable":"refused","reason":"broker_refused"}.
// The real broker accepts every well-formed plugin publish, so this runs the plugin in
// test/host/minihost (the stand-in host of 42-no-websockets-host), told to refuse
// publishes to one topic; the browser is the stock @rails/actioncable client.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import jwt from 'jsonwebtoken';
import { createCable, actuatorParams, runCleanups } from './lib/index.mjs';
import { startMinihost } from './lib/minihost.mjs';

after(runCleanups);

test('the broker refusing a publish is answered with "broker_refused"', async () => {
  const h = await startMinihost({ env: { MINIHOST_REFUSE_TOPIC: 'actuators/42/cmd' } });
  const { secret, port, waitFor } = h;

  const token = jwt.sign({ sub: 'alice' }, secret, { algorithm: 'HS256', expiresIn: 60 });
  const cable = createCable(`ws://127.0.0.1:${port}/cable?jid=${token}`);
  const s42 = cable.subscribe(actuatorParams(42));
  const s43 = cable.subscribe(actuatorParams(43));
  await Promise.all([s42.confirmed(), s43.confirmed()]);

  s42.perform('speak', { message: 'on', $request: 'n1' });
  assert.deepEqual(await s42.next(),
    { $cable: 'refused', action: 'speak', request: 'n1', reason: 'broker_refused' });
  s42.perform('status', { message: 'status' });
  assert.deepEqual(await s42.next(),
    { $cable: 'refused', action: 'status', request: 2, reason: 'broker_refused' });
  await waitFor(() => (h.out().match(/^REFUSED actuators\/42\/cmd$/mg) || []).length === 2,
    'the host did not see both publishes');
  assert.match(h.err(), /publish to 'actuators\/42\/cmd' failed/);

  // Accepted elsewhere: the request goes out (the host takes its properties) and is
  // acknowledged; nothing more arrives for the refused subscription.
  s43.perform('status', { message: 'status' });
  await waitFor(() => h.out().includes('PUBLISH actuators/43/cmd\t{"user":"alice","message":"status"}'),
    'the status on 43 did not reach the host');
  assert.deepEqual(await s43.next(), { user: 'alice', message: 'status' }); // its echo
  assert.deepEqual(await s43.next(), { $cable: 'ack', action: 'status', request: 3 });
  await s42.expectNone(300);

  await cable.close();
  h.child.kill('SIGTERM');
  assert.equal(await h.exited, 0, h.err());
});
