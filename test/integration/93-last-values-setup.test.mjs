// Setting up last values: a malformed plugin_opt_state_listener stops the broker, a
// listener the broker does not have is named in the log, only the plugin's own client
// gets in with its authentication method, and plugin_opt_state_grant_read lets it read
// on a broker whose acl_file knows nothing of it.
import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import mqtt from 'mqtt';
import {
  startBroker, runCleanups, onCleanup, connectAndSubscribe, mqttConnect, actuatorParams, sleep,
  READY_LINE,
} from './lib/index.mjs';
import { waitForLog } from './fixtures/util.mjs';

afterEach(runCleanups);

async function started(opts) {
  const b = await startBroker(opts);
  onCleanup(() => b.stop());
  return b;
}

// Starts a broker that must not start; returns the error (with .exit and .log).
async function mustFail(opts) {
  let err = null;
  try {
    const b = await startBroker(opts);
    await b.stop();
  } catch (e) {
    err = e;
  }
  assert.ok(err?.exit, 'the broker exits by itself');
  return err;
}

test('a malformed plugin_opt_state_listener stops the broker with a line naming it', async () => {
  const err = await mustFail({ pluginOpts: { state_listener: 'localhost:http' } });
  assert.ok(!err.log.includes(READY_LINE));
  assert.match(err.log, /plugin_opt_state_listener: 'localhost:http' is neither/);
});

test('a listener the broker does not have: a clear error once the broker runs', async () => {
  const b = await started({ pluginOpts: { state_listener: '$DIR/missing.sock' } });
  const [line] = await waitForLog(b, /plugin_opt_state_listener \S+missing\.sock: cannot connect[^\n]*/, 5000);
  assert.match(line, /listener 0 \S+missing\.sock/);
});

test('only the plugin gets in with its authentication method', async () => {
  const b = await started({ state: true });
  const client = mqtt.connect(b.mqttUrl, {
    protocolVersion: 5, reconnectPeriod: 0, clientId: 'intruder',
    properties: { authenticationMethod: 'mosquitto-cable', authenticationData: Buffer.from('guess') },
  });
  onCleanup(() => client.endAsync(true));
  const outcome = await new Promise((resolve) => {
    client.once('connect', () => resolve('connected'));
    client.once('error', (e) => resolve(`error: ${e.message}`));
    client.once('close', () => resolve('closed'));
  });
  assert.notEqual(outcome, 'connected');
  await waitForLog(b, /refused a client using the mosquitto-cable authentication method/);
  // The plugin's own client is unaffected, and ordinary clients are not asked for anything.
  const dev = await mqttConnect(b.mqttUrl, { username: 'someone', password: 'anything' });
  await dev.publish('actuators/2/state', '"ok"', { retain: true, qos: 1 });
  const { subs: [s] } = await connectAndSubscribe(b, 'alice', [actuatorParams(2)]);
  assert.equal(await s.next(), 'ok');
});

test('plugin_opt_state_grant_read: the internal client reads past the broker\'s own acl_file', async () => {
  const b = await started({
    state: true,
    files: { 'broker.acl': 'topic readwrite actuators/#\n' }, // anonymous devices only
    extraConf: ['acl_file $DIR/broker.acl'],
    pluginOpts: { state_grant_read: 'true' },
  });
  const dev = await mqttConnect(b.mqttUrl);
  await dev.publish('actuators/6/state', '{"v":6}', { retain: true, qos: 1 });
  await sleep(100);
  const { subs: [s] } = await connectAndSubscribe(b, 'alice', [actuatorParams(6)]);
  assert.deepEqual(await s.next(), { v: 6 });
  await dev.publish('actuators/6/state', '{"v":7}');
  assert.deepEqual(await s.next(), { v: 7 });
});

test('a broker that admits no anonymous client: the internal client still gets in, devices need their password', async () => {
  const { execFileSync } = await import('node:child_process');
  const { mkdtempSync, readFileSync, rmSync } = await import('node:fs');
  const os = await import('node:os');
  const path = await import('node:path');
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'cable-pw-'));
  execFileSync('mosquitto_passwd', ['-b', '-c', path.join(tmp, 'pw'), 'dev', 'secret1']);
  const passwd = readFileSync(path.join(tmp, 'pw'), 'utf8');
  rmSync(tmp, { recursive: true, force: true });
  const b = await started({
    state: true,
    files: { passwd },
    extraConf: ['allow_anonymous false', 'password_file $DIR/passwd'],
  });
  await assert.rejects(mqttConnect(b.mqttUrl), /CONNACK|Not authorized|refused|closed/i);
  const dev = await mqttConnect(b.mqttUrl, { username: 'dev', password: 'secret1' });
  await dev.publish('actuators/12/state', '"locked down"', { retain: true, qos: 1 });
  const { subs: [s] } = await connectAndSubscribe(b, 'alice', [actuatorParams(12)]);
  assert.equal(await s.next(), 'locked down');
});

test('a loopback TCP listener works too; a non-loopback address is refused at start', async () => {
  const { freePort } = await import('./lib/index.mjs');
  const port = await freePort();
  const b = await started({
    extraConf: [`listener ${port} 127.0.0.1`],
    pluginOpts: { state_listener: `127.0.0.1:${port}` },
  });
  await waitForLog(b, /last values: connected to the broker at 127\.0\.0\.1:\d+/);
  const dev = await mqttConnect(b.mqttUrl);
  await dev.publish('actuators/13/state', '"tcp"', { retain: true, qos: 1 });
  await sleep(100);
  const { subs: [s] } = await connectAndSubscribe(b, 'alice', [actuatorParams(13)]);
  assert.equal(await s.next(), 'tcp');

  const err = await mustFail({ pluginOpts: { state_listener: '10.1.2.3:1883' } });
  assert.match(err.log, /plugin_opt_state_listener: '10\.1\.2\.3:1883' is neither/);
});
