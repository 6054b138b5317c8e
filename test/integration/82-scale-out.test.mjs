// The scale-out recipe in deploy/scale-out, started for real on loopback: HAProxy
// spreading 200 stock ActionCable browsers over two edge brokers that each load the
// plugin, both bridged to a core broker where the device connects. The files are used
// as written; only ports, the plugin's path and the directories of the secret and of
// the plugin's unix socket are replaced (free ports, the build tree, a temp dir).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync, chownSync, chmodSync, copyFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import jwt from 'jsonwebtoken';
import {
  REPO, BUILD, MOSQUITTO, READY_LINE, freePort, createCable, mqttConnect, runCleanups, sleep,
} from './lib/index.mjs';

const DEPLOY = path.join(REPO, 'deploy', 'scale-out');
const BROWSERS = 200;
const HAPROXY = '/usr/sbin/haproxy';

const dir = mkdtempSync(path.join(os.tmpdir(), 'cable-it-scale-'));
chmodSync(dir, 0o755);
const procs = new Map(); // name -> { child, log() }
process.on('exit', () => {
  for (const p of procs.values()) { try { p.child.kill('SIGKILL'); } catch { /* gone */ } }
  rmSync(dir, { recursive: true, force: true });
});
after(async () => {
  await runCleanups();
  for (const p of procs.values()) p.child.kill('SIGTERM');
  await Promise.all([...procs.values()].map((p) => p.exited));
});

function start(name, cmd, args) {
  let text = '';
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.on('data', (d) => { text += d; });
  child.stderr.on('data', (d) => { text += d; });
  const exited = new Promise((r) => child.once('exit', r));
  const p = { child, exited, log: () => text };
  procs.set(name, p);
  return p;
}

async function until(what, fn, ms = 15000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) {
      const logs = [...procs].map(([n, p]) => `--- ${n} ---\n${p.log().slice(-3000)}`).join('\n');
      throw new Error(`timed out waiting for ${what}\n${logs}`);
    }
    await sleep(100);
  }
}

const canConnect = (port) => new Promise((resolve) => {
  const s = net.connect({ host: '127.0.0.1', port });
  s.once('connect', () => { s.destroy(); resolve(true); });
  s.once('error', () => resolve(false));
});

async function metric(port, name) {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const m = text.match(new RegExp(`^${name} (\\d+)$`, 'm'));
  return m ? Number(m[1]) : NaN;
}

