// MQTT 5 request/response ("request": true in the channel map): the publish carries a
// response topic private to the performing subscription and correlation data, and what
// a device publishes to that response topic reaches only that browser, on that
// identifier, as {"$cable":"reply","request":...,"payload":...}. Real broker, the
// example channel map (ActuatorChannel's "status"), the stock @rails/actioncable
// client, and real MQTT 5 clients: a device, and a witness subscribed to '#'.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useBroker, connectAndSubscribe, mqttConnect, actuatorParams } from './lib/index.mjs';

const ctx = useBroker();

const mqtt5 = (url) => mqttConnect(url, { protocolVersion: 5 });

async function device(b, filter = 'actuators/+/cmd') {
  const dev = await mqtt5(b.mqttUrl);
  await dev.subscribe(filter);
  return dev;
}

test('a device reply reaches only the asking browser, on its identifier', async () => {
  const b = ctx.broker;
  const dev = await device(b);
  const witness = await mqtt5(b.mqttUrl);
  await witness.subscribe('#');
  const { subs: [alice] } = await connectAndSubscribe(b, 'alice', [actuatorParams(42)]);
  const { subs: [bob] } = await connectAndSubscribe(b, 'bob', [actuatorParams(42)]);

  alice.perform('status', { message: 'status', $request: 'ask-1' });
  const req = await dev.nextOn('actuators/42/cmd');
  assert.equal(req.text, '{"user":"alice","message":"status"}');
  const { responseTopic, correlationData } = req.properties;
  assert.match(responseTopic, /^\$cable\/reply\/[A-Za-z0-9_-]{22}$/);
  assert.equal(Buffer.from(correlationData).toString(), '"ask-1"');

  // Both browsers see the command on the cmd stream; alice is also acknowledged.
  assert.deepEqual(await alice.next(), { user: 'alice', message: 'status' });
  assert.deepEqual(await alice.next(), { $cable: 'ack', action: 'status', request: 'ask-1' });
  assert.deepEqual(await bob.next(), { user: 'alice', message: 'status' });

  // The device answers as MQTT 5 request/response says: to the response topic, with the
  // correlation data.
  await dev.publish(responseTopic, '{"on":false,"by":"alice","command":"status"}',
    { properties: { correlationData } });
  assert.deepEqual(await alice.next(), {
    $cable: 'reply', request: 'ask-1', payload: { on: false, by: 'alice', command: 'status' },
  });
  await bob.expectNone(300);
  // The witness on '#' saw the request (with its properties), never the reply: a '$'
  // topic matches no wildcard subscription.
  const seen = witness.messages.all.map((m) => m.topic);
  assert.deepEqual(seen, ['actuators/42/cmd']);
  assert.equal(witness.messages.all[0].properties.responseTopic, responseTopic);
});

test('each subscription has its own response topic; a connection keeps it', async () => {
  const b = ctx.broker;
  const dev = await device(b);
  const { subs: [a42, a43] } = await connectAndSubscribe(b, 'alice',
    [actuatorParams(42), actuatorParams(43)]);
  const { subs: [bob] } = await connectAndSubscribe(b, 'bob', [actuatorParams(42)]);
  a42.perform('status', { message: 'status' });
  a43.perform('status', { message: 'status' });
  bob.perform('status', { message: 'status' });
  a42.perform('status', { message: 'again' });
  // alice's three performs arrive in her order, bob's anywhere among them: tell them
  // apart by user and, without "$request", by the correlation data, which is the
  // connection's perform count (alice: 1 = a42, 2 = a43, 3 = a42 again; bob: 1).
  const byPerform = {};
  for (let i = 0; i < 4; i++) {
    const m = await dev.next();
    const { user } = JSON.parse(m.text);
    byPerform[`${user}-${m.properties.correlationData.toString()}`] = m.properties.responseTopic;
  }
  assert.deepEqual(Object.keys(byPerform).sort(), ['alice-1', 'alice-2', 'alice-3', 'bob-1']);
  assert.equal(byPerform['alice-1'], byPerform['alice-3'], 'the same subscription keeps its response topic');
  assert.equal(new Set(Object.values(byPerform)).size, 3, 'every subscription has its own');

  const replyTo43 = byPerform['alice-2'];
  await dev.publish(replyTo43, 'plain text', { properties: { correlationData: Buffer.from('2') } });
  const got = await a43.received.nextMatching((d) => d && d.$cable === 'reply');
  assert.deepEqual(got, { $cable: 'reply', request: 2, payload: 'plain text' });
  await a42.received.expectNone(300, (d) => d && d.$cable === 'reply');
});

test('a reply without correlation data, or binary, still reaches the asker', async () => {
  const b = ctx.broker;
  const dev = await device(b);
  const { subs: [s] } = await connectAndSubscribe(b, 'alice', [actuatorParams(42)]);
  s.perform('status', { message: 'status' });
  const { responseTopic } = (await dev.next()).properties;
  await dev.publish(responseTopic, Buffer.from([0, 1, 2, 255]));
  const got = await s.received.nextMatching((d) => d && d.$cable === 'reply');
  assert.deepEqual(got, { $cable: 'reply', payload_base64: 'AAEC/w==' });
});

test('after unsubscribing, or on a made-up token, a reply reaches nobody', async () => {
  const b = ctx.broker;
  const dev = await device(b);
  const { subs: [s] } = await connectAndSubscribe(b, 'alice', [actuatorParams(42)]);
  const { subs: [watcher] } = await connectAndSubscribe(b, 'bob', [actuatorParams(42)]);
  s.perform('status', { message: 'status' });
  const { responseTopic } = (await dev.next()).properties;
  s.unsubscribe();
  // Same connection, subscribed again: a new subscription, a new response topic.
  const again = s.cable.subscribe(actuatorParams(42));
  await again.confirmed();
  await dev.publish(responseTopic, '"late"');
  await dev.publish('$cable/reply/AAAAAAAAAAAAAAAAAAAAAA', '"forged"');
  await again.received.expectNone(400, (d) => d && d.$cable === 'reply');
  await watcher.received.expectNone(0, (d) => d && d.$cable === 'reply');
  const metrics = await (await fetch(`http://127.0.0.1:${b.wsPort}/metrics`)).text();
  assert.match(metrics, /^cable_replies_unclaimed_total 2$/m);
});

test('the simulated device answers "status" to the asker only', async () => {
  const { startDevice } = await import('../../demo/test-support/demo.mjs');
  const b = ctx.broker;
  const sim = await startDevice(b.mqttUrl, [44]);
  try {
    const witness = await mqttConnect(b.mqttUrl);
    await witness.subscribe('actuators/44/state');
    await witness.next(); // its retained boot state
    const { subs: [alice] } = await connectAndSubscribe(b, 'alice', [actuatorParams(44)]);
    const { subs: [bob] } = await connectAndSubscribe(b, 'bob', [actuatorParams(44)]);
    alice.perform('status', { message: 'status' });
    const reply = await alice.received.nextMatching((d) => d && d.$cable === 'reply');
    assert.equal(reply.request, 1);
    assert.equal(reply.payload.on, false);
    assert.equal(reply.payload.by, 'alice');
    assert.equal(reply.payload.command, 'status');
    await bob.received.expectNone(400, (d) => d && (d.$cable === 'reply' || 'on' in d));
    await witness.expectNone(0); // no state publish for a status request
  } finally {
    await sim.stop();
  }
});
