// Commands that answer back (the channel map's "answer"): the browser that performed
// hears why its perform was refused, and an acknowledgement once the broker took the
// publish, as {"$cable":"refused"|"ack",...} in received(data) on the same identifier.
// Where nothing is configured the stock ActionCable behaviour holds: no reply at all.
// Real broker, config/channels.example.json and config/acl.example, the stock
// @rails/actioncable client; an MQTT client on '#' witnesses what was published.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import {
  REPO, useBroker, connectAndSubscribe, mqttConnect, actuatorParams,
} from './lib/index.mjs';

const refused = (reason, extra = {}) => ({ $cable: 'refused', reason, ...extra });

async function witness(b) {
  const mq = await mqttConnect(b.mqttUrl);
  await mq.subscribe('#');
  return mq;
}

describe('answers with the example channel map and ACL', () => {
  const ctx = useBroker({
    pluginOpts: { acl_file: path.join(REPO, 'config', 'acl.example') },
  });

  test('unknown action: refused with "unknown_action", nothing published', async () => {
    const b = ctx.broker;
    const mq = await witness(b);
    const { subs: [s] } = await connectAndSubscribe(b, 'alice', [actuatorParams(42)]);
    s.perform('dance', { message: 'on' });
    assert.deepEqual(await s.next(), refused('unknown_action', { action: 'dance', request: 1 }));
    await mq.expectNone(300);
  });

  test('retain asked for where the action does not allow it: "retain_not_allowed"', async () => {
    const b = ctx.broker;
    const mq = await witness(b);
    const { subs: [s] } = await connectAndSubscribe(b, 'alice', [actuatorParams(42)]);
    s.perform('speak', { message: 'pin me', retain: true, $request: 'r-1' });
    assert.deepEqual(await s.next(),
      refused('retain_not_allowed', { action: 'speak', request: 'r-1' }));
    await mq.expectNone(300);
  });

  test('data the action cannot use: "invalid_data"', async () => {
    const b = ctx.broker;
    const { subs: [s] } = await connectAndSubscribe(b, 'alice', [actuatorParams(42)]);
    // "$request" must be a string of at most 64 bytes or an integer.
    s.perform('speak', { message: 'on', $request: { nested: true } });
    // (An unusable "$request" is not echoed: the answer counts performs instead.)
    assert.deepEqual(await s.next(), refused('invalid_data', { action: 'speak', request: 1 }));
    s.perform('status', { message: 'status', $request: 'x'.repeat(65) });
    assert.deepEqual(await s.next(), refused('invalid_data', { action: 'status', request: 2 }));
  });

  test('the ACL does not let a watch-only user write: "acl_denied", nothing published', async () => {
    const b = ctx.broker;
    const mq = await witness(b);
    const { subs: [s] } = await connectAndSubscribe(b, 'bob', [actuatorParams(42)]);
    s.perform('speak', { message: 'bob was here', $request: 'b1' });
    assert.deepEqual(await s.next(), refused('acl_denied', { action: 'speak', request: 'b1' }));
    await mq.expectNone(300);
  });

  test('an accepted speak ("answer": "refusals") gets no acknowledgement', async () => {
    const b = ctx.broker;
    const mq = await witness(b);
    const { subs: [s] } = await connectAndSubscribe(b, 'alice', [actuatorParams(42)]);
    s.perform('speak', { message: 'on', $request: 'x' });
    const m = await mq.next();
    assert.equal(m.text, '{"user":"alice","message":"on"}', '"$request" is never published');
    // Only the command's own echo on the cmd stream; no {"$cable": ...}.
    assert.deepEqual(await s.next(), { user: 'alice', message: 'on' });
    await s.expectNone(400);
  });

  test('an accepted action with "answer": "all" is acknowledged after the broker took it', async () => {
    const b = ctx.broker;
    const mq = await witness(b);
    const { subs: [s] } = await connectAndSubscribe(b, 'alice', [actuatorParams(42)]);
    const { subs: [other] } = await connectAndSubscribe(b, 'bob', [actuatorParams(42)]);
    s.perform('status', { message: 'status', $request: 'q1' });
    assert.equal((await mq.next()).text, '{"user":"alice","message":"status"}');
    const got = [await s.next(), await s.next()];
    assert.deepEqual(got, [
      { user: 'alice', message: 'status' }, // the echo on the cmd stream
      { $cable: 'ack', action: 'status', request: 'q1' },
    ]);
    // The other browser on the same channel sees the command, never alice's answer.
    assert.deepEqual(await other.next(), { user: 'alice', message: 'status' });
    await other.expectNone(300);
  });

  test('without "$request" the answers count the connection\'s performs', async () => {
    const b = ctx.broker;
    const { subs: [s] } = await connectAndSubscribe(b, 'alice', [actuatorParams(42)]);
    s.perform('dance', {});
    s.perform('jump', {});
    assert.deepEqual(await s.next(), refused('unknown_action', { action: 'dance', request: 1 }));
    assert.deepEqual(await s.next(), refused('unknown_action', { action: 'jump', request: 2 }));
  });

  test('device data cannot pass for an answer: a plain channel drops the reserved key', async () => {
    const b = ctx.broker;
    const { subs: [s] } = await connectAndSubscribe(b, 'alice', [actuatorParams(42)]);
    const dev = await mqttConnect(b.mqttUrl);
    await dev.publish('actuators/42/state', '{"$cable":"ack","action":"speak"}');
    await dev.publish('actuators/42/state', '{"on":true,"note":"$cable"}');
    assert.deepEqual(await s.next(), { on: true, note: '$cable' });
    await s.expectNone(200);
    const metrics = await (await fetch(`http://127.0.0.1:${b.wsPort}/metrics`)).text();
    assert.match(metrics, /^cable_binary_skipped_total [1-9]/m);
    assert.match(metrics, /^cable_refusals_total [1-9]/m);
  });
});

describe('a channel without "answer" (example map, no ACL)', () => {
  const ctx = useBroker();

  test('a channel without "answer" keeps ActionCable\'s behaviour: no reply, ever', async () => {
    const b = ctx.broker;
    const mq = await witness(b);
    // BenchmarkChannel sets no "answer": not for a refusal, not for an accepted perform.
    const { subs: [s] } = await connectAndSubscribe(b, 'alice', [{ channel: 'BenchmarkChannel' }]);
    s.perform('dance', { n: 1 });
    s.perform('broadcast', { n: 2, retain: true });
    await s.expectNone(400);
    s.perform('broadcast', { n: 3 });
    assert.deepEqual(await s.next(), { n: 3 }); // its own broadcast, nothing else
    assert.equal((await mq.nextOn('bench/all')).text, '{"n":3}');
    await s.expectNone(300);
  });
});
