// Topic injection through channel parameters: a browser names a channel and values,
// never a topic, and no value can add a level, become a wildcard, reach a '$' topic or
// smuggle a NUL. Each attempt gets reject_subscription, and a real MQTT subscriber on
// '#' sees nothing. Also: a browser cannot ask for retain on an action without it.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  useBroker, rawConnect, connectAndSubscribe, mqttConnect, isMessageFor, isReply,
} from './lib/index.mjs';
import { fixture, waitForLog, observeAll } from './fixtures/util.mjs';

const room = (value) => JSON.stringify({ channel: 'RoomChannel', room: value });
const actuator = (value) => JSON.stringify({ channel: 'ActuatorChannel', id: value });
const SEVENTY_KB = 70 * 1024;

const ROOM_VALUES = [
  ['#', '#'],
  ['+', '+'],
  ['a/b', 'a/b'],
  ['a/#', 'a/#'],
  ['+/+', '+/+'],
  ['$SYS/x', '$SYS/x'],
  ['$SYS', '$SYS'],
  ['empty', ''],
  ['NUL (\\u0000) inside', 'a\u0000b'],
  ['NUL alone', '\u0000'],
  ['control character', 'a\nb'],
  ['lone surrogate (not UTF-8)', 'a\ud800b'],
  ['70 KB value', 'r'.repeat(SEVENTY_KB)],
  ['70 KB value with a slash at the end', `${'r'.repeat(SEVENTY_KB)}/x`],
];

const ACTUATOR_VALUES = [
  ['#', '#'],
  ['+', '+'],
  ['4/2', '4/2'],
  ['$SYS/x', '$SYS/x'],
  ['empty', ''],
  ['NUL (\\u0000)', '4\u00002'],
  ['leading zero', '042'],
  ['negative', -1],
  ['fraction', 4.5],
  ['out of range', 1000001],
  ['70 KB of digits', '7'.repeat(SEVENTY_KB)],
  ['array', ['42']],
  ['object', { id: 42 }],
  ['null', null],
];

