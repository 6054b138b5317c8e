// What an operator sees on the first day: errors that say what to do, a broker
// configured with per_listener_settings true that cannot be missed, a token accepted
// within the leeway that is not closed at once, every server-side close in the log, a
// reload line naming every file, and a clean version line.
import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, chmodSync, rmSync, readFileSync, existsSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import {
  startBroker, startBrokerMustFail, freePort, runCleanups, onCleanup, READY_LINE, REPO, rawConnect, isWelcome,
  isDisconnect, actuatorId, isConfirm, sleep, mqttConnect,
} from './lib/index.mjs';
import { waitForLog } from './fixtures/util.mjs';

afterEach(runCleanups);

async function mustFail(opts) {
  const { log } = await startBrokerMustFail(opts);
  assert.ok(!log.includes(READY_LINE));
  return log;
}

const brokerUser = () => {
  if (process.getuid() !== 0) return os.userInfo().username;
  try { execFileSync('id', ['-u', 'mosquitto']); return 'mosquitto'; } catch { return 'root'; }
};

test('an unknown option names the closest known one', async () => {
  let log = await mustFail({ pluginOpts: { jwt_secret: '/etc/secret' } });
  assert.match(log, /plugin_opt_jwt_secret: unknown option; did you mean plugin_opt_jwt_secret_file\?/);
  log = await mustFail({ pluginOpts: { chanels_file: '/x.json' } });
  assert.match(log, /plugin_opt_chanels_file: unknown option; did you mean plugin_opt_channels_file\?/);
  log = await mustFail({ pluginOpts: { max_conections_per_ip: '5' } });
  assert.match(log, /did you mean plugin_opt_max_connections_per_ip\?/);
  log = await mustFail({ pluginOpts: { bogus_option: '1' } });
  assert.match(log, /plugin_opt_bogus_option: unknown option \(see docs\/configuration.md\)/);
});

test('an unreadable file says which user the broker runs as', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'cable-it-unreadable-'));
  chmodSync(dir, 0o755);
  onCleanup(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'channels.json');
  writeFileSync(file, readFileSync(path.join(REPO, 'config/channels.example.json')));
  chmodSync(file, 0o000); // root's own broker would read it anyway: it runs as mosquitto
  const user = brokerUser();
  if (user === 'root') return; // no unprivileged user to be refused
  const log = await mustFail({ pluginOpts: { channels_file: file } });
  assert.match(log, new RegExp(`plugin_opt_channels_file: cannot read '${file}': Permission denied; ` +
    `the broker runs as user '${user}' \\(uid \\d+\\)`));
  const keys = await mustFail({ pluginOpts: { jwt_secret_file: null, jwt_keys_file: file } });
  assert.match(keys, new RegExp(`plugin_opt_jwt_keys_file: cannot read '${file}': Permission denied; ` +
    `the broker runs as user '${user}'`));
});

