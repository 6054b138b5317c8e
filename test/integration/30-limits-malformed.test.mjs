// The malformed-input matrix (issue 4, item 3): every input a browser controls has one
// defined answer, and none disturbs another connection. Each row runs while a second,
// healthy browser receives a stream of device messages; afterwards that browser must
// have received every one of them, in order.
//
//   row                                   answer
//   invalid JSON / not an object          ignored (logged); the connection keeps working
//   unknown command                       ignored (logged)
//   binary frame                          ignored, even if it holds a valid command
//   invalid UTF-8 in a text frame         close 1007
//   identifier that is not JSON           subscribe: reject_subscription (the channel map
//                                         refuses it); message/unsubscribe: ignored
//   data that is not a string             ignored
//   huge identifier (under the size cap)  reject_subscription
//   unknown identifier                    message / unsubscribe ignored
//   duplicate subscribe                   one confirm, one delivery per message
//   subscribe flood over max_subscriptions reject_subscription for the extra ones
//   commands before the welcome           answered after the welcome
//   message over max_message_size         disconnect invalid_request (reconnect false),
//                                         close 1009
// And the connection limits: per user (reconnect false) and in total (reconnect true),
// both with close 1013.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  useBroker, rawConnect, connectAndSubscribe, mqttConnect, actuatorParams, actuatorId, sleep,
  isWelcome, isConfirm, isReply, isMessageFor, isDisconnect,
} from './lib/index.mjs';
import { waitForLog, observeAll } from './fixtures/util.mjs';
import { encodeFrame, upgradeWithEarlyFrames } from './fixtures/wsraw.mjs';

const MAX_MESSAGE = 4096;
const MAX_SUBS = 8;

// Runs fn while a healthy browser (stock client) on ActuatorChannel 42 receives a
// numbered device message every few milliseconds; then checks it got all, in order.
async function whileHealthyReceives(b, fn) {
  const { cable, subs: [h] } = await connectAndSubscribe(b, 'watcher', [actuatorParams(42)]);
  const dev = await mqttConnect(b.mqttUrl);
  let n = 0;
  let stop = false;
  const pump = (async () => {
    while (!stop) {
      await dev.publish('actuators/42/state', JSON.stringify({ seq: n++ }));
      await sleep(5);
    }
  })();
  try {
    await fn();
  } finally {
    stop = true;
    await pump;
  }
  await dev.publish('actuators/42/state', JSON.stringify({ seq: n++ }));
  const got = [];
  for (let i = 0; i < n; i++) got.push((await h.next(5000)).seq);
  assert.deepEqual(got, [...Array(n).keys()], 'the healthy browser received every device message in order');
  assert.ok(cable.connection.isOpen(), 'the healthy browser is still connected');
  assert.equal(h.events.count((e) => e.type === 'disconnected' || e.type === 'rejected'), 0);
}

let probeCounter = 1000;
// The connection still works: a fresh subscribe is confirmed. Because commands are
// handled in order, any answer to what was sent before would have arrived first.
async function assertStillWorks(c) {
  const id = actuatorId(probeCounter++);
  const r = await c.subscribeAndWait(id);
  assert.equal(r.json.type, 'confirm_subscription', 'a later subscribe is confirmed');
  assert.equal(c.closeInfo, null, 'still open');
  return id;
}

// Non-ping frames received, as JSON (or raw text).
const seen = (c) => c.received().map((f) => f.json ?? f.raw ?? '<binary>');

async function attacker(b, user = 'mallory') {
  const c = await rawConnect(b.urlFor(b.mint(user)));
  await c.welcome();
  return c;
}

