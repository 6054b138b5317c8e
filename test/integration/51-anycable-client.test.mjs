// AnyCable's JavaScript client, unmodified, against the plugin.
//
// @anycable/web, and the @anycable/core it is built on, in their actioncable-v1-json
// mode, with the token passed the way AnyCable passes it: `auth: { token }` makes the
// client put it in the `jid` query parameter of the WebSocket URL. Every test runs
// once per package.
//
// Why in Node and not in the browser page: AnyCable's README ("Usage: Node.js") runs
// the client in Node exactly like this, with @anycable/core and the `ws` package passed
// as `websocketImplementation`. @anycable/web adds only DOM conveniences on top (URL
// and token from <meta> tags, reconnect on tab visibility), each of which steps aside
// when there is no DOM and the URL is given, so it runs unmodified here as well. Node
// needs no bundler or import map for the packages' bare imports (`@anycable/core`,
// `nanoevents`) and lets the test await the client's own promises (connect(),
// ensureSubscribed(), perform()) and read its log. The real-browser path is
// 50-demo-browser (the Rails client in Chromium); both clients speak the same
// actioncable-v1-json over the same WebSocket.
//
import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { createCable as createWebCable } from '@anycable/web';
import { createCable as createCoreCable, SubscriptionRejectedError, BaseLogger } from '@anycable/core';

import { useBroker, mqttConnect, onCleanup, AsyncQueue, withTimeout } from './lib/index.mjs';
import { startDevice } from '../../demo/test-support/demo.mjs';

const CLIENTS = [['@anycable/web', createWebCable], ['@anycable/core', createCoreCable]];

const ctx = useBroker();
let device = null; // demo/device.mjs for actuator 42, started by the first test that needs it
after(async () => { if (device) await device.stop(); });

// AnyCable's own logger, kept: the client warns about what it does not understand
// ("unknown message type", "subscription not found", ...), so a test can assert that
// our server gave it nothing to complain about.
class RecordingLogger extends BaseLogger {
  constructor(level) {
    super(level);
    this.entries = [];
  }

  writeLogEntry(level, msg, details) {
    this.entries.push({ level, msg, details });
    if (process.env.CABLE_TEST_DEBUG) console.error(`[anycable ${level}] ${msg}`, details ?? '');
  }

  complaints() {
    return this.entries.filter((e) => e.level === 'warn' || e.level === 'error')
      .map((e) => `${e.level}: ${e.msg} ${e.details ? JSON.stringify(e.details) : ''}`);
  }
}

// A stock AnyCable cable; closed after each test.
function anycable(createCable, token, opts = {}) {
  const logger = new RecordingLogger(process.env.CABLE_TEST_DEBUG ? 'debug' : 'info');
  const cable = createCable(ctx.broker.wsUrl, {
    protocol: 'actioncable-v1-json',
    websocketImplementation: WebSocket,
    auth: token === undefined ? undefined : { token },
    logger,
    ...opts,
  });
  const events = new AsyncQueue('AnyCable cable events');
  for (const name of ['connect', 'disconnect', 'close']) {
    cable.on(name, (arg) => events.push({ type: name, arg, raw: `${name} ${arg?.reason ?? ''}` }));
  }
  onCleanup(() => cable.disconnect());
  return { cable, events, logger };
}

// The channel's `message` events, as a queue.
function messages(channel) {
  const q = new AsyncQueue(`AnyCable messages of ${channel.identifier}`);
  channel.on('message', (msg) => q.push(msg));
  return q;
}