test('a listen failure says in use, not a local address, or not permitted', async () => {
  const port = await freePort();
  const srv = net.createServer();
  await new Promise((r) => srv.listen(port, '127.0.0.1', r));
  onCleanup(() => new Promise((r) => srv.close(r)));
  let log = await mustFail({ pluginOpts: { port } });
  assert.match(log, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port} \\(plugin_opt_address / plugin_opt_port\\): in use`));

  log = await mustFail({ pluginOpts: { address: '192.0.2.1' } }); // TEST-NET-1, never local
  assert.match(log, /cannot listen on 192\.0\.2\.1:\d+ .*: not a local address/);

  const unprivilegedFrom = Number(readFileSync('/proc/sys/net/ipv4/ip_unprivileged_port_start', 'utf8'));
  if (brokerUser() !== 'root' && unprivilegedFrom > 1) {
    log = await mustFail({ pluginOpts: { port: 1 } });
    assert.match(log, /cannot listen on 127\.0\.0\.1:1 .*: not permitted/);
  }
});

test('per_listener_settings true: the broker log says so, /health is 503, performs are refused', async () => {
  const b = await startBroker({ perListenerSettings: true, pluginOpts: { ping_interval: 1 } });
  onCleanup(() => b.stop());
  // From the broker thread: a timestamped line in the broker's own log.
  assert.match(b.log(), /^\d+: mosquitto-cable: error: per_listener_settings is true: .*Set per_listener_settings false/m);

  const c = await rawConnect(b.urlFor(b.mint('alice')));
  await c.waitFor(isWelcome);
  const id = actuatorId(42);
  c.send({ command: 'subscribe', identifier: id });
  await c.waitFor(isConfirm(id));
  // The gateway's watchdog: no TICK within 5 s of start.
  const health = `http://127.0.0.1:${b.wsPort}/health`;
  let res;
  for (let i = 0; i < 100; i++) {
    res = await fetch(health);
    if (res.status !== 200) break;
    await sleep(100);
  }
  assert.equal(res.status, 503);
  assert.match(await res.text(), /^unhealthy: the broker sends no MOSQ_EVT_TICK.*set per_listener_settings false/);
  c.send({ command: 'message', identifier: id, data: JSON.stringify({ action: 'speak', message: 'on' }) });
  // The browser is told (the example channel map answers refusals).
  const refused = await c.waitFor((f) => f.json?.identifier === id && f.json.message?.$cable === 'refused');
  assert.deepEqual(refused.json.message, { $cable: 'refused', action: 'speak', request: 1, reason: 'broker_refused' });
  // The broker thread logs the refusal on its next turn in the plugin (a device publish).
  const dev = await mqttConnect(b.mqttUrl);
  await dev.publish('actuators/42/state', '{"on":false}');
  await waitForLog(b, /^\d+: mosquitto-cable: connection \S+ \(user alice\) perform refused: the broker sends no MOSQ_EVT_TICK/m);
});

test('a token accepted within the leeway lives until exp + leeway; the close is logged', async () => {
  const b = await startBroker({ pluginOpts: { jwt_leeway: 3 } });
  onCleanup(() => b.stop());
  const exp = Math.floor(Date.now() / 1000) - 1; // expired a second ago: inside the leeway
  const token = b.mint('alice', { expiresIn: null, claims: { exp } });
  const c = await rawConnect(b.urlFor(token));
  await c.waitFor(isWelcome);
  const bye = await c.waitFor(isDisconnect, 6000);
  assert.equal(bye.json.reason, 'token_expired');
  // Not at once (the old behaviour): at exp + leeway, about two seconds from now.
  assert.ok(bye.at >= (exp + 3) * 1000 - 50, `closed ${(exp + 3) * 1000 - bye.at} ms before exp + leeway`);
  await waitForLog(b, /connection \S+ \(127\.0\.0\.1\) closed: token_expired/);
});

test('shutdown logs that it closes the connections, and why', async () => {
  const b = await startBroker();
  const c = await rawConnect(b.urlFor(b.mint('alice')));
  await c.waitFor(isWelcome);
  const { log } = await b.stop();
  assert.match(log, /mosquitto-cable: closing 1 connections: server_restart/);
});

test('the reload line names the ACL file too; the version line has no trailing dash', async () => {
  const b = await startBroker({
    files: { 'acl': 'user alice\ntopic readwrite actuators/#\n' },
    pluginOpts: { acl_file: '$DIR/acl' },
  });
  onCleanup(() => b.stop());
  assert.match(b.log(), /mosquitto-cable: libwebsockets \d+\.\d+\.\d+ from /);
  process.kill(b.pid, 'SIGHUP');
  const m = await waitForLog(b, /mosquitto-cable: reloaded (.*)/);
  assert.equal(m[1].trim(), `${path.join(REPO, 'config/channels.example.json')}, ${b.dir}/secret, ${b.dir}/acl`);
  assert.ok(existsSync(b.confFile));
});
