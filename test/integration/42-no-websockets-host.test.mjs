// The plugin inside a host that has no libwebsockets at all (test/host/minihost.c,
// standing in for a Mosquitto built without websockets): the gateway still finds its
// one copy, libwebsockets.so.17, and the whole path works: welcome, subscribe, a
// "device" message in, a speak out.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { rawConnect, actuatorId, isMessageFor, runCleanups } from './lib/index.mjs';
import { startMinihost, MINIHOST as host } from './lib/minihost.mjs';
import jwt from 'jsonwebtoken';

let child;
after(async () => {
  child?.kill('SIGKILL');
  await runCleanups();
});

test('minihost exports no lws_* symbols (the premise of this test)', () => {
  const syms = execFileSync('nm', ['-D', '--defined-only', host]).toString();
  assert.doesNotMatch(syms, / T lws_/);
  assert.match(syms, / T mosquitto_broker_publish_copy/);
  assert.doesNotMatch(execFileSync('readelf', ['-d', host]).toString(), /libwebsockets/);
});

test('the plugin runs in a host without websockets: subscribe, deliver, speak, stop', async () => {
  const h = await startMinihost();
  child = h.child;
  const { secret, port, waitFor } = h;
  const err = h.err();
  assert.match(err, /libwebsockets 4\.1\.6.* from \S*libwebsockets\.so\.17 .*isolated/);

  const token = jwt.sign({ sub: 'alice' }, secret, { algorithm: 'HS256', expiresIn: 60 });
  const c = await rawConnect(`ws://127.0.0.1:${port}/cable?jid=${token}`);
  await c.welcome();
  const id = actuatorId(42);
  await c.subscribeAndWait(id);
  child.stdin.write('actuators/42/state\t{"on":true}\n');
  const f = await c.waitFor(isMessageFor(id));
  assert.deepEqual(f.json.message, { on: true });
  c.perform(id, 'speak', { message: 'hi' });
  await waitFor(() => h.out().includes('PUBLISH actuators/42/cmd\t{"user":"alice","message":"hi"}'),
    'the speak did not reach the host');
  child.kill('SIGTERM');
  const code = await h.exited;
  assert.equal(code, 0, h.err());
  assert.match(h.err(), /minihost stopped/);
});