describe(`malformed input (max_message_size ${MAX_MESSAGE}, max_subscriptions ${MAX_SUBS})`, () => {
  const ctx = useBroker({
    pluginOpts: { max_message_size: MAX_MESSAGE, max_subscriptions: MAX_SUBS },
  });

  test('invalid JSON, and JSON that is not a command object: ignored, the connection keeps working', async () => {
    const b = ctx.broker;
    await whileHealthyReceives(b, async () => {
      const c = await attacker(b);
      const from = b.log().length;
      const id = actuatorId(42);
      for (const text of [
        'not json',
        '{"command":"subscribe",',
        `{"command":"subscribe","identifier":${JSON.stringify(id)}`, // truncated
        `{"command":"subscribe","identifier":${JSON.stringify(id)},"identifier":${JSON.stringify(id)}}`, // duplicate key
        '[]',
        '"subscribe"',
        '42',
        'null',
        '{}',
        '{"identifier":"x"}',
        '',
        ' ',
      ]) c.send(text);
      const probe = await assertStillWorks(c);
      assert.equal(seen(c)[0].type, 'welcome');
      assert.deepEqual(seen(c).slice(1), [{ identifier: probe, type: 'confirm_subscription' }], 'no answer to any of them');
      await waitForLog(b, /ignored a malformed command/, 3000, from);
    });
  });

  test('unknown command: ignored, the connection keeps working', async () => {
    const b = ctx.broker;
    await whileHealthyReceives(b, async () => {
      const c = await attacker(b);
      const id = actuatorId(42);
      c.send({ command: 'dance', identifier: id });
      c.send({ command: 'SUBSCRIBE', identifier: id });
      c.send({ command: 'history', identifier: id, history: { since: 1 } });
      c.send({ command: 'ping' });
      c.send({ command: 42, identifier: id });
      c.send({ command: null });
      const probe = await assertStillWorks(c);
      assert.deepEqual(seen(c).slice(1), [{ identifier: probe, type: 'confirm_subscription' }]);
    });
  });

  test('binary frame: ignored, even when it holds a valid subscribe', async () => {
    const b = ctx.broker;
    await whileHealthyReceives(b, async () => {
      const c = await attacker(b);
      const id = actuatorId(42);
      c.ws.send(Buffer.from(JSON.stringify({ command: 'subscribe', identifier: id })), { binary: true });
      c.ws.send(Buffer.from([0, 1, 2, 255]), { binary: true });
      const probe = await assertStillWorks(c);
      assert.deepEqual(seen(c).slice(1), [{ identifier: probe, type: 'confirm_subscription' }]);
      assert.equal(c.frames.count(isReply(id)), 0, 'the binary subscribe got no answer');
    });
  });

  test('invalid UTF-8 in a text frame: close 1007', async () => {
    const b = ctx.broker;
    await whileHealthyReceives(b, async () => {
      const c = await attacker(b);
      const bytes = Buffer.concat([
        Buffer.from('{"command":"subscribe","identifier":"'),
        Buffer.from([0xc3, 0x28, 0xff, 0xfe]),
        Buffer.from('"}'),
      ]);
      c.ws.send(bytes, { binary: false });
      const { code } = await c.waitClosed(3000);
      assert.equal(code, 1007, 'close code');
      assert.deepEqual(seen(c).slice(1), [], 'no frame after the welcome, only the close');
    });
  });

  test('identifier that is not JSON: subscribe is rejected; message and unsubscribe are ignored', async () => {
    const b = ctx.broker;
    const mq = await observeAll(b, 'actuators/+/cmd');
    await whileHealthyReceives(b, async () => {
      const c = await attacker(b);
      for (const id of ['not json', '{"channel":"ActuatorChannel","id":42', '{"channel":', '42', '[]', '"ActuatorChannel"']) {
        const r = await c.subscribeAndWait(id);
        assert.deepEqual(r.json, { identifier: id, type: 'reject_subscription' });
        c.perform(id, 'speak', { message: 'x' });
        c.unsubscribe(id);
      }
      const before = seen(c).length;
      const probe = await assertStillWorks(c);
      assert.deepEqual(seen(c).slice(before), [{ identifier: probe, type: 'confirm_subscription' }]);
    });
    await mq.expectNone(0);
  });

  test('data that is not a string: ignored, nothing published, later performs work', async () => {
    const b = ctx.broker;
    const mq = await observeAll(b, 'actuators/+/cmd');
    await whileHealthyReceives(b, async () => {
      const c = await attacker(b);
      const id = actuatorId(7);
      assert.equal((await c.subscribeAndWait(id)).json.type, 'confirm_subscription');
      const from = b.log().length;
      c.send({ command: 'message', identifier: id, data: { action: 'speak', message: 'object' } });
      c.send({ command: 'message', identifier: id, data: 42 });
      c.send({ command: 'message', identifier: id, data: null });
      c.send({ command: 'message', identifier: id, data: ['speak'] });
      c.send({ command: 'message', identifier: id });
      c.send({ command: 'message', identifier: id, data: 'not json inside' });
      c.send({ command: 'message', identifier: id, data: '"a json string"' });
      await assertStillWorks(c);
      await mq.expectNone(300);
      await waitForLog(b, /ignored a malformed command/, 3000, from);
      c.perform(id, 'speak', { message: 'fine' });
      const m = await mq.next();
      assert.equal(m.text, '{"user":"mallory","message":"fine"}');
      await mq.expectNone(300);
    });
  });

  test('huge identifier (just under max_message_size): reject_subscription, connection unharmed', async () => {
    const b = ctx.broker;
    await whileHealthyReceives(b, async () => {
      const c = await attacker(b);
      const pad = MAX_MESSAGE - 200;
      const ids = [
        JSON.stringify({ channel: 'NoSuchChannel', junk: 'j'.repeat(pad) }),
        JSON.stringify({ channel: 'ActuatorChannel', id: '4'.repeat(pad) }),
        JSON.stringify({ channel: 'C'.repeat(pad) }),
      ];
      for (const id of ids) {
        const frame = JSON.stringify({ command: 'subscribe', identifier: id });
        assert.ok(frame.length < MAX_MESSAGE, `frame of ${frame.length} bytes is under the cap`);
        const r = await c.subscribeAndWait(id);
        assert.equal(r.json.type, 'reject_subscription');
        assert.equal(r.json.identifier, id);
      }
      // Extra keys in an otherwise valid identifier are allowed (a distinct identifier).
      const big = JSON.stringify({ channel: 'ActuatorChannel', id: 42, junk: 'j'.repeat(pad) });
      assert.equal((await c.subscribeAndWait(big)).json.type, 'confirm_subscription');
      await assertStillWorks(c);
    });
  });

  test('unknown identifier: message and unsubscribe are ignored', async () => {
    const b = ctx.broker;
    const mq = await observeAll(b, 'actuators/+/cmd');
    await whileHealthyReceives(b, async () => {
      const c = await attacker(b);
      const never = actuatorId(9);
      c.perform(never, 'speak', { message: 'never subscribed' });
      c.unsubscribe(never);
      // Byte-for-byte identifiers: the same params in another key order are another identifier.
      const id = JSON.stringify({ channel: 'ActuatorChannel', id: 11 });
      assert.equal((await c.subscribeAndWait(id)).json.type, 'confirm_subscription');
      const reordered = JSON.stringify({ id: 11, channel: 'ActuatorChannel' });
      c.perform(reordered, 'speak', { message: 'other spelling' });
      c.unsubscribe(reordered);
      const before = seen(c).length;
      const probe = await assertStillWorks(c);
      assert.deepEqual(seen(c).slice(before), [{ identifier: probe, type: 'confirm_subscription' }]);
      await mq.expectNone(300);
      // The real subscription survived the unsubscribe of the other spelling.
      c.perform(id, 'speak', { message: 'real' });
      assert.equal((await mq.next()).topic, 'actuators/11/cmd');
    });
  });

  test('duplicate subscribe: exactly one confirm, and one delivery per message', async () => {
    const b = ctx.broker;
    await whileHealthyReceives(b, async () => {
      const c = await attacker(b);
      const id = actuatorId(12);
      c.subscribe(id);
      c.subscribe(id);
      c.subscribe(id);
      await c.waitFor(isConfirm(id));
      await assertStillWorks(c); // everything before it has been answered
      assert.equal(c.frames.count(isReply(id)), 1, 'one reply for three subscribes');
      const dev = await mqttConnect(b.mqttUrl);
      await dev.publish('actuators/12/state', '"once"');
      await c.waitFor(isMessageFor(id));
      await c.frames.expectNone(300, isMessageFor(id), 'a second delivery');
    });
  });

  test(`subscribe flood over max_subscriptions (${MAX_SUBS}): the extra ones are rejected`, async () => {
    const b = ctx.broker;
    await whileHealthyReceives(b, async () => {
      const c = await attacker(b);
      const ids = Array.from({ length: MAX_SUBS + 5 }, (_, i) => actuatorId(100 + i));
      for (const id of ids) c.subscribe(id);
      const replies = [];
      for (const id of ids) replies.push((await c.waitFor(isReply(id))).json.type);
      assert.deepEqual(replies, [
        ...Array(MAX_SUBS).fill('confirm_subscription'),
        ...Array(5).fill('reject_subscription'),
      ]);
      assert.equal(c.closeInfo, null);
      // The limit counts live subscriptions: after an unsubscribe there is room for one.
      c.unsubscribe(ids[0]);
      assert.equal((await c.subscribeAndWait(actuatorId(200))).json.type, 'confirm_subscription');
      assert.equal((await c.subscribeAndWait(actuatorId(201))).json.type, 'reject_subscription');
      // The confirmed ones deliver.
      const dev = await mqttConnect(b.mqttUrl);
      await dev.publish('actuators/101/state', '"hi"');
      assert.equal((await c.waitFor(isMessageFor(ids[1]))).json.message, 'hi');
    });
  });

  test('commands sent at once on open are answered after the welcome (ws client)', async () => {
    const b = ctx.broker;
    await whileHealthyReceives(b, async () => {
      const c = await rawConnect(b.urlFor(b.mint('mallory')));
      const id = actuatorId(13);
      c.subscribe(id); // no wait for the welcome
      await c.waitFor(isConfirm(id));
      const types = c.received().map((f) => f.json.type);
      assert.deepEqual(types, ['welcome', 'confirm_subscription']);
    });
  });

  test('frames pipelined in the same TCP write as the upgrade request: never answered before a welcome', async () => {
    // RFC 6455 4.1: a client MUST wait for the handshake response before sending data,
    // so this client is broken or hostile. Either answer is defined enough: the
    // commands are answered after the welcome, or the connection is closed. What must
    // never happen is a confirm without a welcome, a crash, or a disturbed neighbour.
    // (Observed with libwebsockets 4.1.6: the connection is closed with 1002 or 1007,
    // with no welcome or right after it; lws mis-reads bytes that arrive with the
    // handshake.)
    const b = ctx.broker;
    await whileHealthyReceives(b, async () => {
      for (const token of [b.mint('mallory'), 'forged.token.x']) {
        const ids = [actuatorId(14), actuatorId(15), 'not json'];
        const early = ids.map((id) => encodeFrame(JSON.stringify({ command: 'subscribe', identifier: id })));
        const r = await upgradeWithEarlyFrames(b.wsPort, `/cable?jid=${token}`, early);
        assert.equal(r.status, 101, r.head);
        const first = await r.frames.nextMatching((x) => x.json?.type !== 'ping', 3000, 'frame');
        if (first.opcode === 8) {
          await r.closed; // closed without a welcome: nothing was executed
          assert.deepEqual(r.frames.all.filter((f) => f.opcode === 1), [], 'no text frame at all');
          continue;
        }
        if (token.startsWith('forged')) {
          assert.deepEqual(first.json, { type: 'disconnect', reason: 'unauthorized', reconnect: false });
          continue;
        }
        assert.equal(first.json?.type, 'welcome', first.raw);
        const second = await r.frames.nextMatching((x) => x.json?.type !== 'ping', 3000, 'frame');
        if (second.opcode === 8) {
          // Welcomed, then closed by lws' parser (1002) before any command was read.
          await r.closed;
          assert.deepEqual(r.frames.all.filter((f) => f.opcode === 1 && f.json?.type !== 'ping')
            .map((f) => f.json.type), ['welcome'], 'nothing answered after the welcome');
          continue;
        }
        const got = [second.json];
        for (let i = 0; i < 2; i++) got.push((await r.frames.nextMatching((x) => x.json?.type !== 'ping', 3000, 'frame')).json);
        assert.deepEqual(got, [
          { identifier: ids[0], type: 'confirm_subscription' },
          { identifier: ids[1], type: 'confirm_subscription' },
          { identifier: ids[2], type: 'reject_subscription' },
        ]);
        r.socket.destroy();
      }
    });
  });

  test(`message over max_message_size (${MAX_MESSAGE}): disconnect invalid_request, close 1009`, async () => {
    const b = ctx.broker;
    await whileHealthyReceives(b, async () => {
      const c = await attacker(b);
      const big = JSON.stringify({ command: 'subscribe', identifier: actuatorId(42), pad: 'p'.repeat(MAX_MESSAGE) });
      c.send(big);
      const { code } = await c.waitClosed(3000);
      assert.deepEqual({ frames: seen(c).slice(1), code },
        { frames: [{ type: 'disconnect', reason: 'invalid_request', reconnect: false }], code: 1009 });
    });
  });

  test('message over max_message_size in fragments: disconnect invalid_request, close 1009', async () => {
    const b = ctx.broker;
    await whileHealthyReceives(b, async () => {
      const c = await attacker(b);
      const part = 'x'.repeat(MAX_MESSAGE / 2);
      c.ws.send(`{"command":"subscribe","pad":"${part}`, { fin: false });
      c.ws.send(part, { fin: false });
      c.ws.send(`${part}"}`, { fin: true });
      const { code } = await c.waitClosed(3000);
      assert.deepEqual({ frames: seen(c).slice(1), code },
        { frames: [{ type: 'disconnect', reason: 'invalid_request', reconnect: false }], code: 1009 });
    });
  });

  test('a message of exactly max_message_size bytes is accepted', async () => {
    const b = ctx.broker;
    const c = await attacker(b);
    const id = actuatorId(16);
    const base = JSON.stringify({ command: 'subscribe', identifier: id, pad: '' });
    const text = JSON.stringify({ command: 'subscribe', identifier: id, pad: 'p'.repeat(MAX_MESSAGE - base.length) });
    assert.equal(Buffer.byteLength(text), MAX_MESSAGE);
    c.send(text);
    assert.equal((await c.waitFor(isReply(id))).json.type, 'confirm_subscription');
  });
});

