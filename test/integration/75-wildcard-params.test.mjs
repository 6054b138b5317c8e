// A channel with one stream and an unconstrained string parameter (no pattern, no ACL
// file): the parameter is substituted into the topic, so a value that is not one plain
// topic level ('+', '#', 'a/b', '', '$SYS', NUL, wildcards inside a level) would widen
// the subscription to other users' topics. Each such subscribe gets reject_subscription,
// and nothing published on the topics it would have covered reaches the browser: an MQTT
// witness on '#' proves the publishes went through the broker, and a good subscription
// on the same connection proves the browser does receive what it may.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { useBroker, rawConnect, mqttConnect, isMessageFor, isReply } from './lib/index.mjs';
import { observeAll, waitForLog } from './fixtures/util.mjs';

const channels = {
  channels: {
    RoomChannel: {
      params: { room: { type: 'string' } },
      streams: ['rooms/{room}/messages'],
    },
  },
};

const BAD = ['+', '#', 'a/b', '', '$SYS', '$share', 'x+', 'x#', '+/+', 'a\u0000b', '/'];
const room = (r) => JSON.stringify({ channel: 'RoomChannel', room: r });

describe('RoomChannel rooms/{room}/messages with an unconstrained string room', () => {
  const ctx = useBroker({
    files: { 'channels.json': JSON.stringify(channels) },
    pluginOpts: { channels_file: '$DIR/channels.json' },
  });

  test('wildcards, separators, empty and $ values are rejected and deliver nothing', async () => {
    const b = ctx.broker;
    const witness = await observeAll(b, '#');
    const c = await rawConnect(b.urlFor(b.mint('mallory')));
    await c.welcome();
    const from = b.log().length;
    for (const r of BAD) {
      const f = await c.subscribeAndWait(room(r));
      assert.deepEqual(f.json, { identifier: room(r), type: 'reject_subscription' },
        `room ${JSON.stringify(r)}`);
    }
    await waitForLog(b, /\(user mallory\) subscription rejected: [^\n]*room/, 3000, from);
    const lobby = room('lobby');
    assert.equal((await c.subscribeAndWait(lobby)).json.type, 'confirm_subscription');

    // Topics each rejected identifier would have covered, then the allowed one last.
    const dev = await mqttConnect(b.mqttUrl);
    const others = [
      'rooms/alice/messages', 'rooms/a/b/messages', 'rooms/$SYS/messages', 'rooms/$share/messages',
      'rooms//messages', 'rooms/secret/messages/deeper', 'rooms/x/y/messages',
    ];
    for (const t of others) await dev.publish(t, '"private"');
    await dev.publish('rooms/lobby/messages', '"hello"');
    for (const t of [...others, 'rooms/lobby/messages']) await witness.nextOn(t);
    const got = await c.waitFor(isMessageFor(lobby));
    assert.equal(got.json.message, 'hello');
    await c.frames.expectNone(500, (f) => f.json && 'message' in f.json && f.json.identifier !== lobby,
      'a message for a rejected identifier');
    assert.equal(c.frames.count((f) => f.json && 'message' in f.json && !f.json.type), 1,
      'exactly one message delivered: the lobby\'s');
    // No second reply for any of them, and the connection stays open.
    for (const r of BAD) assert.equal(c.frames.count(isReply(room(r))), 1, `one reply for ${JSON.stringify(r)}`);
    assert.equal(c.closeInfo, null);
    // The browser itself published nothing: the witness saw only the device.
    await witness.expectNone(200);
  });

  test('a second browser subscribed with + never receives another browser\'s room', async () => {
    const b = ctx.broker;
    const victim = await rawConnect(b.urlFor(b.mint('alice')));
    const thief = await rawConnect(b.urlFor(b.mint('mallory')));
    await victim.welcome();
    await thief.welcome();
    assert.equal((await victim.subscribeAndWait(room('alice'))).json.type, 'confirm_subscription');
    for (const r of ['+', '#']) {
      assert.equal((await thief.subscribeAndWait(room(r))).json.type, 'reject_subscription');
    }
    const dev = await mqttConnect(b.mqttUrl);
    await dev.publish('rooms/alice/messages', '"for alice only"');
    assert.equal((await victim.waitFor(isMessageFor(room('alice')))).json.message, 'for alice only');
    await thief.frames.expectNone(500, (f) => f.json && 'message' in f.json && !f.json.type, 'a message');
  });
});