for (const [pkg, createCable] of CLIENTS) {
  describe(pkg, () => {
    test('connects with the token as jid, in actioncable-v1-json', async () => {
      const { cable, logger } = anycable(createCable, ctx.broker.mint('dave'));
      await withTimeout(cable.connect(), 5000, 'AnyCable connect()');
      assert.equal(cable.state, 'connected');
      // What went over the wire: the jid parameter and the negotiated sub-protocol.
      const ws = cable.transport.ws;
      assert.match(ws.url, /[?&]jid=[^&]+/);
      assert.equal(ws.protocol, 'actioncable-v1-json');
      // The welcome's sid is what AnyCable keeps as its session id.
      assert.equal(typeof cable.sessionId, 'string');
      assert.ok(cable.sessionId.length > 0, 'welcome carried a sid');
      // Pings (every 3 s) are understood: wait for one and look at the logs.
      await new Promise((r) => setTimeout(r, 3500));
      assert.equal(cable.state, 'connected');
      assert.deepEqual(logger.complaints(), []);
    });

    test('subscribes to ActuatorChannel 42 and receives what a device publishes', async () => {
      const { cable, logger } = anycable(createCable, ctx.broker.mint('dave'));
      const channel = cable.subscribeTo('ActuatorChannel', { id: 42 });
      await withTimeout(channel.ensureSubscribed(), 5000, 'ensureSubscribed()');
      assert.equal(channel.state, 'connected');
      assert.equal(channel.identifier, '{"channel":"ActuatorChannel","id":42}');
      const got = messages(channel);

      const dev = await mqttConnect(ctx.broker.mqttUrl);
      await dev.publish('actuators/42/state', JSON.stringify({ on: true, by: 'device', at: 1 }));
      assert.deepEqual(await got.next(3000, 'device state'), { on: true, by: 'device', at: 1 });
      // Not JSON: delivered as a string.
      await dev.publish('actuators/42/state', 'rebooting');
      assert.equal(await got.next(3000, 'device text'), 'rebooting');
      // Another actuator's traffic is not for this channel.
      await dev.publish('actuators/43/state', JSON.stringify({ on: false }));
      await got.expectNone(300);
      assert.deepEqual(logger.complaints(), []);
    });

    test('perform("speak") reaches an MQTT subscriber as {"user","message"}', async () => {
      const { cable, logger } = anycable(createCable, ctx.broker.mint('dave'));
      const channel = cable.subscribeTo('ActuatorChannel', { id: 42 });
      await withTimeout(channel.ensureSubscribed(), 5000, 'ensureSubscribed()');
      const got = messages(channel);

      const sub = await mqttConnect(ctx.broker.mqttUrl);
      await sub.subscribe('actuators/#');
      await withTimeout(channel.perform('speak', { message: 'on' }), 3000, 'perform()');

      const m = await sub.nextOn('actuators/42/cmd');
      assert.deepEqual(JSON.parse(m.text), { user: 'dave', message: 'on' });
      assert.equal(m.retain, false);
      // The channel streams actuators/42/cmd too: the client hears its own command.
      assert.deepEqual(await got.next(3000, 'echo of speak'), { user: 'dave', message: 'on' });
      assert.deepEqual(logger.complaints(), []);
    });

    test('a command round trip with the simulated device (demo/device.mjs)', async () => {
      device ??= await startDevice(ctx.broker.mqttUrl, [42]);
      const { cable, logger } = anycable(createCable, ctx.broker.mint('erin'));
      const channel = cable.subscribeTo('ActuatorChannel', { id: 42 });
      await withTimeout(channel.ensureSubscribed(), 5000, 'ensureSubscribed()');
      const got = messages(channel);

      await channel.perform('speak', { message: 'on' });
      // The device announces its boot state when it connects (QoS 0, not awaited by the
      // broker), so that may reach this fresh subscription too: not what this test is about.
      const notBoot = (m) => !m.boot;
      assert.deepEqual(await got.nextMatching(notBoot, 3000, 'echo of speak'), { user: 'erin', message: 'on' });
      const answer = await got.nextMatching(notBoot, 3000, "device's answer");
      assert.equal(answer.on, true);
      assert.equal(answer.by, 'erin');
      assert.equal(answer.command, 'on');
      assert.equal(typeof answer.at, 'number');
      assert.deepEqual(logger.complaints(), []);
    });

    test('an invalid id is rejected: ensureSubscribed() fails with SubscriptionRejectedError', async () => {
      const { cable } = anycable(createCable, ctx.broker.mint('dave'));
      const channel = cable.subscribeTo('ActuatorChannel', { id: '42/#' });
      await assert.rejects(withTimeout(channel.ensureSubscribed(), 5000, 'ensureSubscribed()'),
        (e) => e instanceof SubscriptionRejectedError);
      // The connection stays up for other channels.
      const ok = cable.subscribeTo('ActuatorChannel', { id: 43 });
      await withTimeout(ok.ensureSubscribed(), 5000, 'ensureSubscribed() of 43');
    });

    test('a bad token: the client is told unauthorized and does not reconnect', async () => {
      const { cable, events } = anycable(createCable, ctx.broker.mint('mallory', { secret: 'not-the-secret' }));
      await assert.rejects(withTimeout(cable.connect(), 5000, 'AnyCable connect()'));
      const ev = await events.nextMatching((e) => e.type === 'close', 3000, 'close event');
      assert.equal(ev.arg?.reason, 'unauthorized');
      assert.equal(cable.state, 'closed');
    });
  });
}