describe('plugin_opt_max_connections_per_user 2', () => {
  const ctx = useBroker({ pluginOpts: { max_connections_per_user: 2 } });

  test('the third connection of a user gets too_many_connections, reconnect false, close 1013', async () => {
    const b = ctx.broker;
    const c1 = await attacker(b, 'alice');
    const c2 = await attacker(b, 'alice');
    const c3 = await rawConnect(b.urlFor(b.mint('alice')));
    const { code } = await c3.waitClosed(3000);
    assert.deepEqual({ frames: seen(c3), code },
      { frames: [{ type: 'disconnect', reason: 'too_many_connections', reconnect: false }], code: 1013 });
    await waitForLog(b, /user alice has 2 connections \(plugin_opt_max_connections_per_user\)/);
    // The first two, and other users, are unaffected.
    await assertStillWorks(c1);
    await assertStillWorks(c2);
    await attacker(b, 'bob');
    // A closed connection frees its place.
    await c1.close();
    let c4;
    for (let i = 0; i < 20; i++) { // the server may take a moment to see c1's close
      c4 = await rawConnect(b.urlFor(b.mint('alice')));
      const f = await c4.waitFor((x) => isWelcome(x) || isDisconnect(x));
      if (isWelcome(f)) break;
      await c4.waitClosed();
      await sleep(50);
    }
    await assertStillWorks(c4);
  });
});

