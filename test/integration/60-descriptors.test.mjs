// Descriptors: the plugin shares the broker's process and its descriptor limit. Idle
// sockets flooding the WebSocket port must not take the MQTT side down, nor fill the
// log: the plugin stops accepting at its caps (plugin_opt_max_descriptors, derived
// from RLIMIT_NOFILE; plugin_opt_max_handshakes; plugin_opt_max_handshakes_per_ip) and
// accepts again once the flood is gone; accept() failing for want of descriptors is
// logged once per interval with a count. The broker runs with 3000 descriptors
// (prlimit) so the flood stays small. Both event loops (epoll, poll).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import net from 'node:net';
import { useBroker, rawConnect, isWelcome, mqttConnect, onCleanup } from './lib/index.mjs';

const NOFILE = 3000;
const FLOOD = 3400; // more than the broker's whole descriptor limit
const FLOOD_FROM = '127.0.0.2'; // loopback too, but another client address than the tests'

// Opens n TCP connections that send nothing; resolves when each has connected, failed
// or waited 10 s. closedByServer counts the ones the server closed.
async function flood(port, n, localAddress = FLOOD_FROM) {
  const sockets = [];
  const state = { connected: 0, closedByServer: 0 };
  await Promise.all(Array.from({ length: n }, () => new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port, localAddress });
    sockets.push(s);
    const timer = setTimeout(resolve, 10_000);
    s.once('connect', () => { state.connected++; clearTimeout(timer); resolve(); });
    s.on('error', () => { clearTimeout(timer); resolve(); });
    s.once('end', () => { state.closedByServer++; s.destroy(); });
  })));
  const close = () => { for (const s of sockets) s.destroy(); };
  onCleanup(close);
  return { state, close };
}

const fdCount = (pid) => readdirSync(`/proc/${pid}/fd`).length;
const linesMatching = (log, re) => log.split('\n').filter((l) => re.test(l));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitFor(what, pred, ms = 10_000) {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${typeof what === 'function' ? what() : what}`);
    await sleep(50);
  }
}

// A WebSocket client from the tests' address is welcomed within ms (retrying: the
// plugin needs a moment to see the flood's sockets close).
async function welcomedWithin(b, user, ms) {
  const end = Date.now() + ms;
  for (;;) {
    try {
      const c = await rawConnect(b.urlFor(b.mint(user)), { timeout: 2000 });
      await c.waitFor(isWelcome, 2000);
      return c;
    } catch (e) {
      if (Date.now() > end) throw e;
      await sleep(200);
    }
  }
}

// MQTT still works: a new subscriber and a new publisher connect, and the message
// arrives.
async function mqttWorks(b) {
  const sub = await mqttConnect(b.mqttUrl);
  await sub.subscribe('flood/check');
  const pub = await mqttConnect(b.mqttUrl);
  await pub.publish('flood/check', 'still here');
  assert.equal((await sub.nextOn('flood/check', 5000)).text, 'still here');
}

for (const loop of ['epoll', 'poll']) {
  describe(`event loop ${loop}: ${FLOOD} idle sockets against a broker with ${NOFILE} descriptors`, () => {
    const ctx = useBroker({
      nofile: NOFILE,
      pluginOpts: { event_loop: loop, handshake_timeout: '60', max_handshakes_per_ip: '0' },
    });

    test('MQTT clients still connect and publish, the log stays quiet, WebSockets resume after', async () => {
      const b = ctx.broker;
      assert.match(b.log(), /up to 2250 descriptors/, 'default: three quarters of RLIMIT_NOFILE');
      const fl = await flood(b.wsPort, FLOOD);
      await sleep(500);
      await mqttWorks(b);
      await waitFor(() => `the listener to pause (${fl.state.connected} flood sockets connected, ` +
        `broker holds ${fdCount(b.pid)} descriptors)`, () => /WebSocket listener paused/.test(b.log()), 30_000);
      const fds = fdCount(b.pid);
      process.stdout.write(`# ${loop}: ${fl.state.connected} flood sockets connected; broker ` +
        `holds ${fds} descriptors of ${NOFILE}\n`);
      assert.ok(fds < NOFILE - 100, `the broker keeps descriptors in reserve (${fds} open)`);

      await sleep(1000); // a busy accept loop would log thousands of lines by now
      const noisy = linesMatching(b.log(), /accept|libwebsockets: |listener paused/);
      process.stdout.write(`# ${loop}: ${noisy.length} log lines about accepting\n`);
      assert.ok(noisy.length <= 3, `at most a few lines, got ${noisy.length}:\n${noisy.slice(0, 5).join('\n')}`);
      assert.match(noisy[0], /WebSocket listener paused: \d+ browser sockets open, 1024 of them not yet WebSockets \(plugin_opt_max_handshakes\)/);

      fl.close();
      const c = await welcomedWithin(b, 'after-flood', 15_000);
      assert.ok(c, 'a browser is welcomed once the flood is gone');
    });
  });
}