describe('injection through channel parameters (fixtures/channels-injection.json)', () => {
  const ctx = useBroker({
    pluginOpts: {
      channels_file: fixture('channels-injection.json'),
      // Large enough that a 70 KB identifier is read and answered, not cut off as an
      // oversized message (that case is in 30-limits-malformed).
      max_message_size: 262144,
    },
  });

  // Subscribes with each identifier, expects reject_subscription for each, then tries
  // to speak on each and lets a device publish on topics an injected stream would have
  // matched. Nothing may reach MQTT from the browser, nor the browser from MQTT.
  async function expectAllRejected(values, identifierOf, action, extraTopics) {
    const b = ctx.broker;
    const mq = await observeAll(b);
    const c = await rawConnect(b.urlFor(b.mint('mallory')));
    await c.welcome();
    const ids = values.map(([name, v]) => [name, identifierOf(v)]);
    for (const [name, id] of ids) {
      const r = await c.subscribeAndWait(id);
      assert.equal(r.json.type, 'reject_subscription', `value ${name}`);
      assert.equal(r.json.identifier, id, `the identifier is echoed byte for byte (${name})`);
    }
    for (const [, id] of ids) c.perform(id, action, { message: 'injected' });
    const dev = await mqttConnect(b.mqttUrl);
    for (const t of extraTopics) await dev.publish(t, '"device"');
    for (const t of extraTopics) await mq.nextOn(t); // the device's own publishes
    await mq.expectNone(400);
    for (const [name, id] of ids) {
      assert.equal(c.frames.count(isMessageFor(id)), 0, `nothing delivered for ${name}`);
    }
    assert.equal(c.closeInfo, null, 'the connection stays open');
    // And it still works: a clean value is confirmed.
    const ok = identifierOf(action === 'say' ? 'lobby' : 42);
    assert.equal((await c.subscribeAndWait(ok)).json.type, 'confirm_subscription');
  }

  test('control: a clean room value is confirmed and speaks to rooms/<room>/messages', async () => {
    const b = ctx.broker;
    const mq = await observeAll(b);
    const { subs: [s] } = await connectAndSubscribe(b, 'alice', [{ channel: 'RoomChannel', room: 'lobby' }]);
    s.perform('say', { message: 'hello' });
    const m = await mq.next();
    assert.equal(m.topic, 'rooms/lobby/messages');
    assert.equal(m.text, 'hello');
  });

  for (const [name, value] of ROOM_VALUES) {
    test(`string param: ${name} -> reject_subscription, nothing reaches MQTT`, async () => {
      await expectAllRejected([[name, value]], room, 'say',
        ['rooms/x/messages', 'rooms/a/b/messages', 'rooms/lobby/messages']);
    });
  }

  for (const [name, value] of ACTUATOR_VALUES) {
    test(`integer param: ${name} -> reject_subscription, nothing reaches MQTT`, async () => {
      await expectAllRejected([[name, value]], actuator, 'speak',
        ['actuators/4/state', 'actuators/42/state', 'actuators/4/2/state']);
    });
  }

  test('all of them on one connection, then a healthy subscription still works', async () => {
    await expectAllRejected(ROOM_VALUES, room, 'say', ['rooms/x/messages']);
  });

  test('a raw NUL escape in the command itself: the command is ignored (not JSON we accept), nothing subscribed', async () => {
    const b = ctx.broker;
    const mq = await observeAll(b);
    const c = await rawConnect(b.urlFor(b.mint('mallory')));
    await c.welcome();
    // The outer document carries \u0000 (not \\u0000): the decoder refuses the frame.
    const id = '{"channel":"RoomChannel","room":"a\u0000b"}';
    c.send(`{"command":"subscribe","identifier":${JSON.stringify(id)}}`);
    c.send(`{"command":"message","identifier":${JSON.stringify(id)},"data":"{\\"message\\":\\"x\\",\\"action\\":\\"say\\"}"}`);
    await c.frames.expectNone(500, isReply(id), 'reply');
    await mq.expectNone(0);
    assert.equal((await c.subscribeAndWait(room('lobby'))).json.type, 'confirm_subscription');
  });

  test('a parameter given twice in the identifier (duplicate key) is rejected', async () => {
    const b = ctx.broker;
    const c = await rawConnect(b.urlFor(b.mint('mallory')));
    await c.welcome();
    const id = '{"channel":"RoomChannel","room":"lobby","room":"#"}';
    assert.equal((await c.subscribeAndWait(id)).json.type, 'reject_subscription');
  });

  describe('retain', () => {
    test('perform with "retain": true on an action without retain is refused; nothing published', async () => {
      const b = ctx.broker;
      const mq = await observeAll(b);
      const from = b.log().length;
      const { subs: [s] } = await connectAndSubscribe(b, 'alice', [{ channel: 'ActuatorChannel', id: 5 }]);
      s.perform('speak', { message: 'pin me', retain: true });
      await waitForLog(b, /\(user alice\) perform refused/, 5000, from);
      await mq.expectNone(400);
      // Nothing was retained either: a fresh subscriber gets no retained message.
      const late = await mqttConnect(b.mqttUrl);
      await late.subscribe('actuators/5/#');
      await late.expectNone(400);
    });

    test('"retain": false is harmless data: published, not retained', async () => {
      const b = ctx.broker;
      const mq = await observeAll(b);
      const { subs: [s] } = await connectAndSubscribe(b, 'alice', [{ channel: 'ActuatorChannel', id: 6 }]);
      s.perform('speak', { message: 'x', retain: false });
      const m = await mq.next();
      assert.equal(m.topic, 'actuators/6/cmd');
      assert.equal(m.text, '{"user":"alice","message":"x","retain":false}');
      const late = await mqttConnect(b.mqttUrl);
      await late.subscribe('actuators/6/#');
      await late.expectNone(400);
    });

    test('control: an action configured with retain publishes retained', async () => {
      const b = ctx.broker;
      const { subs: [s] } = await connectAndSubscribe(b, 'alice', [{ channel: 'ActuatorChannel', id: 8 }]);
      s.perform('pin', { level: 3 });
      assert.deepEqual(await s.next(), { level: 3 });
      const late = await mqttConnect(b.mqttUrl);
      await late.subscribe('actuators/8/state');
      const m = await late.next();
      assert.equal(m.text, '{"level":3}');
      assert.equal(m.retain, true);
      await late.publish('actuators/8/state', '', { retain: true }); // clear it
    });
  });
});