test('HAProxy over two bridged edges: 200 browsers, speak, an edge dies, metrics add up', { timeout: 110_000 }, async () => {
  // ---- The recipe's files, on free ports --------------------------------------------
  const ports = {};
  for (const p of ['8080', '8081', '8082', '1883', '1884', '1885']) ports[p] = await freePort();
  const secret = randomBytes(32).toString('hex');
  writeFileSync(path.join(dir, 'jwt-secret'), secret);
  copyFileSync(path.join(REPO, 'config', 'channels.example.json'), path.join(dir, 'channels.json'));
  const render = (file) => readFileSync(path.join(DEPLOY, file), 'utf8')
    .replace(/\b(8080|8081|8082|1883|1884|1885)\b/g, (p) => String(ports[p]))
    .replaceAll('/usr/lib/x86_64-linux-gnu/mosquitto_cable.so', path.join(BUILD, 'mosquitto_cable.so'))
    .replaceAll('/etc/mosquitto/cable/', `${dir}/`)
    .replaceAll('/run/mosquitto/', `${dir}/`);
  // The brokers log to stderr here, with connections, for the test to watch.
  for (const f of ['core.conf', 'edge1.conf', 'edge2.conf']) {
    writeFileSync(path.join(dir, f), `${render(f)}\nlog_dest stderr\nlog_type all\n`);
  }
  writeFileSync(path.join(dir, 'haproxy.cfg'), render('haproxy.cfg'));
  if (process.getuid() === 0) {
    try {
      const uid = Number(execFileSync('id', ['-u', 'mosquitto']));
      const gid = Number(execFileSync('id', ['-g', 'mosquitto']));
      // The directory too: it stands in for /run/mosquitto, where the edges' unix sockets go.
      for (const f of ['', 'jwt-secret', 'channels.json']) chownSync(path.join(dir, f), uid, gid);
    } catch { /* no mosquitto user: the broker keeps root */ }
  }

  // ---- Start core, edges, HAProxy ---------------------------------------------------
  start('core', MOSQUITTO, ['-c', path.join(dir, 'core.conf')]);
  await until('core broker', () => canConnect(ports['1883']));
  const edge1 = start('edge1', MOSQUITTO, ['-c', path.join(dir, 'edge1.conf')]);
  const edge2 = start('edge2', MOSQUITTO, ['-c', path.join(dir, 'edge2.conf')]);
  await until('both edges listening', () => edge1.log().includes(READY_LINE) && edge2.log().includes(READY_LINE));
  start('haproxy', HAPROXY, ['-db', '-f', path.join(dir, 'haproxy.cfg')]);
  await until('HAProxy', () => canConnect(ports['8080']));
  await until('both bridges connected to the core', () =>
    /New bridge connected .* as cable-edge1/.test(procs.get('core').log()) &&
    /New bridge connected .* as cable-edge2/.test(procs.get('core').log()));

  const device = await mqttConnect(`mqtt://127.0.0.1:${ports['1883']}`);
  await device.subscribe('actuators/42/cmd');
  const mint = (user) => jwt.sign({}, secret, { algorithm: 'HS256', subject: user, expiresIn: '10m' });
  const token = mint('alice');

  // Both bridges carry traffic before the crowd arrives: a browser on each edge,
  // directly, sees a device publish.
  const probes = [ports['8081'], ports['8082']].map((p) => createCable(`ws://127.0.0.1:${p}/cable?jid=${token}`)
    .subscribe({ channel: 'ActuatorChannel', id: 42 }));
  await Promise.all(probes.map((s) => s.confirmed()));
  await until('the core reaches both edges', async () => {
    await device.publish('actuators/42/state', '{"probe":true}');
    await sleep(200);
    return probes.every((s) => s.received.all.length > 0);
  });
  await Promise.all(probes.map((s) => s.cable.close()));

  // ---- 200 browsers through HAProxy -------------------------------------------------
  // One user per browser (plugin_opt_max_connections_per_user is 100 by default).
  const url = (user) => `ws://127.0.0.1:${ports['8080']}/cable?jid=${mint(user)}`;
  const subs = [];
  for (let i = 0; i < BROWSERS; i++) subs.push(createCable(url(`user${i}`)).subscribe({ channel: 'ActuatorChannel', id: 42 }));
  await Promise.all(subs.map((s) => s.confirmed(20_000)));
  const on1 = await until('edge metrics', async () => {
    const [a, b] = [await metric(ports['8081'], 'cable_connections'), await metric(ports['8082'], 'cable_connections')];
    return a + b === BROWSERS ? a : 0;
  });
  const on2 = BROWSERS - on1;
  assert.ok(on1 > BROWSERS / 5 && on2 > BROWSERS / 5, `spread over both edges: ${on1} + ${on2}`);
  assert.equal(await metric(ports['8081'], 'cable_subscriptions') + await metric(ports['8082'], 'cable_subscriptions'), BROWSERS);

  // A device's publish on the core reaches every browser, on both edges. It is retained:
  // the bridges carry it into each edge's retained store too.
  await device.publish('actuators/42/state', '{"on":true,"n":1}', { retain: true });
  for (const s of subs) assert.deepEqual(await nextWith(s, (d) => d.n === 1), { on: true, n: 1 });

  // A browser's speak reaches the device, and every browser once (both edges).
  subs[0].perform('speak', { message: 'hi from the crowd' });
  const said = await device.nextOn('actuators/42/cmd', 5000);
  assert.deepEqual(JSON.parse(said.text), { user: 'user0', message: 'hi from the crowd' });
  for (const s of subs) await nextWith(s, (d) => d.message === 'hi from the crowd');
  await sleep(300);
  for (const s of subs) {
    assert.equal(s.received.all.filter((d) => d.message === 'hi from the crowd').length, 1, 'no duplicate over the bridges');
  }

  // ---- Kill edge1: its browsers reconnect through HAProxy to edge2 ------------------
  const killedAt = Date.now();
  edge1.child.kill('SIGKILL');
  await edge1.exited;
  procs.delete('edge1');
  await until('every browser back, all on edge2', async () =>
    await metric(ports['8082'], 'cable_connections') === BROWSERS &&
    await metric(ports['8082'], 'cable_subscriptions') === BROWSERS, 60_000);
  console.log(`# ${on1} browsers moved from edge1 to edge2 in ${((Date.now() - killedAt) / 1000).toFixed(1)} s`);
  // The browsers that moved subscribed again on edge2 and opened on the current state:
  // the retained value came again, once, to exactly the ones that moved.
  await until('the moved browsers shown the current state again', () =>
    subs.filter((s) => s.received.all.filter((d) => d.n === 1).length === 2).length === on1, 10_000);
  assert.equal(subs.filter((s) => s.received.all.filter((d) => d.n === 1).length > 2).length, 0,
    'the current state at most once per (re)subscription');
  await device.publish('actuators/42/state', '{"on":false,"n":2}');
  for (const s of subs) await nextWith(s, (d) => d.n === 2, 10_000);
  subs[subs.length - 1].perform('speak', { message: 'still here' });
  assert.deepEqual(JSON.parse((await device.nextOn('actuators/42/cmd', 5000)).text), { user: `user${BROWSERS - 1}`, message: 'still here' });
});

// The next received(data) matching pred (others are skipped).
function nextWith(sub, pred, ms = 5000) {
  return sub.received.nextMatching(pred, ms, 'a matching received(data)');
}
