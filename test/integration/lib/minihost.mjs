// The plugin inside test/host/minihost (a stand-in host without libwebsockets; see
// test/host/minihost.c), with the example channel map and a fresh secret.
//
//   const h = await startMinihost({ env: { MINIHOST_REFUSE_TOPIC: 'a/b' } });
//   h.port, h.secret, h.out(), h.err(), await h.waitFor(() => ..., 'what'), h.child
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BUILD, REPO, freePort } from './broker.mjs';
import { onCleanup } from './cleanup.mjs';

export const MINIHOST = path.join(BUILD, 'test', 'minihost');

export async function startMinihost({ env = {}, secret = 'x'.repeat(48) } = {}) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'cable-minihost-'));
  writeFileSync(path.join(dir, 'secret'), secret);
  const port = await freePort();
  const child = spawn(MINIHOST, [path.join(BUILD, 'mosquitto_cable.so'), `port=${port}`,
    `channels_file=${path.join(REPO, 'config', 'channels.example.json')}`,
    `jwt_secret_file=${path.join(dir, 'secret')}`],
  { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let err = '', out = '';
  child.stderr.on('data', (d) => { err += d; });
  child.stdout.on('data', (d) => { out += d; });
  const exited = new Promise((r) => child.on('exit', r));
  onCleanup(() => {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  const host = {
    child, port, secret, exited,
    out: () => out,
    err: () => err,
    // Polls fn for up to 5 s; fails with the host's output.
    async waitFor(fn, what) {
      for (let i = 0; i < 100 && !fn(); i++) await new Promise((r) => setTimeout(r, 50));
      assert.ok(fn(), `${what}\nstderr:\n${err}\nstdout:\n${out}`);
    },
  };
  await host.waitFor(() => /minihost running/.test(err), 'minihost did not start');
  return host;
}
