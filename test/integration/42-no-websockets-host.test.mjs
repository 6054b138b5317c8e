// The plugin inside a host that has no libwebsockets at all (test/host/minihost.c,
// standing in for a Mosquitto built without websockets): the gateway still finds its
// one copy, libwebsockets.so.17, and the whole path works: welcome, subscribe, a
// "device" message in, a speak out.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import path from 'node:path';
import { BUILD, REPO, freePort, rawConnect, actuatorId, isMessageFor } from './lib/index.mjs';
import jwt from 'jsonwebtoken';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';

const host = path.join(BUILD, 'test', 'minihost');
let child;
after(() => child?.kill('SIGKILL'));

test('minihost exports no lws_* symbols (the premise of this test)', () => {
  const syms = execFileSync('nm', ['-D', '--defined-only', host]).toString();
  assert.doesNotMatch(syms, / T lws_/);
  assert.match(syms, / T mosquitto_broker_publish_copy/);
  assert.doesNotMatch(execFileSync('readelf', ['-d', host]).toString(), /libwebsockets/);
});

test('the plugin runs in a host without websockets: subscribe, deliver, speak, stop', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'cable-minihost-'));
  const secret = 'x'.repeat(48);
  writeFileSync(path.join(dir, 'secret'), secret);
  const port = await freePort();
  child = spawn(host, [path.join(BUILD, 'mosquitto_cable.so'), `port=${port}`,
    `channels_file=${path.join(REPO, 'config', 'channels.example.json')}`,
    `jwt_secret_file=${path.join(dir, 'secret')}`], { stdio: ['pipe', 'pipe', 'pipe'] });
  let err = '', out = '';
  child.stderr.on('data', (d) => { err += d; });
  child.stdout.on('data', (d) => { out += d; });
  const waitFor = async (fn, what) => {
    for (let i = 0; i < 100 && !fn(); i++) await new Promise((r) => setTimeout(r, 50));
    assert.ok(fn(), `${what}\nstderr:\n${err}\nstdout:\n${out}`);
  };
  await waitFor(() => /minihost running/.test(err), 'minihost did not start');
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
  await waitFor(() => out.includes('PUBLISH actuators/42/cmd\t{"user":"alice","message":"hi"}'),
    'the speak did not reach the host');
  child.kill('SIGTERM');
  const code = await new Promise((r) => child.on('exit', r));
  assert.equal(code, 0, err);
  assert.match(err, /minihost stopped/);
});
