// Subscribe: exactly one confirm_subscription or reject_subscription per subscribe;
// unknown channels and bad params are rejected; duplicates get no second reply;
// parameters can never inject MQTT wildcards or levels.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  useBroker, rawConnect, createCable, mqttConnect, actuatorParams, actuatorId, sleep,
  isConfirm, isReject, isReply, isWelcome, isMessageFor, notPing,
} from './lib/index.mjs';

const ctx = useBroker();

async function authed(user = 'alice') {
  const b = ctx.broker;
  const c = await rawConnect(b.urlFor(b.mint(user)));
  await c.welcome();
  return c;
}

test('stock client: subscribing to ActuatorChannel 42 is confirmed once', async () => {
  const b = ctx.broker;
  const cable = createCable(b.urlFor(b.mint('alice')));
  const sub = cable.subscribe(actuatorParams(42));
  await sub.confirmed();
  assert.equal(sub.identifier, '{"channel":"ActuatorChannel","id":42}');
  await sleep(1000); // the guarantor would resend every 500 ms if the confirm were missing
  assert.equal(sub.events.count((e) => e.type === 'connected'), 1);
});

test('confirm_subscription has exactly the identifier and type keys and echoes the identifier', async () => {
  const c = await authed();
  const id = actuatorId(42);
  const f = await c.subscribeAndWait(id);
  assert.deepEqual(f.json, { identifier: id, type: 'confirm_subscription' });
});

test('stock client: an unknown channel is rejected (rejected() called, not left pending)', async () => {
  const b = ctx.broker;
  const cable = createCable(b.urlFor(b.mint('alice')));
  const sub = cable.subscribe({ channel: 'NoSuchChannel' });
  await sub.rejected();
  assert.equal(cable.consumer.subscriptions.subscriptions.length, 0);
});

test('unknown channel, malformed identifiers: one reject_subscription each', async () => {
  const c = await authed();
  const ids = [
    '{"channel":"NoSuchChannel","id":42}',
    '{"channel":"actuatorchannel","id":42}',
    '{"id":42}',
    '{"channel":42}',
    'not json',
    '[1,2]',
    '"ActuatorChannel"',
  ];
  for (const id of ids) {
    const f = await c.subscribeAndWait(id);
    assert.deepEqual(f.json, { identifier: id, type: 'reject_subscription' }, `for ${id}: ${f.raw}`);
  }
  await sleep(700);
  for (const id of ids) assert.equal(c.frames.count(isReply(id)), 1, `exactly one reply for ${id}`);
});

const BAD_IDS = ['4#2', 'a/b', '+', '#', '', '$SYS', '4\u00002', '42/#', '1.5', 'abc', ' 42', '042', 1.5, true, null, { a: 1 }, [42]];

test('bad id params (wildcards, levels, NUL, $, non-integers) are rejected, exactly once', async () => {
  const c = await authed();
  const ids = [...BAD_IDS.map((v) => actuatorId(v)), JSON.stringify({ channel: 'ActuatorChannel' })];
  for (const id of ids) {
    const f = await c.subscribeAndWait(id);
    assert.equal(f.json.type, 'reject_subscription', `for ${id}: ${f.raw}`);
    assert.equal(f.json.identifier, id);
  }
  await sleep(700);
  for (const id of ids) assert.equal(c.frames.count(isReply(id)), 1, `exactly one reply for ${id}`);
});

test('rejected params subscribe to nothing: no device traffic reaches that connection', async () => {
  const b = ctx.broker;
  const c = await authed();
  for (const v of ['+', '#', 'a/b', '4#2']) {
    const f = await c.subscribeAndWait(actuatorId(v));
    assert.equal(f.json.type, 'reject_subscription');
  }
  const dev = await mqttConnect(b.mqttUrl);
  for (const t of ['actuators/7/state', 'actuators/a/b/state', 'actuators/4/cmd', 'actuators/x/state/y']) {
    await dev.publish(t, '{"leak":true}', { qos: 1 });
  }
  await sleep(700);
  const data = c.received().filter((f) => f.json && 'message' in f.json && !('type' in f.json));
  assert.deepEqual(data.map((f) => f.raw), []);
});