describe('one address floods (plugin_opt_max_handshakes_per_ip, default 64)', () => {
  const ctx = useBroker({ pluginOpts: { handshake_timeout: '60' } });

  test('its sockets beyond 64 are closed at once; browsers from other addresses are welcomed', async () => {
    const b = ctx.broker;
    const fl = await flood(b.wsPort, 300);
    await waitFor('the extra sockets to be closed', () => fl.state.closedByServer >= 300 - 64);
    await sleep(300);
    assert.equal(fl.state.closedByServer, 300 - 64, 'exactly the ones over the cap');
    const c = await welcomedWithin(b, 'alice', 5000);
    assert.ok(c);
    // GET /metrics counts them: 64 idle sockets and this request are not WebSockets.
    const text = await (await fetch(`http://127.0.0.1:${b.wsPort}/metrics`)).text();
    const gauge = (name) => Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(text)?.[1]);
    assert.equal(gauge('cable_handshakes'), 65, text);
    assert.equal(gauge('cable_sockets'), 66, 'and the welcomed browser');
    const lines = linesMatching(b.log(), /refused: \d+ connections from that address/);
    assert.ok(lines.length >= 1 && lines.length <= 2, `logged once (with a count), got ${lines.length}`);
    assert.match(lines[0], new RegExp(`connection from ${FLOOD_FROM.replaceAll('.', '\\.')} refused: 64 connections from that address are not yet WebSockets \\(plugin_opt_max_handshakes_per_ip\\) \\(1 time in the last 10 s\\)`));
    fl.close();
  });
});

describe(`the process runs out of descriptors (plugin_opt_max_descriptors ${NOFILE - 20} of ${NOFILE})`, () => {
  const ctx = useBroker({
    nofile: NOFILE,
    pluginOpts: {
      handshake_timeout: '60', max_handshakes_per_ip: '0', max_handshakes: '100000',
      max_descriptors: String(NOFILE - 20),
    },
  });

  test('EMFILE is logged once per interval with a count, never per attempt; accepting resumes', async () => {
    const b = ctx.broker;
    // MQTT clients hold some of the process's descriptors (40 sockets that have not
    // sent CONNECT yet), so the browser sockets' share is no longer there.
    await flood(b.mqttPort, 40, '127.0.0.1');
    const fl = await flood(b.wsPort, FLOOD);
    await waitFor('accept to fail', () => /WebSocket accept failed/.test(b.log()));
    await sleep(2000); // retried every 250 ms meanwhile
    const lines = linesMatching(b.log(), /accept/);
    process.stdout.write(`# EMFILE: ${lines.length} log lines in 2 s; broker holds ${fdCount(b.pid)} descriptors\n`);
    assert.equal(lines.length, 1, `one line, got ${lines.length}:\n${lines.slice(0, 5).join('\n')}`);
    assert.match(lines[0], /WebSocket accept failed: Too many open files; new connections wait in the kernel's backlog, retried every 250 ms .* \(1 time in the last 10 s\)/);
    fl.close();
    await welcomedWithin(b, 'after-emfile', 15_000);
  });
});
