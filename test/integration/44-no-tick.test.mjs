// Mosquitto 2.0.11 sends plugins no MOSQ_EVT_TICK when per_listener_settings is true,
// so nothing the gateway hands the broker thread (browser publishes, log lines) would
// ever leave. The plugin notices within a few seconds and says so on stderr.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync, chmodSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BUILD, REPO, MOSQUITTO, freePort } from './lib/index.mjs';

let child;
after(() => child?.kill('SIGKILL'));

test('per_listener_settings true: an error on stderr explains why nothing will be delivered', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'cable-notick-'));
  chmodSync(dir, 0o755);
  const conf = path.join(dir, 'm.conf');
  const wsPort = await freePort();
  writeFileSync(conf, [
    'per_listener_settings true',
    `listener ${await freePort()} 127.0.0.1`,
    'allow_anonymous true',
    `plugin ${path.join(BUILD, 'mosquitto_cable.so')}`,
    `plugin_opt_port ${wsPort}`,
    `plugin_opt_threads ${process.env.CABLE_TEST_THREADS || 2}`,
    `plugin_opt_channels_file ${path.join(REPO, 'config', 'channels.example.json')}`,
    'plugin_opt_auth anonymous',
    '',
  ].join('\n'));
  chmodSync(conf, 0o644);
  child = spawn(MOSQUITTO, ['-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { out += d; });
  const watchdog = /mosquitto-cable: error: the broker sends no MOSQ_EVT_TICK.*set per_listener_settings false/;
  for (let i = 0; i < 200 && !watchdog.test(out); i++) await new Promise((r) => setTimeout(r, 50));
  assert.match(out, watchdog);
  // Said once for the process, and /health says it whichever shard answers.
  assert.equal(out.match(new RegExp(watchdog.source, 'g')).length, 1);
  for (let i = 0; i < 8; i++) {
    const res = await fetch(`http://127.0.0.1:${wsPort}/health`);
    assert.equal(res.status, 503);
    assert.match(await res.text(), /^unhealthy: the broker sends no MOSQ_EVT_TICK/);
  }
});