test('string ids of decimal digits are accepted like integers', async () => {
  const c = await authed();
  const f = await c.subscribeAndWait(actuatorId('42'));
  assert.equal(f.json.type, 'confirm_subscription');
  assert.equal(f.json.identifier, '{"channel":"ActuatorChannel","id":"42"}');
});

test('extra identifier keys are ignored for routing: they cannot widen the streams', async () => {
  const b = ctx.broker;
  const c = await authed();
  const id = '{"channel":"ActuatorChannel","id":7,"topic":"#","streams":["#"]}';
  const f = await c.subscribeAndWait(id);
  assert.equal(f.json.type, 'confirm_subscription');
  const dev = await mqttConnect(b.mqttUrl);
  await dev.publish('actuators/8/state', '{"n":8}', { qos: 1 });
  await dev.publish('other/topic', '{"n":0}', { qos: 1 });
  await dev.publish('actuators/7/state', '{"n":7}', { qos: 1 });
  const m = await c.waitFor(isMessageFor(id));
  assert.deepEqual(m.json.message, { n: 7 });
  await sleep(500);
  assert.equal(c.frames.count(isMessageFor(id)), 1, 'only the actuators/7 message');
});

test('a duplicate subscribe gets no second reply and does not double delivery', async () => {
  const b = ctx.broker;
  const c = await authed();
  const id = actuatorId(42);
  c.subscribe(id);
  c.subscribe(id);
  await c.waitFor(isConfirm(id));
  await sleep(1000);
  assert.equal(c.frames.count(isReply(id)), 1, 'exactly one confirm');
  // Subscribing again later: still no reply.
  c.subscribe(id);
  await sleep(700);
  assert.equal(c.frames.count(isReply(id)), 1, 'no reply to a third subscribe');
  const dev = await mqttConnect(b.mqttUrl);
  await dev.publish('actuators/42/state', '{"on":true}', { qos: 1 });
  await c.waitFor(isMessageFor(id));
  await sleep(500);
  assert.equal(c.frames.count(isMessageFor(id)), 1, 'one frame per publish');
});

test('replies come in command order, one per subscribe', async () => {
  const c = await authed();
  const ids = [];
  for (let i = 0; i < 12; i++) ids.push(i % 3 === 2 ? actuatorId(`bad/${i}`) : actuatorId(100 + i));
  for (const id of ids) c.subscribe(id);
  for (const id of ids) await c.waitFor(isReply(id), 3000, `reply for ${id}`);
  const replies = c.received().filter((f) => f.json && f.json.identifier);
  assert.deepEqual(replies.map((f) => f.json.identifier), ids, 'replies in order');
  assert.deepEqual(replies.map((f) => f.json.type),
    ids.map((id) => (id.includes('bad') ? 'reject_subscription' : 'confirm_subscription')));
});

test('a subscribe sent right at open (before welcome is read) is answered after welcome', async () => {
  const b = ctx.broker;
  const c = await rawConnect(b.urlFor(b.mint('alice')));
  const id = actuatorId(42);
  c.subscribe(id);
  await c.waitFor(isConfirm(id));
  const order = c.received().map((f) => f.json?.type);
  assert.deepEqual(order.slice(0, 2), ['welcome', 'confirm_subscription']);
  assert.equal(c.frames.count(isWelcome), 1);
});

test('malformed frames and unknown commands are ignored; the connection keeps working', async () => {
  const c = await authed();
  c.send('{not json');
  c.send('[]');
  c.send('{"command":"subscribe"}');
  c.send('{"command":"subscribe","identifier":""}');
  c.send('{"command":"subscribe","identifier":{"channel":"ActuatorChannel","id":42}}');
  c.send({ command: 'frobnicate', identifier: actuatorId(42) });
  c.send({ command: 'message', identifier: actuatorId(42), data: JSON.stringify({ action: 'speak', message: 'x' }) });
  c.send({ command: 'unsubscribe', identifier: actuatorId(9999) });
  c.ws.send(Buffer.from([0xde, 0xad, 0xbe, 0xef]), { binary: true });
  const id = actuatorId(43);
  const f = await c.subscribeAndWait(id);
  assert.equal(f.json.type, 'confirm_subscription');
  assert.equal(c.closeInfo, null, 'still open');
  assert.deepEqual(c.received().filter(notPing).map((x) => x.json?.type ?? x.raw),
    ['welcome', 'confirm_subscription'], 'no replies to the malformed commands');
});
