// Last values benchmark (bench/run.sh, phase "last values"): the memory a broker needs
// for N retained topics, and the time from a subscribe to the retained value arriving,
// for mosquitto-cable (ActionCable subscribe, plugin_opt_state_listener) and for
// Mosquitto's own MQTT-over-WebSockets listener (MQTT SUBSCRIBE) on the same broker.
//
//   node bench/last_values.mjs --mode fill --mqtt mqtt://127.0.0.1:28830 --pid PID \
//        --topics 100000 --payload 100 [--metrics http://127.0.0.1:28080/metrics] --label L
//   node bench/last_values.mjs --mode latency --proto cable|mqtt --url ws://... \
//        --topics 100000 --samples 1000 --label L
//
// Prints one "RESULT key=value ..." line, like cable-bench. Uses the npm packages of the
// integration tests (ws, mqtt).
import { readFileSync } from 'node:fs';
import mqtt from 'mqtt';
import WebSocket from 'ws';

const args = Object.fromEntries(process.argv.slice(2).reduce((acc, a, i, all) => {
  if (a.startsWith('--')) acc.push([a.slice(2), all[i + 1]?.startsWith('--') || all[i + 1] === undefined ? '1' : all[i + 1]]);
  return acc;
}, []));
const N = Number(args.topics || 100000);
const label = args.label || '-';
const topic = (i) => `actuators/${i}/state`;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function rssKb(pid) {
  const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(/^VmRSS:\s+(\d+) kB/m);
  return m ? Number(m[1]) : -1;
}

async function metric(url, name) {
  const text = await (await fetch(url)).text();
  const m = text.match(new RegExp(`^cable_${name} (\\d+)$`, 'm'));
  return m ? Number(m[1]) : -1;
}

function pct(sorted, p) {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p * sorted.length) / 100))] : -1;
}

async function fill() {
  const pid = Number(args.pid);
  const size = Number(args.payload || 100);
  // {"v":"xxx..."}: a JSON payload of exactly `size` bytes.
  const payload = `{"v":"${'x'.repeat(size - 8)}"}`;
  await sleep(1000);
  const before = rssKb(pid);
  const c = await mqtt.connectAsync(args.mqtt, { reconnectPeriod: 0, clientId: `lv-fill-${process.pid}` });
  const t0 = Date.now();
  for (let i = 0; i < N; i++) {
    if (i % 2000 === 1999) await c.publishAsync(topic(i), payload, { retain: true, qos: 1 });
    else c.publish(topic(i), payload, { retain: true, qos: 0 });
  }
  await c.publishAsync(topic(N - 1), payload, { retain: true, qos: 1 }); // all earlier ones are in
  const pubSecs = (Date.now() - t0) / 1000;
  await c.endAsync();
  let entries = -1;
  let cacheBytes = -1;
  if (args.metrics) {
    const deadline = Date.now() + 60000;
    while ((entries = await metric(args.metrics, 'retained_entries')) < N && Date.now() < deadline) await sleep(200);
    cacheBytes = await metric(args.metrics, 'retained_bytes');
  }
  await sleep(2000);
  const after = rssKb(pid);
  console.log(`RESULT mode=lv-fill label=${label} topics=${N} payload=${size} publish_s=${pubSecs.toFixed(1)} ` +
    `rss_before_kb=${before} rss_after_kb=${after} rss_growth_kb=${after - before} ` +
    `bytes_per_topic=${(((after - before) * 1024) / N).toFixed(0)} cache_entries=${entries} cache_bytes=${cacheBytes}`);
}

// ActionCable: one connection, sequential subscribe -> value -> unsubscribe.
async function latencyCable(samples) {
  const ws = new WebSocket(args.url, ['actioncable-v1-json']);
  const frames = [];
  let waiter = null;
  ws.on('message', (d) => {
    const f = JSON.parse(d.toString());
    if (f.type === 'ping') return;
    frames.push(f);
    if (waiter) waiter();
  });
  const next = (pred, ms = 5000) => new Promise((resolve, reject) => {
    const check = () => {
      const i = frames.findIndex(pred);
      if (i >= 0) { const f = frames.splice(i, 1)[0]; waiter = null; clearTimeout(t); resolve(f); }
    };
    const t = setTimeout(() => { waiter = null; reject(new Error('timeout')); }, ms);
    waiter = check;
    check();
  });
  await new Promise((r, j) => { ws.once('open', r); ws.once('error', j); });
  await next((f) => f.type === 'welcome');
  const out = [];
  let missing = 0;
  for (const i of samples) {
    const identifier = JSON.stringify({ channel: 'ActuatorChannel', id: i });
    const t0 = process.hrtime.bigint();
    ws.send(JSON.stringify({ command: 'subscribe', identifier }));
    try {
      await next((f) => f.identifier === identifier && 'message' in f);
      out.push(Number(process.hrtime.bigint() - t0) / 1e6);
    } catch { missing++; }
    ws.send(JSON.stringify({ command: 'unsubscribe', identifier }));
    frames.length = 0;
  }
  ws.close();
  return { out, missing };
}

// MQTT over WebSockets: one connection, sequential SUBSCRIBE -> retained PUBLISH -> UNSUBSCRIBE.
async function latencyMqtt(samples) {
  const c = await mqtt.connectAsync(args.url, { reconnectPeriod: 0, clientId: `lv-lat-${process.pid}` });
  const out = [];
  let missing = 0;
  let waiting = null;
  c.on('message', (t) => { if (waiting && waiting.topic === t) waiting.resolve(); });
  for (const i of samples) {
    const t0 = process.hrtime.bigint();
    const got = new Promise((resolve, reject) => {
      waiting = { topic: topic(i), resolve };
      setTimeout(() => reject(new Error('timeout')), 5000);
    });
    c.subscribe(topic(i), { qos: 0 });
    try {
      await got;
      out.push(Number(process.hrtime.bigint() - t0) / 1e6);
    } catch { missing++; }
    waiting = null;
    await c.unsubscribeAsync(topic(i));
  }
  await c.endAsync();
  return { out, missing };
}

async function latency() {
  const count = Number(args.samples || 1000);
  const samples = Array.from({ length: count }, () => Math.floor(Math.random() * N));
  const { out, missing } = args.proto === 'mqtt' ? await latencyMqtt(samples) : await latencyCable(samples);
  const sorted = [...out].sort((a, b) => a - b);
  console.log(`RESULT mode=lv-latency proto=${args.proto} label=${label} samples=${count} missing=${missing} ` +
    `p50_ms=${pct(sorted, 50).toFixed(3)} p99_ms=${pct(sorted, 99).toFixed(3)} max_ms=${(sorted.at(-1) ?? -1).toFixed(3)}`);
}

(args.mode === 'fill' ? fill() : latency()).then(() => process.exit(0), (e) => {
  console.error(`last_values: ${e.message}`);
  process.exit(1);
});
