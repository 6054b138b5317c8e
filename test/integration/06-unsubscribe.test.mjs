// Unsubscribe: no reply; delivery to that subscription stops; the connection's other
// subscriptions and other browsers are unaffected; subscribing again works.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  useBroker, rawConnect, connectAndSubscribe, mqttConnect, actuatorParams, actuatorId, sleep,
  isConfirm, isReply, isMessageFor, notPing,
} from './lib/index.mjs';

const ctx = useBroker();

test('stock client: unsubscribe stops delivery to it, not to the other browser', async () => {
  const b = ctx.broker;
  const { subs: [a] } = await connectAndSubscribe(b, 'alice', [actuatorParams(42)]);
  const { subs: [o] } = await connectAndSubscribe(b, 'bob', [actuatorParams(42)]);
  const dev = await mqttConnect(b.mqttUrl);
  await dev.publish('actuators/42/state', '{"n":1}');
  assert.deepEqual(await a.next(), { n: 1 });
  assert.deepEqual(await o.next(), { n: 1 });
  a.unsubscribe();
  await sleep(200);
  await dev.publish('actuators/42/state', '{"n":2}');
  assert.deepEqual(await o.next(), { n: 2 });
  await a.expectNone(500);
});

test('unsubscribe gets no reply; other subscriptions on the same connection keep delivering', async () => {
  const b = ctx.broker;
  const c = await rawConnect(b.urlFor(b.mint('alice')));
  await c.welcome();
  const id42 = actuatorId(42);
  const id43 = actuatorId(43);
  await c.subscribeAndWait(id42);
  await c.subscribeAndWait(id43);
  const before = c.received().filter(notPing).length;
  c.unsubscribe(id42);
  await sleep(600);
  assert.deepEqual(c.received().filter(notPing).slice(before).map((f) => f.raw), [], 'no reply to unsubscribe');
  const dev = await mqttConnect(b.mqttUrl);
  await dev.publish('actuators/42/state', '{"n":42}');
  await dev.publish('actuators/43/state', '{"n":43}');
  const m = await c.waitFor(isMessageFor(id43));
  assert.deepEqual(m.json.message, { n: 43 });
  await sleep(300);
  assert.equal(c.frames.count(isMessageFor(id42)), 0, 'nothing for the unsubscribed identifier');
});

test('unsubscribing one identifier keeps another identifier of the same actuator delivering', async () => {
  const b = ctx.broker;
  const c = await rawConnect(b.urlFor(b.mint('alice')));
  await c.welcome();
  const idA = '{"channel":"ActuatorChannel","id":42}';
  const idB = '{"id":42,"channel":"ActuatorChannel"}';
  await c.subscribeAndWait(idA);
  await c.subscribeAndWait(idB);
  c.unsubscribe(idA);
  await sleep(200);
  const dev = await mqttConnect(b.mqttUrl);
  await dev.publish('actuators/42/state', '{"n":1}');
  const m = await c.waitFor(isMessageFor(idB));
  assert.deepEqual(m.json.message, { n: 1 });
  await sleep(300);
  assert.equal(c.frames.count(isMessageFor(idA)), 0);
});

test('subscribe again after unsubscribe: confirmed again, delivery resumes', async () => {
  const b = ctx.broker;
  const c = await rawConnect(b.urlFor(b.mint('alice')));
  await c.welcome();
  const id = actuatorId(42);
  await c.subscribeAndWait(id);
  c.unsubscribe(id);
  await sleep(200);
  c.subscribe(id);
  await c.waitFor(isConfirm(id), 3000, 'a second confirm for the new subscription');
  assert.equal(c.frames.count(isConfirm(id)), 2);
  const dev = await mqttConnect(b.mqttUrl);
  await dev.publish('actuators/42/state', '{"again":true}');
  const m = await c.waitFor(isMessageFor(id));
  assert.deepEqual(m.json.message, { again: true });
  await sleep(300);
  assert.equal(c.frames.count(isMessageFor(id)), 1);
});

test('subscribe, unsubscribe, subscribe sent back to back are handled in order', async () => {
  const b = ctx.broker;
  const c = await rawConnect(b.urlFor(b.mint('alice')));
  await c.welcome();
  const id = actuatorId(42);
  c.subscribe(id);
  c.unsubscribe(id);
  c.subscribe(id);
  await c.waitFor(isConfirm(id));
  await c.waitFor(isConfirm(id));
  await sleep(300);
  assert.equal(c.frames.count(isReply(id)), 2, 'two confirms, no reject');
  const dev = await mqttConnect(b.mqttUrl);
  await dev.publish('actuators/42/state', '{"final":"subscribed"}');
  await c.waitFor(isMessageFor(id));
  await sleep(300);
  assert.equal(c.frames.count(isMessageFor(id)), 1, 'subscribed once at the end');
});

test('subscribe then unsubscribe back to back leaves nothing subscribed', async () => {
  const b = ctx.broker;
  const c = await rawConnect(b.urlFor(b.mint('alice')));
  await c.welcome();
  const id = actuatorId(42);
  c.subscribe(id);
  c.unsubscribe(id);
  await c.waitFor(isConfirm(id));
  await sleep(300);
  const dev = await mqttConnect(b.mqttUrl);
  await dev.publish('actuators/42/state', '{"x":1}');
  await sleep(500);
  assert.equal(c.frames.count(isMessageFor(id)), 0);
});

test('unsubscribe of an unknown identifier is ignored silently', async () => {
  const b = ctx.broker;
  const c = await rawConnect(b.urlFor(b.mint('alice')));
  await c.welcome();
  c.unsubscribe(actuatorId(99));
  c.unsubscribe('not json');
  await sleep(400);
  assert.deepEqual(c.received().filter(notPing).map((f) => f.json?.type), ['welcome']);
  assert.equal((await c.subscribeAndWait(actuatorId(42))).json.type, 'confirm_subscription');
});

test('after unsubscribe, perform on that identifier publishes nothing', async () => {
  const b = ctx.broker;
  const mq = await mqttConnect(b.mqttUrl);
  await mq.subscribe('actuators/#');
  const c = await rawConnect(b.urlFor(b.mint('alice')));
  await c.welcome();
  const id = actuatorId(42);
  await c.subscribeAndWait(id);
  c.unsubscribe(id);
  c.perform(id, 'speak', { message: 'after unsubscribe' });
  await mq.expectNone(600);
});
