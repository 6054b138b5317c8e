// SIGHUP re-reads the channel map and the token keys (docs/operations.md, docs/
// architecture.md "Reload"), not only the ACL (24-reload):
//  - a channel removed from the map: a subscription to it ends with reject_subscription
//    while the connection stays open and its other subscriptions keep delivering; new
//    subscribes to it are rejected, on old and new connections;
//  - a kid removed from plugin_opt_jwt_keys_file: new connections with a token under that
//    kid are refused (unknown kid), tokens under the remaining kid still connect;
//  - a new map with a generic channel and no ACL file is refused and changes nothing.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, chmodSync, readFileSync } from 'node:fs';
import path from 'node:path';
import jwt from 'jsonwebtoken';
import {
  REPO, useBroker, rawConnect, mqttConnect, actuatorId, isPing, isReject, isMessageFor, authVerdict,
} from './lib/index.mjs';
import { waitForLog, readableTempDir } from './fixtures/util.mjs';

const example = JSON.parse(readFileSync(path.join(REPO, 'config', 'channels.example.json'), 'utf8'));
const ROOM = { params: { room: { type: 'string', pattern: '^[a-z]+$' } }, streams: ['rooms/{room}/messages'] };
const withRoom = JSON.stringify({ channels: { ...example.channels, RoomChannel: ROOM } });
const withoutRoom = JSON.stringify({ channels: { ...example.channels } });
const withGeneric = JSON.stringify({ channels: { ...example.channels, TopicChannel: { generic: true } } });

function sighup(b) {
  const from = b.log().length;
  process.kill(b.pid, 'SIGHUP');
  return from;
}

describe('SIGHUP after removing a channel from the map', () => {
  const ctx = useBroker({
    files: { 'channels.json': withRoom },
    pluginOpts: { channels_file: '$DIR/channels.json' },
  });
  const room = JSON.stringify({ channel: 'RoomChannel', room: 'lobby' });
  const act = actuatorId(42);

  test('its subscriptions end with reject_subscription, the connection and other channels stay', async () => {
    const b = ctx.broker;
    const c = await rawConnect(b.urlFor(b.mint('alice')));
    await c.welcome();
    assert.equal((await c.subscribeAndWait(room)).json.type, 'confirm_subscription');
    assert.equal((await c.subscribeAndWait(act)).json.type, 'confirm_subscription');
    const dev = await mqttConnect(b.mqttUrl);
    await dev.publish('rooms/lobby/messages', '"before"');
    assert.equal((await c.waitFor(isMessageFor(room))).json.message, 'before');

    // A generic channel without an ACL file: refused, and nothing changes.
    writeFileSync(path.join(b.dir, 'channels.json'), withGeneric);
    let from = sighup(b);
    await waitForLog(b, /reload failed, keeping the previous rules: [^\n]*generic channel/, 5000, from);
    await dev.publish('rooms/lobby/messages', '"still"');
    assert.equal((await c.waitFor(isMessageFor(room))).json.message, 'still');
    assert.equal(c.frames.count(isReject(room)), 0);

    writeFileSync(path.join(b.dir, 'channels.json'), withoutRoom);
    from = sighup(b);
    await waitForLog(b, /mosquitto-cable: reloaded/, 5000, from);
    const rej = await c.waitFor(isReject(room), 5000, 'reject_subscription for the removed channel');
    assert.deepEqual(rej.json, { identifier: room, type: 'reject_subscription' });
    assert.equal(c.frames.count(isReject(act)), 0, 'the actuator subscription is not ended');

    await dev.publish('rooms/lobby/messages', '"after"');
    await dev.publish('actuators/42/state', '"act"');
    assert.equal((await c.waitFor(isMessageFor(act))).json.message, 'act');
    await c.frames.expectNone(400, isMessageFor(room), 'a message of the removed channel');
    const t = rej.at;
    await c.waitFor((f) => isPing(f) && f.at >= t, 8000, 'a ping after the reject');
    assert.equal(c.closeInfo, null, 'the connection stays open');

    // New subscribes to it: rejected, on this connection and on a new one.
    assert.equal((await c.subscribeAndWait(room)).json.type, 'reject_subscription');
    const d = await rawConnect(b.urlFor(b.mint('bob')));
    await d.welcome();
    assert.equal((await d.subscribeAndWait(room)).json.type, 'reject_subscription');
    assert.equal((await d.subscribeAndWait(act)).json.type, 'confirm_subscription');
    await dev.publish('rooms/lobby/messages', '"later"');
    await dev.publish('actuators/42/state', '"act2"');
    assert.equal((await d.waitFor(isMessageFor(act))).json.message, 'act2');
    await d.frames.expectNone(300, isMessageFor(room), 'a message of the removed channel');
  });
});

// Two HS256 keys under kids, in files the broker can read after dropping privileges.
const keyDir = readableTempDir('cable-it-reload-keys-');
const SECRET = { k1: 'one-'.repeat(10), k2: 'two-'.repeat(10) };
const keyFile = path.join(keyDir, 'keys.json');
for (const kid of ['k1', 'k2']) {
  writeFileSync(path.join(keyDir, kid), SECRET[kid]);
  chmodSync(path.join(keyDir, kid), 0o644);
}
const keysJson = (kids) => JSON.stringify({
  keys: kids.map((kid) => ({ kid, alg: 'HS256', secret_file: path.join(keyDir, kid) })),
});
writeFileSync(keyFile, keysJson(['k1', 'k2']));
chmodSync(keyFile, 0o644);

describe('SIGHUP after removing a kid from plugin_opt_jwt_keys_file', () => {
  const ctx = useBroker({ pluginOpts: { jwt_secret_file: null, jwt_keys_file: keyFile } });
  const token = (kid, sub = 'alice') => jwt.sign({ sub }, SECRET[kid], { algorithm: 'HS256', keyid: kid, expiresIn: 600 });
  const verdict = (b, t) => authVerdict(b.urlFor(t));

  test('new connections under the removed kid are refused; the other kid still works', async () => {
    const b = ctx.broker;
    assert.equal(await verdict(b, token('k1')), 'welcome');
    assert.equal(await verdict(b, token('k2')), 'welcome');

    writeFileSync(keyFile, keysJson(['k1']));
    const from = sighup(b);
    await waitForLog(b, /mosquitto-cable: reloaded/, 5000, from);
    // The rules travel to the gateway through its queue: poll until the new keys apply.
    let v;
    for (let i = 0; i < 40 && (v = await verdict(b, token('k2', 'mallory'))) === 'welcome'; i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(v, 'unauthorized', 'a token under the removed kid is refused');
    await waitForLog(b, /unauthorized: [^\n]*unknown kid/, 3000, from);
    assert.equal(await verdict(b, token('k1')), 'welcome', 'the remaining kid still verifies');

    // And a key added back by the next reload verifies again.
    writeFileSync(keyFile, keysJson(['k1', 'k2']));
    const from2 = sighup(b);
    await waitForLog(b, /mosquitto-cable: reloaded/, 5000, from2);
    for (let i = 0; i < 40 && (v = await verdict(b, token('k2'))) !== 'welcome'; i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(v, 'welcome');
  });
});
