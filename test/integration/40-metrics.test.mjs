// Observability: GET /health and GET /metrics (Prometheus text) on the WebSocket port.
// The counters follow what happened; no label or value names a user or a token.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  useBroker, rawConnect, connectAndSubscribe, mqttConnect, actuatorParams, isWelcome,
  isDisconnect,
} from './lib/index.mjs';

const ctx = useBroker();

async function scrape(b) {
  const res = await fetch(new URL('/metrics', b.wsUrl.replace('ws:', 'http:')));
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /^text\/plain/);
  const text = await res.text();
  const values = {};
  for (const line of text.split('\n')) {
    const m = /^(cable_[a-z_]+(?:\{[^}]*\})?) ([0-9.e+]+)$/.exec(line);
    if (m) values[m[1]] = Number(m[2]);
  }
  return { text, values };
}

test('GET /health answers 200 ok', async () => {
  const res = await fetch(new URL('/health', ctx.broker.wsUrl.replace('ws:', 'http:')));
  assert.equal(res.status, 200);
  assert.equal(await res.text(), 'ok\n');
});

test('/metrics counts connections, subscriptions, deliveries, auth failures and latency', async () => {
  const b = ctx.broker;
  const before = (await scrape(b)).values;
  const token = b.mint('alice');
  const { subs: [s] } = await connectAndSubscribe(b, 'alice', [actuatorParams(42)]);
  const dev = await mqttConnect(b.mqttUrl);
  await dev.publish('actuators/42/state', '{"on":true}');
  assert.deepEqual(await s.next(), { on: true });
  const bad = await rawConnect(`${b.wsUrl}?jid=not-a-token`);
  await bad.waitFor(isDisconnect);
  const none = await rawConnect(b.wsUrl);
  await none.waitFor(isDisconnect);

  const { text, values: v } = await scrape(b);
  assert.ok(v.cable_connections >= 1); // alice (the refused ones may still be closing)
  assert.equal(v.cable_subscriptions, 1);
  assert.equal(v.cable_subscribes_total - (before.cable_subscribes_total ?? 0), 1);
  assert.ok(v.cable_broadcasts_total - (before.cable_broadcasts_total ?? 0) >= 1);
  assert.ok(v.cable_deliveries_total - (before.cable_deliveries_total ?? 0) >= 1);
  assert.equal(v['cable_auth_failures_total{reason="invalid"}'] -
    (before['cable_auth_failures_total{reason="invalid"}'] ?? 0), 1);
  assert.equal(v['cable_auth_failures_total{reason="no_token"}'] -
    (before['cable_auth_failures_total{reason="no_token"}'] ?? 0), 1);
  assert.ok(v.cable_delivery_seconds_count >= 1);
  assert.equal(v['cable_delivery_seconds_bucket{le="+Inf"}'], v.cable_delivery_seconds_count);
  assert.ok(v.cable_frames_out_total > 0 && v.cable_bytes_out_total > v.cable_frames_out_total);
  assert.ok(v.cable_bytes_out_total < 1e9, 'byte counter is a real count');
  // Nothing personal: no user name, no token, no topic.
  assert.doesNotMatch(text, /alice/);
  assert.ok(!text.includes(token.split('.')[2]));
  assert.doesNotMatch(text, /actuators/);
});

test('a device message to nobody still counts as a broadcast, with no delivery', async () => {
  const b = ctx.broker;
  const before = (await scrape(b)).values;
  const c = await rawConnect(`${b.wsUrl}?jid=${b.mint('bob')}`);
  await c.waitFor(isWelcome);
  const dev = await mqttConnect(b.mqttUrl);
  await dev.publish('nobody/listens', 'x', { qos: 1 });
  let v;
  for (let i = 0; i < 20; i++) {
    v = (await scrape(b)).values;
    if (v.cable_broadcasts_total > before.cable_broadcasts_total) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal(v.cable_broadcasts_total - before.cable_broadcasts_total, 1);
  assert.equal(v.cable_deliveries_total, before.cable_deliveries_total);
});

test('plugin_opt_metrics_topic publishes each metric as a retained MQTT message', async () => {
  const { startBroker, runCleanups } = await import('./lib/index.mjs');
  const b = await startBroker({ pluginOpts: { metrics_topic: 'ops/cable', metrics_interval: '1' } });
  try {
    const c = await rawConnect(`${b.wsUrl}?jid=${b.mint('alice')}`);
    await c.waitFor(isWelcome);
    await new Promise((r) => setTimeout(r, 1500));
    // A late subscriber gets the retained values.
    const sub = await mqttConnect(b.mqttUrl);
    await sub.subscribe('ops/cable/#');
    const seen = {};
    for (let i = 0; i < 60 && !('connections_total' in seen && 'auth_failures_total/no_token' in seen); i++) {
      const m = await sub.next(3000);
      seen[m.topic.slice('ops/cable/'.length)] = { text: m.text, retain: m.retain };
    }
    assert.equal(seen.connections_total.retain, true);
    assert.ok(Number(seen.connections_total.text) >= 1);
    assert.equal(seen['auth_failures_total/no_token'].text, '0');
    assert.ok(!Object.keys(seen).some((k) => k.includes('bucket')));
  } finally {
    await runCleanups();
    await b.stop();
  }
});