describe('plugin_opt_max_connections 3', () => {
  const ctx = useBroker({ pluginOpts: { max_connections: 3 } });

  test('the fourth connection gets too_many_connections, reconnect true, close 1013', async () => {
    const b = ctx.broker;
    const cs = [await attacker(b, 'u1'), await attacker(b, 'u2'), await attacker(b, 'u3')];
    const c4 = await rawConnect(b.urlFor(b.mint('u4')));
    const { code } = await c4.waitClosed(3000);
    assert.deepEqual({ frames: seen(c4), code },
      { frames: [{ type: 'disconnect', reason: 'too_many_connections', reconnect: true }], code: 1013 });
    for (const c of cs) await assertStillWorks(c);
    // Refused before authentication: even a connection without a token gets the same answer.
    const c5 = await rawConnect(b.wsUrl);
    const closed5 = await c5.waitClosed(3000);
    assert.deepEqual({ frames: seen(c5), code: closed5.code },
      { frames: [{ type: 'disconnect', reason: 'too_many_connections', reconnect: true }], code: 1013 });
    await cs[0].close();
    let c6;
    for (let i = 0; i < 20; i++) {
      c6 = await rawConnect(b.urlFor(b.mint('u6')));
      const f = await c6.waitFor((x) => isWelcome(x) || isDisconnect(x));
      if (isWelcome(f)) break;
      await c6.waitClosed();
      await sleep(50);
    }
    await assertStillWorks(c6);
  });
});
