// /metrics with two gateway threads (plugin_opt_threads 2): whichever thread serves the
// request, every figure is the sum over both (cable_shard_* show the split), and the
// request still answers while the gateway is busy fanning out.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import {
  useBroker, startBroker, runCleanups, rawConnect, mqttConnect, actuatorId, isMessageFor, sleep,
} from './lib/index.mjs';

const ctx = useBroker({ pluginOpts: { threads: '2' } });
const CONNECTIONS = 20;

// GET /metrics on a new TCP connection each time, so the kernel may hand it to either
// thread (SO_REUSEPORT spreads connections by their ports).
function scrape(b) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port: b.wsPort, path: '/metrics', agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { text += d; });
      res.on('end', () => {
        assert.equal(res.statusCode, 200);
        const v = {};
        for (const line of text.split('\n')) {
          const m = /^(cable_[a-z_]+(?:\{[^}]*\})?) ([0-9.e+]+)$/.exec(line);
          if (m) v[m[1]] = Number(m[2]);
        }
        resolve(v);
      });
    });
    req.setTimeout(10_000, () => req.destroy(new Error('no /metrics answer in 10 s')));
    req.on('error', reject);
  });
}

const shard = (v, name, i) => v[`${name}{shard="${i}"}`];

test('20 connections over 2 threads: the figures are summed whichever thread answers, busy or not', async () => {
  const b = ctx.broker;
  const id = actuatorId(7);
  const conns = [];
  for (let i = 0; i < CONNECTIONS; i++) {
    const c = await rawConnect(b.urlFor(b.mint(`user${i}`)));
    await c.welcome();
    assert.equal((await c.subscribeAndWait(id)).json.type, 'confirm_subscription');
    conns.push(c);
  }
  const dev = await mqttConnect(b.mqttUrl);
  await dev.publish('actuators/7/state', '{"on":true}', { qos: 1 });
  for (const c of conns) await c.waitFor(isMessageFor(id), 5000, 'the broadcast');

  for (let k = 0; k < 8; k++) {
    const v = await scrape(b);
    assert.equal(v.cable_connections, CONNECTIONS, `cable_connections on scrape ${k}`);
    assert.equal(v.cable_gateway_threads, 2);
    const a = shard(v, 'cable_shard_connections', 0);
    const c = shard(v, 'cable_shard_connections', 1);
    assert.equal(a + c, CONNECTIONS);
    assert.ok(a > 0 && c > 0, `both threads have connections (${a} + ${c})`);
    assert.equal(v.cable_subscriptions, CONNECTIONS);
    assert.equal(v.cable_subscribes_total, CONNECTIONS);
    assert.equal(v.cable_connections_total, CONNECTIONS);
    assert.equal(v.cable_deliveries_total, CONNECTIONS);
    assert.equal(shard(v, 'cable_shard_deliveries_total', 0) + shard(v, 'cable_shard_deliveries_total', 1),
      v.cable_deliveries_total);
    assert.equal(v.cable_broadcasts_total, 1, 'one device message, counted once');
    assert.equal(v.cable_sockets, CONNECTIONS + 1, 'the 20 WebSockets and this request');
  }

  // While both threads fan out a burst, /metrics still answers, with sums that only grow.
  const before = await scrape(b);
  let sending = true;
  const burst = (async () => {
    for (let i = 0; sending && i < 5000; i++) {
      dev.publish('actuators/7/state', `{"n":${i}}`);
      if (i % 200 === 0) await sleep(1);
    }
  })();
  try {
    let last = before.cable_deliveries_total;
    for (let k = 0; k < 10; k++) {
      const v = await scrape(b);
      assert.equal(v.cable_connections, CONNECTIONS);
      assert.ok(v.cable_deliveries_total >= last, 'deliveries only grow');
      assert.equal(shard(v, 'cable_shard_deliveries_total', 0) + shard(v, 'cable_shard_deliveries_total', 1),
        v.cable_deliveries_total);
      last = v.cable_deliveries_total;
    }
    process.stdout.write(`# 10 scrapes during a burst of 5000 messages to 20 browsers: deliveries ` +
      `${before.cable_deliveries_total} -> ${last}\n`);
  } finally {
    sending = false;
    await burst;
  }
});

// Sends GET /metrics and hangs up at once, before the threads have answered.
function requestAndLeave(port) {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port }, () => {
      sock.write('GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n', () => { sock.destroy(); resolve(); });
    });
    sock.on('error', resolve);
  });
}

test('a client that hangs up before the answer, and a broker stopping with requests in flight', async () => {
  const b = ctx.broker;
  const watcher = await mqttConnect(b.mqttUrl);
  await watcher.subscribe('#');
  await Promise.all(Array.from({ length: 20 }, () => requestAndLeave(b.wsPort)));
  const v = await scrape(b);
  assert.equal(v.cable_connections, 0);
  assert.equal(v.cable_gateway_threads, 2);
  // Nothing is published for them (there is no plugin_opt_metrics_topic).
  await watcher.expectNone(500, (m) => !m.topic.startsWith('$SYS'));

  const b2 = await startBroker({ pluginOpts: { threads: '2' } });
  try {
    await Promise.all(Array.from({ length: 10 }, () => requestAndLeave(b2.wsPort)));
    const scrapes = Array.from({ length: 10 }, () => scrape(b2).catch(() => null));
    const stopped = await b2.stop();
    await Promise.all(scrapes);
    assert.equal(stopped.code, 0, stopped.log.slice(-2000));
  } finally {
    await b2.stop();
  }
});

test('plugin_opt_metrics_topic publishes the sums over both threads', async () => {
  const b2 = await startBroker({ pluginOpts: { threads: '2', metrics_topic: 'ops/cable', metrics_interval: '1' } });
  try {
    const conns = [];
    for (let i = 0; i < 8; i++) {
      const c = await rawConnect(b2.urlFor(b2.mint(`user${i}`)));
      await c.welcome();
      conns.push(c);
    }
    const sub = await mqttConnect(b2.mqttUrl);
    await sub.subscribe('ops/cable/#');
    // Values of a round that saw all 8 (retained ones may be from before).
    let seen = {};
    for (let i = 0; i < 600 && !(seen.connections === 8 && 'shard_connections/1' in seen); i++) {
      const m = await sub.next(3000);
      const key = m.topic.slice('ops/cable/'.length);
      if (key === 'connections') seen = {};
      seen[key] = Number(m.text);
    }
    assert.equal(seen.connections, 8);
    assert.equal(seen.gateway_threads, 2);
    assert.equal(seen['shard_connections/0'] + seen['shard_connections/1'], 8);
    assert.ok(seen['shard_connections/0'] > 0 && seen['shard_connections/1'] > 0);
    assert.equal(seen.connections_total, 8);
  } finally {
    await runCleanups();
    await b2.stop();
  }
});
