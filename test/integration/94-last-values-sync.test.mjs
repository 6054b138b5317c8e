// A browser that subscribes before the internal client has synchronised with the broker
// (the broker just started and browsers are reconnecting, or the client is reconnecting)
// gets the retained values when it synchronises, before any live message.
import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import {
  startBroker, runCleanups, onCleanup, rawConnect, mqttConnect, actuatorId, sleep, isConfirm,
  isMessageFor,
} from './lib/index.mjs';
import { waitForLog } from './fixtures/util.mjs';

afterEach(runCleanups);

test('a subscribe made before the synchronisation is answered by it, then live messages follow', async () => {
  // The plugin's door (late.sock) opens only when the test relays it to the broker's
  // listener (state.sock): until then the internal client cannot connect.
  const b = await startBroker({
    extraConf: ['listener 0 $DIR/state.sock'],
    pluginOpts: { state_listener: '$DIR/late.sock' },
  });
  onCleanup(() => b.stop());
  const dev = await mqttConnect(b.mqttUrl);
  await dev.publish('actuators/20/state', '"before"', { retain: true, qos: 1 });

  const id = actuatorId(20);
  const c = await rawConnect(b.urlFor(b.mint('alice')));
  await c.welcome();
  c.subscribe(id);
  await c.waitFor(isConfirm(id));
  await sleep(500);
  assert.equal(c.received().filter(isMessageFor(id)).length, 0, 'nothing before the synchronisation');

  const sockets = new Set();
  const relay = net.createServer((down) => {
    const up = net.connect(path.join(b.dir, 'state.sock'));
    sockets.add(down).add(up);
    down.pipe(up);
    up.pipe(down);
    down.on('error', () => up.destroy());
    up.on('error', () => down.destroy());
  });
  const door = path.join(b.dir, 'late.sock');
  await new Promise((r) => relay.listen(door, r));
  chmodSync(door, 0o777); // the broker runs as the mosquitto user when started as root
  onCleanup(() => new Promise((r) => {
    relay.close(r);
    for (const sock of sockets) sock.destroy();
  }));

  const first = await c.waitFor(isMessageFor(id), 5000, 'the replay at synchronisation');
  assert.equal(first.json.message, 'before');
  await waitForLog(b, /last values: connected/);
  await dev.publish('actuators/20/state', '"after"');
  const second = await c.waitFor(isMessageFor(id), 3000, 'the live message');
  assert.equal(second.json.message, 'after');
  await sleep(200);
  assert.deepEqual(c.received().filter(isMessageFor(id)).map((f) => f.json.message), ['before', 'after']);
});
