// A publish the broker does not accept (mosquitto_broker_publish_copy fails) is
// answered to the browser that performed: {"$cable":"refused","reason":"broker_refused"}.
// The real broker accepts every well-formed plugin publish, so this runs the plugin in
// test/host/minihost (the stand-in host of 42-no-websockets-host), told to refuse
// publishes to one topic; the browser is the stock @rails/actioncable client.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import jwt from 'jsonwebtoken';
import { BUILD, REPO, freePort, createCable, actuatorParams, runCleanups } from './lib/index.mjs';

const host = path.join(BUILD, 'test', 'minihost');
const dir = mkdtempSync(path.join(os.tmpdir(), 'cable-refused-'));
let child;
after(async () => {
  await runCleanups();
  child?.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

test('the broker refusing a publish is answered with "broker_refused"', async () => {
  const secret = 'y'.repeat(48);
  writeFileSync(path.join(dir, 'secret'), secret);
  const port = await freePort();
  child = spawn(host, [path.join(BUILD, 'mosquitto_cable.so'), `port=${port}`,
    `channels_file=${path.join(REPO, 'config', 'channels.example.json')}`,
    `jwt_secret_file=${path.join(dir, 'secret')}`],
  { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, MINIHOST_REFUSE_TOPIC: 'actuators/42/cmd' } });
  let err = '', out = '';
  child.stderr.on('data', (d) => { err += d; });
  child.stdout.on('data', (d) => { out += d; });
  const waitFor = async (fn, what) => {
    for (let i = 0; i < 100 && !fn(); i++) await new Promise((r) => setTimeout(r, 50));
    assert.ok(fn(), `${what}\nstderr:\n${err}\nstdout:\n${out}`);
  };
  await waitFor(() => /minihost running/.test(err), 'minihost did not start');

  const token = jwt.sign({ sub: 'alice' }, secret, { algorithm: 'HS256', expiresIn: 60 });
  const cable = createCable(`ws://127.0.0.1:${port}/cable?jid=${token}`);
  const s42 = cable.subscribe(actuatorParams(42));
  const s43 = cable.subscribe(actuatorParams(43));
  await Promise.all([s42.confirmed(), s43.confirmed()]);

  s42.perform('speak', { message: 'on', $request: 'n1' });
  assert.deepEqual(await s42.next(),
    { $cable: 'refused', action: 'speak', request: 'n1', reason: 'broker_refused' });
  s42.perform('status', { message: 'status' });
  assert.deepEqual(await s42.next(),
    { $cable: 'refused', action: 'status', request: 2, reason: 'broker_refused' });
  await waitFor(() => (out.match(/^REFUSED actuators\/42\/cmd$/mg) || []).length === 2,
    'the host did not see both publishes');
  assert.match(err, /publish to 'actuators\/42\/cmd' failed/);

  // Accepted elsewhere: the request goes out (the host takes its properties) and is
  // acknowledged; nothing more arrives for the refused subscription.
  s43.perform('status', { message: 'status' });
  await waitFor(() => out.includes('PUBLISH actuators/43/cmd\t{"user":"alice","message":"status"}'),
    'the status on 43 did not reach the host');
  assert.deepEqual(await s43.next(), { user: 'alice', message: 'status' }); // its echo
  assert.deepEqual(await s43.next(), { $cable: 'ack', action: 'status', request: 3 });
  await s42.expectNone(300);

  await cable.close();
  child.kill('SIGTERM');
  const code = await new Promise((r) => child.on('exit', r));
  assert.equal(code, 0, err);
});
